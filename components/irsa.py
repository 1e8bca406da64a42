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

    `oidc_issuer` is the issuer without "https://" (pulumi-eks `Cluster.oidc_issuer`): IAM refuses a
    condition key that starts with a scheme (MalformedPolicyDocument), so pulumi-eks's
    `oidc_provider_url`, which carries https://, must not be used here. The inline policy (if any) is
    the role's only permission.
    """
    assume = pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(
        lambda v: trust_policy(v[0], v[1], namespace, service_account)
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


def trust_policy(oidc_provider_arn: str, oidc_issuer: str, namespace: str, service_account: str) -> str:
    """The web-identity trust policy of an IRSA role (EKS user guide, "Assign IAM roles to service accounts")."""
    if "://" in oidc_issuer:
        raise ValueError(
            f"IRSA condition keys need the OIDC issuer without its scheme (pulumi-eks Cluster.oidc_issuer), "
            f"not {oidc_issuer!r}: IAM refuses a key like 'https://...:sub'."
        )
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc_provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{oidc_issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                            f"{oidc_issuer}:aud": "sts.amazonaws.com",
                        }
                    },
                }
            ],
        }
    )
