"""What only a real deployment can show, on the Pulumi Automation API.

It deploys a throw-away stack (config of Pulumi.dev.yaml, with your domain), then checks the request path
from outside: DNS, WAF, the limiter's 429 through Envoy ext_authz, API Gateway keys; and destroys the stack.
It costs money and takes most of an hour, so it runs only when asked: RATELIMITED_INTEGRATION=1, a Pulumi CLI,
AWS credentials, a Docker engine, and RATELIMITED_TEST_DOMAIN (a subdomain in a Route 53 zone you own).
Everywhere else it is skipped, and pytest prints the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.aws


def _skip_reason() -> str | None:
    if os.environ.get("RATELIMITED_INTEGRATION") != "1":
        return "integration test not requested (set RATELIMITED_INTEGRATION=1; it deploys real AWS resources)"
    if shutil.which("pulumi") is None:
        return "no Pulumi CLI on PATH"
    if shutil.which("docker") is None:
        return "no Docker engine (the program builds the limiter image)"
    if shutil.which("aws") is None:
        return "no AWS CLI (the kubeconfig runs `aws eks get-token`)"
    import boto3

    if boto3.session.Session().get_credentials() is None:
        return "no AWS credentials"
    if not os.environ.get("RATELIMITED_TEST_DOMAIN"):
        return "RATELIMITED_TEST_DOMAIN is not set"
    return None


@pytest.fixture(scope="module")
def deployed():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from pulumi import automation as auto

    name = f"it-{uuid.uuid4().hex[:8]}"
    stack = auto.create_stack(name, work_dir=str(ROOT))
    try:
        for key, value in {
            "domain": os.environ["RATELIMITED_TEST_DOMAIN"],
            "deletionProtection": "false",
            "apiGatewayEnabled": "true",
        }.items():
            stack.set_config(f"ratelimited-platform:{key}", auto.ConfigValue(value))
        result = stack.up(on_output=print, policy_packs=[str(ROOT / "policies")])
        yield stack, result.outputs
    finally:
        stack.destroy(on_output=print)
        stack.workspace.remove_stack(name)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


def test_domain_resolves_to_the_closest_healthy_region(deployed):
    domain = os.environ["RATELIMITED_TEST_DOMAIN"]
    assert socket.getaddrinfo(f"origin.{domain}", 443)


def test_waf_blocks_a_known_bad_input(deployed):
    domain = os.environ["RATELIMITED_TEST_DOMAIN"]
    status, _ = _get(f"https://{domain}/orders?q=<script>alert(1)</script>")
    assert status == 403


def test_the_limiter_answers_429_through_envoy_with_ratelimit_headers(deployed):
    domain = os.environ["RATELIMITED_TEST_DOMAIN"]
    statuses = []
    for _ in range(400):  # the dev stack's per-client-ip rule admits 300 a minute
        status, headers = _get(f"https://{domain}/orders")
        statuses.append(status)
        if status == 429:
            assert "Retry-After" in headers and "RateLimit" in headers
            break
        time.sleep(0.01)
    assert 429 in statuses


def test_api_gateway_requires_an_api_key(deployed):
    domain = os.environ["RATELIMITED_TEST_DOMAIN"]
    status, _ = _get(f"https://api.{domain}/orders")
    assert status == 403
