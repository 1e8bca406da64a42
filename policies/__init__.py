"""The project's CrossGuard policy pack (pulumi-policy).

`pulumi preview --policy-pack policies` starts `__main__.py`, which only builds the PolicyPack
(constructing one starts a gRPC server and blocks). Tests and `tools/analyzer.py` import this
package instead and build the same analyzer from `pack_arguments()`.

One module per area: `network` (WAF, load balancers, CloudFront, Route 53), `data` (DynamoDB),
`compute` (EKS, ECR), `storage` (S3), `observability` (alarms bound to entries and tables). Each
module's docstring says why its policies have the enforcement levels they have; `props` says how
unknown (preview) values are read.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import EnforcementLevel, Policy

from . import compute, data, network, observability, storage

PACK_NAME = "ratelimited-platform-policies"
DESCRIPTION = "WAF before every entry, autoscaled DynamoDB, TLS, encryption and exposure checks."


def all_policies() -> list[Policy]:
    """Every policy of the pack, in the order the pack reports them."""
    return [*network.POLICIES, *data.POLICIES, *compute.POLICIES, *storage.POLICIES, *observability.POLICIES]


def pack_arguments() -> dict[str, Any]:
    """The keyword arguments of the pack's `PolicyPack(...)` (and of its analyzer servicer)."""
    return {
        "name": PACK_NAME,
        "policies": all_policies(),
        # Every policy sets its own level; this default only covers a policy that forgets to.
        "enforcement_level": EnforcementLevel.ADVISORY,
        "description": DESCRIPTION,
        "display_name": "Rate-limited platform",
        "provider": "aws",
        "tags": ["aws", "waf", "dynamodb", "eks"],
    }
