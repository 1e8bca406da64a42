"""IAM roles for service accounts (IRSA): a role only one Kubernetes service account can assume."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi
import pulumi_aws as aws


def irsa_role(
    name: str,
    *,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    namespace: str,
    service_account: str,
    policy_json: pulumi.Input[str] | None,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.iam.Role:
    """A role trusted by the cluster's OIDC provider for exactly `namespace/service_account`.

    `oidc_issuer` is the cluster's OIDC issuer WITHOUT "https://" (pulumi-eks `Cluster.oidc_issuer`): IAM
    refuses a condition key that starts with a scheme. The inline policy (if any) is the role's only
    permission.
    """
    assume = pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(
        lambda v: json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": v[0]},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {
                                f"{v[1]}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                                f"{v[1]}:aud": "sts.amazonaws.com",
                            }
                        },
                    }
                ],
            }
        )
    )
    role = aws.iam.Role(
        f"{name}-role",
        assume_role_policy=assume,
        description=f"IRSA role of {namespace}/{service_account}",
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    if policy_json is not None:
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=policy_json,
            opts=pulumi.ResourceOptions(parent=role),
        )
    return role
