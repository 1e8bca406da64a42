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

# Overlapping prefixes in an order that Istio's merge order would get wrong, and a service using every field.
IMAGE = "nginxinc/nginx-unprivileged:1.27-alpine"
OVERLAPPING_SERVICES = [
    {"name": "home", "image": IMAGE, "port": 8080, "pathPrefix": "/"},
    {"name": "orders", "image": IMAGE, "port": 8080, "pathPrefix": "/orders", "tables": ["orders"]},
    {"name": "orders-v2", "image": IMAGE, "port": 8081, "pathPrefix": "/orders/v2", "tables": ["orders"],
     "env": {"LOG_LEVEL": "debug", "FEATURE_X": "on"},
     "secrets": {
         "PAYMENT_KEY_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders/payment-AbCdEf",
         "SIGNING_KEY_PARAM": "arn:aws:ssm:eu-west-1:123456789012:parameter/orders/signing-key",
     },
     "readinessPath": "/orders/v2/ready", "livenessPath": "/orders/v2/live",
     "command": ["/app/server"], "args": ["--port", "8081"], "tmpSize": "64Mi"},
    {"name": "catalog", "image": IMAGE, "port": 8080, "pathPrefix": "/catalog"},
]  # fmt: skip

WEB_RULE = {"name": "per-client-ip", "match": {"entry": "web"}, "key": ["client_ip"], "limit": 300,
            "window_seconds": 60, "algorithm": "sliding_window", "failure_mode": "open"}  # fmt: skip

VARIANTS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "dev": ("dev", {}, False),
    # Without API Gateway a rule selecting the API entry would match nothing (refused): only the web rule stays.
    "dev-cloudfront-no-api": (
        "dev",
        {"cloudfrontEnabled": True, "apiGatewayEnabled": False, "rateLimitRules": [WEB_RULE]},
        False,
    ),
    "dev-rules-changed": ("dev", {"rateLimitRules": CHANGED_RULES}, False),
    "dev-preview": ("dev", {}, True),
    "dev-overlapping-routes": ("dev", {"microservices": OVERLAPPING_SERVICES}, False),
    # `pulumi config set domain mycorp.io`: every rule's hosts must follow.
    "dev-domain-changed": ("dev", {"domain": "mycorp.io"}, False),
    # Every sample leaves the project defaults (fail open, 200 ms, Istio 1.28.1): this one changes them.
    "dev-fail-closed": (
        "dev",
        {"extAuthzFailOpen": False, "extAuthzTimeoutMs": 350, "istioChartVersion": "1.27.3"},
        False,
    ),
}


@functools.cache
def mesh_runs() -> dict[str, RecordedStack]:
    """Every variant's recorded stack, by variant name."""

    def run(variant: str) -> RecordedStack:
        stack, overrides, preview = VARIANTS[variant]
        return RecordedStack(run_stack(stack, program=PROGRAM, config_overrides=overrides, preview=preview))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(VARIANTS, pool.map(run, VARIANTS), strict=True))
