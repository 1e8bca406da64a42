"""Teardown: `pulumi destroy` must either complete or stop before it deletes anything.

AWS refuses to delete some resources while a guard is on: a load balancer or table with deletion protection,
a bucket that still holds objects (no force_destroy), a distribution's web ACL and certificate while a
distribution uses them. A destroy deletes in reverse dependency order and stops at the first refusal, with
half the stack gone. `protect` makes the destroy's preview fail first (pulumi engine, DeleteStep: "unable to
delete resource ... as it is currently marked for protection"), so such a resource must be protected; and a
retained (`retain_on_delete`) distribution would keep using what the same destroy deletes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.preflight.findings import Finding

RULES: list[tuple[str, str]] = [
    ("deletion-guard", "a resource AWS refuses to delete (deletion protection, a bucket without force_destroy) is "
     "protected, so `pulumi destroy` stops at its preview instead of half-way"),
    ("retained-user", "no retained resource keeps using a resource that the same destroy deletes"),
]  # fmt: skip

_SOURCE = "pulumi engine DeleteStep (protect), ELB/DynamoDB/S3 delete APIs (deletion protection, BucketNotEmpty)"


def aws_refuses_delete(resource: Mapping[str, Any]) -> str | None:
    """Why AWS would refuse to delete this resource at destroy time, or None."""
    inputs = resource.get("inputs") or {}
    if inputs.get("enableDeletionProtection") is True:
        return "its deletion protection is on"
    if inputs.get("deletionProtectionEnabled") is True:
        return "its deletion protection is on"
    if (
        resource["type"] in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
        and inputs.get("forceDestroy") is not True
    ):
        return "S3 refuses to delete a bucket that holds objects and force_destroy is off"
    return None


def check(record: Mapping[str, Any]) -> list[Finding]:
    by_urn = {r["urn"]: r for r in record["resources"]}
    found = []
    for resource in record["resources"]:
        why = aws_refuses_delete(resource) if resource.get("custom") else None
        if why and not resource.get("protect"):
            found.append(
                Finding.about(
                    "deletion-guard",
                    resource,
                    f"{resource['type']} '{resource['name']}' is not protected, but {why}: `pulumi destroy` would "
                    "delete the rest of the stack and then stop at it. Set `protect` with the same condition.",
                    _SOURCE,
                )
            )
        if resource.get("retain_on_delete") and resource["type"] != "aws:route53/record:Record":
            used = {u for urns in (resource.get("property_dependencies") or {}).values() for u in urns}
            deleted = [
                by_urn[u]["name"]
                for u in sorted(used)
                if u in by_urn
                and str(by_urn[u]["type"]).startswith("aws:")
                and by_urn[u].get("custom")
                and not by_urn[u].get("retain_on_delete")
                and not by_urn[u].get("protect")
            ]
            if deleted:
                found.append(
                    Finding.about(
                        "retained-user",
                        resource,
                        f"{resource['type']} '{resource['name']}' is retained on delete but uses "
                        f"{', '.join(deleted)}, which the same destroy deletes; AWS refuses to delete a resource in "
                        "use, so teardown would stop half-way. Protect it instead of retaining it.",
                        _SOURCE,
                    )
                )
    return found
