"""eks-endpoint-not-public, eks-secrets-encrypted, ecr-immutable-tags, ecr-scan-on-push and
s3-block-public-access through the real analyzer, in preview and in update.

The EKS policies judge both forms of the cluster: the pulumi-eks component `eks:index:Cluster`
(what the mocks register, with the program's inputs) and the `aws:eks/cluster:Cluster` a real
preview reports as its child.
"""

from __future__ import annotations

import pytest

from tools.analyzer import UNKNOWN

CLUSTER = "eu-west-1-eks-cluster"
REPO = "eu-west-1-mesh-limiter-repo"
BUCKET = "eu-west-1-edge-logs"
BLOCK = "eu-west-1-edge-logs-block"


def names(result, policy):
    return [d.resource_name for d in result.for_policy(policy)]


def add_aws_cluster(stack, vpc_config, encryption_config=None):
    """The aws:eks/cluster:Cluster child a real preview reports (the component then has no inputs)."""
    stack.get(CLUSTER)["inputs"] = {}
    stack.get(CLUSTER)["outputs"] = {}
    inputs = {"vpcConfig": {"subnetIds": ["subnet-1", "subnet-2"], **vpc_config}, "roleArn": "arn:aws:iam::1:role/eks"}
    if encryption_config is not None:
        inputs["encryptionConfig"] = encryption_config
    return stack.add("aws:eks/cluster:Cluster", "eu-west-1-eks-cluster-eksCluster", inputs, parent=stack.get(CLUSTER))


def test_component_with_public_endpoint_and_no_cidrs_is_open_to_everyone(platform, found):
    platform.set_input(CLUSTER, "endpointPublicAccess", True)

    [(name, message)] = found(platform.analyze(), "eks-endpoint-not-public")

    assert name == CLUSTER
    assert "public API endpoint open to 0.0.0.0/0" in message
    assert "public_access_cidrs" in message


def test_component_relying_on_the_pulumi_eks_default_is_public(platform):
    platform.set_input(CLUSTER, "endpointPublicAccess", None)

    assert names(platform.analyze(), "eks-endpoint-not-public") == [CLUSTER]


def test_component_with_unknown_public_access_counts_as_public(platform):
    platform.set_input(CLUSTER, "endpointPublicAccess", UNKNOWN)

    result = platform.analyze()

    assert names(result, "eks-endpoint-not-public") == [CLUSTER]
    assert result.preview_skips == []


def test_component_public_to_listed_networks_passes(platform):
    platform.set_input(CLUSTER, "endpointPublicAccess", True)
    # Not a CIDR: EKS refuses it at deploy; the policy judges openness only and must not crash on it.
    platform.set_input(CLUSTER, "publicAccessCidrs", ["203.0.113.0/24", UNKNOWN, "not-a-cidr"])

    assert names(platform.analyze(), "eks-endpoint-not-public") == []


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0", "10.1.2.3/0"])  # a /0 with host bits is still everyone
def test_component_public_to_everyone_is_a_violation(platform, found, cidr):
    platform.set_input(CLUSTER, "endpointPublicAccess", True)
    platform.set_input(CLUSTER, "publicAccessCidrs", ["203.0.113.0/24", cidr])

    [(name, message)] = found(platform.analyze(), "eks-endpoint-not-public")

    assert name == CLUSTER
    assert f"open to {cidr}" in message


def test_component_without_kms_key_does_not_encrypt_secrets(platform, found):
    platform.set_input(CLUSTER, "encryptionConfigKeyArn", None)

    [(name, message)] = found(platform.analyze(), "eks-secrets-encrypted")

    assert name == CLUSTER
    assert "encryption_config_key_arn is not set" in message


def test_component_without_inputs_is_left_to_its_aws_cluster_child(platform):
    add_aws_cluster(
        platform,
        {"endpointPublicAccess": False, "endpointPrivateAccess": True},
        {"resources": ["secrets"], "provider": {"keyArn": "arn:aws:kms:eu-west-1:1:key/k"}},
    )

    result = platform.analyze()

    assert names(result, "eks-endpoint-not-public") == []
    assert names(result, "eks-secrets-encrypted") == []


def test_aws_cluster_child_with_default_public_endpoint_is_a_violation(platform, found):
    child = add_aws_cluster(platform, {}, {"resources": ["secrets"], "provider": {"keyArn": "arn:k"}})

    [(name, message)] = found(platform.analyze(), "eks-endpoint-not-public")

    assert name == child["name"]
    assert "vpc_config.public_access_cidrs is not set" in message


