"""Policies for EKS and ECR.

Enforcement levels, and why:

- `eks-endpoint-not-public`: MANDATORY. A Kubernetes API reachable from 0.0.0.0/0 is one stolen
  token away from the whole cluster.
- `eks-secrets-encrypted`: MANDATORY. The design (components/eks.py) encrypts Kubernetes
  secrets with a KMS key of the stack, so access to them is auditable and revocable; recent EKS
  versions also encrypt with an AWS-owned key by default, which gives neither.
- `ecr-immutable-tags`: MANDATORY. A mutable tag lets anyone with push rights replace the image a
  running Deployment pulls on its next restart.
- `ecr-scan-on-push`: ADVISORY. Scanning reports findings and blocks nothing by itself; accounts
  with registry-level enhanced scanning can disable it in the policy config.

The EKS cluster comes from pulumi-eks (`eks:index:Cluster`, a remote component). In a real
preview the engine also reports the component's child `aws:eks/cluster:Cluster`, whose
`vpcConfig` and `encryptionConfig` are judged; the component itself then reaches the analyzer
with no inputs (a component registered by its provider carries none) and is skipped. Under the
project's mocks only the component is registered, with the program's inputs
(`endpointPublicAccess`, `publicAccessCidrs`, `encryptionConfigKeyArn`), which are judged with
pulumi-eks's defaults (public endpoint on, open to 0.0.0.0/0, no KMS key).

Unknown values: an unknown `endpointPublicAccess` counts as public. A CIDR that is unknown (for
example a NAT gateway's address) passes in preview and is judged at update; a missing list is
the AWS default, 0.0.0.0/0. An unknown KMS key ARN counts as set (it comes from a key resource).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .props import (
    Option,
    config_schema,
    describe,
    first,
    for_types,
    get,
    is_false,
    is_true,
    is_unknown,
    items,
    plain,
)

EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_COMPONENT = "eks:index:Cluster"
ECR_REPOSITORY = "aws:ecr/repository:Repository"


def _open_to_everyone(cidr: Any) -> bool:
    try:
        return ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0
    except ValueError:
        return False


def _eks_settings(args: ResourceValidationArgs) -> dict[str, Any] | None:
    """The endpoint and encryption settings of either form of the cluster, or None to skip."""
    props = plain(args.props)
    if args.resource_type == EKS_COMPONENT:
        if not props:
            return None  # registered by its provider in a real run: its aws:eks/cluster:Cluster child is judged
        return {
            "public": props.get("endpointPublicAccess"),
            "cidrs": props.get("publicAccessCidrs"),
            "key": props.get("encryptionConfigKeyArn"),
            "resources": ["secrets"],
            "key_input": "encryption_config_key_arn",
            "public_input": "endpoint_public_access",
            "cidrs_input": "public_access_cidrs",
        }
    vpc = first(props.get("vpcConfig"))
    encryption = first(props.get("encryptionConfig"))
    return {
        "public": get(vpc, "endpointPublicAccess"),
        "cidrs": get(vpc, "publicAccessCidrs"),
        "key": get(encryption, "provider.keyArn"),
        "resources": get(encryption, "resources"),
        "key_input": "encryption_config.provider.key_arn",
        "public_input": "vpc_config.endpoint_public_access",
        "cidrs_input": "vpc_config.public_access_cidrs",
    }


@for_types(EKS_CLUSTER, EKS_COMPONENT)
def _validate_eks_endpoint(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    settings = _eks_settings(args)
    if settings is None or is_false(settings["public"]):
        return
    cidrs = settings["cidrs"]
    if cidrs is None:
        report_violation(
            f"The EKS cluster '{args.name}' has a public API endpoint open to 0.0.0.0/0 "
            f"({settings['public_input']} is {describe(settings['public'])} and {settings['cidrs_input']} "
            f"is not set). Set {settings['public_input']}=False (and the private endpoint on), or list "
            f"the allowed networks in {settings['cidrs_input']}."
        )
        return
    open_cidrs = [c for c in items(cidrs) if not is_unknown(c) and _open_to_everyone(c)]
    if open_cidrs:
        report_violation(
            f"The EKS cluster '{args.name}' has a public API endpoint open to {', '.join(map(str, open_cidrs))}. "
            f"Remove it from {settings['cidrs_input']} and list only the networks that administer the "
            f"cluster, or set {settings['public_input']}=False."
        )


@for_types(EKS_CLUSTER, EKS_COMPONENT)
def _validate_eks_secrets(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    settings = _eks_settings(args)
    if settings is None:
        return
    key, resources = settings["key"], settings["resources"]
    encrypts_secrets = is_unknown(resources) or any(is_unknown(r) or r == "secrets" for r in items(resources))
    if (is_unknown(key) or (key is not None and key != "")) and encrypts_secrets:
        return
    report_violation(
        f"The EKS cluster '{args.name}' does not encrypt Kubernetes secrets with a KMS key of this stack "
        f"({settings['key_input']} is {describe(key)}). Create an aws.kms.Key (with rotation) and set "
        f"{settings['key_input']} to its arn."
    )


@for_types(ECR_REPOSITORY)
def _validate_ecr_scan_on_push(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    scanning = first(plain(args.props).get("imageScanningConfiguration"))
    scan = get(scanning, "scanOnPush") if scanning is not None else None
    if is_unknown(scanning) or is_unknown(scan) or is_true(scan):
        return
    report_violation(
        f"The ECR repository '{args.name}' does not scan images on push (image_scanning_configuration."
        f"scan_on_push is {describe(scan)}). Set image_scanning_configuration={{'scan_on_push': True}}."
    )


ALLOW_EXCLUSIONS = Option(
    "allowExclusions",
    {
        "type": "boolean",
        "default": True,
        "description": "Accept IMMUTABLE_WITH_EXCLUSION (tags matching its exclusion filters stay mutable).",
    },
)


@for_types(ECR_REPOSITORY)
def _validate_ecr_immutable_tags(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    mutability = plain(args.props).get("imageTagMutability")
    if is_unknown(mutability) or mutability == "IMMUTABLE":
        return
    if mutability == "IMMUTABLE_WITH_EXCLUSION" and ALLOW_EXCLUSIONS.value(args):
        return
    report_violation(
        f"The ECR repository '{args.name}' lets a pushed tag be overwritten (image_tag_mutability is "
        f"{describe(mutability)}, the default is MUTABLE). Set image_tag_mutability='IMMUTABLE'."
    )


eks_endpoint_not_public = ResourceValidationPolicy(
    name="eks-endpoint-not-public",
    description="The EKS API endpoint is private, or public only to listed networks (never 0.0.0.0/0).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_eks_endpoint,
    config_schema=config_schema(),
)

eks_secrets_encrypted = ResourceValidationPolicy(
    name="eks-secrets-encrypted",
    description="EKS clusters encrypt Kubernetes secrets with a KMS key of the stack.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_eks_secrets,
    config_schema=config_schema(),
)

ecr_immutable_tags = ResourceValidationPolicy(
    name="ecr-immutable-tags",
    description="ECR repositories have immutable tags.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_ecr_immutable_tags,
    config_schema=config_schema(ALLOW_EXCLUSIONS),
)

ecr_scan_on_push = ResourceValidationPolicy(
    name="ecr-scan-on-push",
    description="ECR repositories scan images on push.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_validate_ecr_scan_on_push,
    config_schema=config_schema(),
)

POLICIES = [eks_endpoint_not_public, eks_secrets_encrypted, ecr_immutable_tags, ecr_scan_on_push]
