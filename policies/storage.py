"""Policies for S3.

- `s3-block-public-access`: MANDATORY. The program's buckets hold ALB access logs (client
  addresses, paths, API keys in query strings); none is meant to be public. New buckets block
  public access by default since 2023, but only an explicit aws.s3.BucketPublicAccessBlock keeps
  the setting under the stack's control: a console change shows up as drift and is undone by the
  next update. A stack policy: the block's `bucket` input is matched to its bucket by property
  dependency (the bucket name is unknown in a first preview) or by equal known names. An
  account-wide aws.s3.AccountPublicAccessBlock with all four settings on also satisfies it.

Unknown values: an unknown setting on a block passes in preview (it is judged at update); a
missing setting is the provider default, false.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .graph import StackView, both_known, depends_on
from .props import config_schema, is_exempt, is_true, is_unknown

BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PUBLIC_ACCESS_BLOCK = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
_SETTINGS = {
    "blockPublicAcls": "block_public_acls",
    "blockPublicPolicy": "block_public_policy",
    "ignorePublicAcls": "ignore_public_acls",
    "restrictPublicBuckets": "restrict_public_buckets",
}


def _settings_off(view: StackView, block: PolicyResource) -> list[str]:
    props = view.props(block)
    return [snake for key, snake in _SETTINGS.items() if not (is_unknown(props.get(key)) or is_true(props.get(key)))]


def _blocks_bucket(view: StackView, block: PolicyResource, bucket: PolicyResource) -> bool:
    wanted = view.props(block).get("bucket")
    props = view.props(bucket)
    names = [props.get("bucket"), props.get("id")]
    known = [n for n in names if both_known(wanted, n)]
    if known:
        return wanted in known
    return depends_on(block, "bucket", bucket)


def _validate_s3_block_public_access(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    view = StackView(args.resources)
    if any(not _settings_off(view, account) for account in view.of_type(ACCOUNT_PUBLIC_ACCESS_BLOCK)):
        return
    blocks = view.of_type(PUBLIC_ACCESS_BLOCK)
    for bucket in view.of_type(*BUCKET_TYPES):
        if is_exempt(args, bucket.name):
            continue
        mine = [block for block in blocks if _blocks_bucket(view, block, bucket)]
        if not mine:
            report_violation(
                f"The S3 bucket '{bucket.name}' has no public access block. Create an "
                "aws.s3.BucketPublicAccessBlock for it with block_public_acls, block_public_policy, "
                "ignore_public_acls and restrict_public_buckets all True.",
                bucket.urn,
            )
            continue
        if all(_settings_off(view, block) for block in mine):
            off = _settings_off(view, mine[0])
            report_violation(
                f"The S3 bucket '{bucket.name}' has a public access block '{mine[0].name}' that leaves "
                f"{', '.join(off)} off. Set all four settings to True.",
                bucket.urn,
            )


s3_block_public_access = StackValidationPolicy(
    name="s3-block-public-access",
    description="Every S3 bucket has a public access block with all four settings on.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_s3_block_public_access,
    config_schema=config_schema(),
)

POLICIES = [s3_block_public_access]