@pytest.mark.parametrize(("resources", "reported"), [(["secrets"], False), ([], True), (["configmaps"], True)])
def test_an_aws_cluster_child_must_encrypt_the_secrets_resource_itself(platform, resources, reported):
    """A key alone is not enough: the encryption config must name `secrets` (the only resource EKS encrypts)."""
    child = add_aws_cluster(
        platform, {"endpointPublicAccess": False}, {"resources": resources, "provider": {"keyArn": "arn:k"}}
    )

    assert names(platform.analyze(), "eks-secrets-encrypted") == ([child["name"]] if reported else [])


def test_aws_cluster_child_without_encryption_config_is_a_violation(platform):
    child = add_aws_cluster(platform, {"endpointPublicAccess": False})

    assert names(platform.analyze(), "eks-secrets-encrypted") == [child["name"]]


def test_mutable_ecr_repository_is_a_mandatory_violation(platform):
    platform.set_input(REPO, "imageTagMutability", None)

    result = platform.analyze()

    assert [(d.resource_name, d.enforcement_level) for d in result.for_policy("ecr-immutable-tags")] == [
        (REPO, "mandatory")
    ]


def test_immutable_with_exclusions_passes_unless_config_refuses(platform):
    platform.set_input(REPO, "imageTagMutability", "IMMUTABLE_WITH_EXCLUSION")

    assert names(platform.analyze(), "ecr-immutable-tags") == []
    refused = {"ecr-immutable-tags": {"allowExclusions": False}}
    assert names(platform.analyze(policy_config=refused), "ecr-immutable-tags") == [REPO]


def test_ecr_repository_without_scan_on_push_is_an_advisory(platform):
    platform.set_input(REPO, "imageScanningConfiguration", None)

    result = platform.analyze()

    assert [(d.resource_name, d.enforcement_level) for d in result.for_policy("ecr-scan-on-push")] == [
        (REPO, "advisory")
    ]


def test_bucket_without_public_access_block_is_a_violation(platform, found):
    platform.remove(BLOCK)

    [(name, message)] = found(platform.analyze(), "s3-block-public-access")

    assert name == BUCKET
    assert "has no public access block" in message


def test_block_with_a_setting_off_is_a_violation(platform, found):
    platform.set_input(BLOCK, "restrictPublicBuckets", False)

    [(name, message)] = found(platform.analyze(), "s3-block-public-access")

    assert name == BUCKET
    assert "leaves restrict_public_buckets off" in message


def test_block_for_another_bucket_does_not_count(platform, found):
    other = platform.add("aws:s3/bucket:Bucket", "eu-west-1-edge-other", {}, computed={"bucket": "other"})
    platform.remove(BLOCK)
    platform.add(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        BLOCK,
        {
            "bucket": platform.ref(other, "id"),
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        },
    )

    assert [name for name, _ in found(platform.analyze(), "s3-block-public-access")] == [BUCKET]


def test_account_wide_block_covers_every_bucket(platform, found):
    platform.remove(BLOCK)
    platform.add(
        "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock",
        "account-block",
        {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True},
    )

    assert found(platform.analyze(), "s3-block-public-access") == []


def _other_bucket(platform, name="eu-west-1-edge-other", block=True, restrict=True):
    """A second bucket, registered after the log bucket, with its own block (or none)."""
    other = platform.add("aws:s3/bucketV2:BucketV2", name, {"bucket": "other-abc"})
    if block:
        platform.add(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"{name}-block",
            {
                "bucket": platform.ref(other, "id"),
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": restrict,
            },
        )
    return other


def test_every_bucket_is_judged_after_one_without_a_block(platform, found):
    platform.remove(BLOCK)
    _other_bucket(platform, restrict=False)

    reported = found(platform.analyze(), "s3-block-public-access")

    assert [(name, "has no public access block" in message) for name, message in reported] == [
        (BUCKET, True),
        ("eu-west-1-edge-other", False),
    ]
    assert "leaves restrict_public_buckets off" in reported[1][1]


def test_every_bucket_is_judged_after_an_exempt_one(platform, found):
    platform.remove(BLOCK)
    _other_bucket(platform, block=False)

    result = platform.analyze(policy_config={"s3-block-public-access": {"exemptResources": [BUCKET]}})

    assert [name for name, _ in found(result, "s3-block-public-access")] == ["eu-west-1-edge-other"]


def test_with_two_blocks_off_the_message_names_one_and_its_own_settings(platform, found):
    bucket = platform.get(BUCKET)
    platform.set_input(BLOCK, "restrictPublicBuckets", False)
    platform.add(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        f"{BLOCK}-2",
        {
            "bucket": platform.ref(bucket, "id"),
            "blockPublicAcls": False,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        },
    )

    [(name, message)] = found(platform.analyze(), "s3-block-public-access")

    assert name == BUCKET
    assert f"public access block '{BLOCK}' that leaves restrict_public_buckets off." in message
