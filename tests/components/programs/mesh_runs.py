"""Mocked runs of the mesh program, shared by the mesh test modules (one run per variant per session).

The variants run concurrently (each is its own process, see tools.mocked_run), on first use.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tools.mocked_run import run_stack
from tools.records import RecordedStack

PROGRAM = "tests/components/programs/mesh_region.py"

# A rules change (one limit differs) must roll the limiter's pods.
CHANGED_RULES = [
    {"name": "per-client-ip", "key": ["client_ip"], "limit": 301, "window_seconds": 60,
     "algorithm": "sliding_window", "failure_mode": "open"},
    {"name": "per-tenant", "key": ["header:X-Tenant-Id", "client_ip"], "limit": 50, "window_seconds": 10,
     "algorithm": "fixed_window", "failure_mode": "closed"},
]  # fmt: skip

VARIANTS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "dev": ("dev", {}, False),
    "dev-cloudfront-no-api": ("dev", {"cloudfrontEnabled": True, "apiGatewayEnabled": False}, False),
    "dev-rules-changed": ("dev", {"rateLimitRules": CHANGED_RULES}, False),
    "dev-preview": ("dev", {}, True),
}


@functools.cache
def mesh_runs() -> dict[str, RecordedStack]:
    """Every variant's recorded stack, by variant name."""

    def run(variant: str) -> RecordedStack:
        stack, overrides, preview = VARIANTS[variant]
        return RecordedStack(run_stack(stack, program=PROGRAM, config_overrides=overrides, preview=preview))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(VARIANTS, pool.map(run, VARIANTS), strict=True))
