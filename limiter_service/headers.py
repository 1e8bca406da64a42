"""RateLimit header fields.

Format of draft-ietf-httpapi-ratelimit-headers-11 (May 2026, the latest draft when this was written):
``RateLimit-Policy`` is a Structured Fields List of quota policies, ``"name";q=<quota>;w=<window s>``,
and ``RateLimit`` a List of service limits, ``"name";r=<remaining>;t=<seconds until reset>``
(sections 3 and 4 of the draft). All values are non-negative Integers; the policy name is an
sf-string (rule names are restricted to ``[A-Za-z0-9._-]``, so no escaping is ever needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from limiter_service.limiter import RuleDecision


def _seconds(value: float) -> int:
    return max(0, math.ceil(value - 1e-9))


def ratelimit_headers(decisions: Sequence[RuleDecision]) -> dict[str, str]:
    if not decisions:
        return {}
    policy = ", ".join(f'"{d.rule.name}";q={d.rule.limit};w={d.rule.window_seconds}' for d in decisions)
    limits = ", ".join(
        f'"{d.rule.name}";r={max(0, d.decision.remaining)};t={_seconds(d.decision.reset_after)}' for d in decisions
    )
    return {"RateLimit-Policy": policy, "RateLimit": limits}


def retry_after(seconds: float) -> str:
    """Retry-After as delay-seconds, at least 1 (a denied client should not retry at once)."""
    return str(max(1, _seconds(seconds)))
