"""What only a real deployment can show, on the Pulumi Automation API.

It deploys a throw-away stack with the config of Pulumi.dev.yaml (its rules and services are what the checks
below expect), plus your domain and your CIDR for the EKS API, then checks the request path from outside: DNS,
WAF, the limiter's 429 through Envoy ext_authz, API Gateway keys; and destroys the stack. It costs money and
takes most of an hour, so it runs only when asked: RATELIMITED_INTEGRATION=1, a Pulumi CLI, AWS credentials,
a Docker engine, the AWS CLI, RATELIMITED_TEST_DOMAIN (a subdomain in a Route 53 zone you own) and
RATELIMITED_TEST_CIDRS (comma-separated CIDRs of the machine running it). Everywhere else it is skipped, and
pytest prints the reason; the config it would deploy is checked everywhere (test_the_deployed_config_...).
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
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "ratelimited-platform"


def integration_stack_file(domain: str, cidrs: list[str]) -> dict:
    """Pulumi.dev.yaml's config with the tester's domain and CIDRs, and deletion protection off (teardown)."""
    stack_file = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    config = dict(stack_file["config"])
    config[f"{PROJECT}:domain"] = domain
    config[f"{PROJECT}:clusterPublicAccessCidrs"] = cidrs
    config[f"{PROJECT}:deletionProtection"] = False
    config[f"{PROJECT}:apiGatewayEnabled"] = True
    return {"config": config}


def test_the_deployed_config_is_dev_with_the_testers_domain_and_range():
    """Runs everywhere: the config the integration test deploys parses, passes what only `up` checks, and keeps
    the dev rules and services that the assertions below rely on."""
    import stack_config
    from tools import stack_files

    doc = integration_stack_file("it.example.org", ["192.168.7.0/24"])
    declared = stack_files.project()["config"]
    raw = {key: decl["default"] for key, decl in declared.items()}
    raw.update({key.split(":", 1)[1]: value for key, value in doc["config"].items()})
    cfg = stack_config.parse(raw, stack="it")
    stack_config.check_deployable(cfg)
    assert cfg.domain == "it.example.org" and cfg.cluster_public_access_cidrs == ("192.168.7.0/24",)
    assert not cfg.deletion_protection and cfg.api_gateway_enabled
    per_ip = next(r for r in cfg.rate_limit_rules if r["name"] == "per-client-ip")
    assert (per_ip["limit"], per_ip["window_seconds"]) == (300, 60)  # what the 429 test sends past
    assert "/orders" in {m.path_prefix for m in cfg.microservices}


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
    if not os.environ.get("RATELIMITED_TEST_CIDRS"):
        return "RATELIMITED_TEST_CIDRS is not set (the EKS API admits only the deployer's CIDRs)"
    return None


@pytest.fixture(scope="module")
def deployed():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from pulumi import automation as auto

    name = f"it-{uuid.uuid4().hex[:8]}"
    # The CLI reads a stack's config from Pulumi.<stack>.yaml beside Pulumi.yaml.
    stack_file = ROOT / f"Pulumi.{name}.yaml"
    cidrs = [c.strip() for c in os.environ["RATELIMITED_TEST_CIDRS"].split(",") if c.strip()]
    stack_file.write_text(yaml.safe_dump(integration_stack_file(os.environ["RATELIMITED_TEST_DOMAIN"], cidrs)))
    stack = auto.create_stack(name, work_dir=str(ROOT))
    try:
        result = stack.up(on_output=print, policy_packs=[str(ROOT / "policies")])
        yield stack, result.outputs
    finally:
        stack.destroy(on_output=print)
        stack.workspace.remove_stack(name)
        stack_file.unlink(missing_ok=True)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


@pytest.mark.aws
def test_domain_resolves_to_the_closest_healthy_region(deployed):
    domain = os.environ["RATELIMITED_TEST_DOMAIN"]
    assert socket.getaddrinfo(f"origin.{domain}", 443)


@pytest.mark.aws
def test_waf_blocks_a_known_bad_input(deployed):
    domain = os.environ["RATELIMITED_TEST_DOMAIN"]
    status, _ = _get(f"https://{domain}/orders?q=<script>alert(1)</script>")
    assert status == 403


@pytest.mark.aws
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


@pytest.mark.aws
def test_api_gateway_requires_an_api_key(deployed):
    domain = os.environ["RATELIMITED_TEST_DOMAIN"]
    status, _ = _get(f"https://api.{domain}/orders")
    assert status == 403
