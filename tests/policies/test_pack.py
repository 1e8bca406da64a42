"""The pack as a whole: its policies, their levels and config, unknown handling, and its start-up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.proxy import unknown_checking_proxy

import policies
from policies.props import UNKNOWN, get, is_unknown, items, plain
from tools.analyzer import UNKNOWN as SENTINEL

ROOT = Path(__file__).resolve().parents[2]

EXPECTED_LEVELS = {
    "waf-before-alb": "mandatory",
    "waf-before-api-stage": "mandatory",
    "waf-before-cloudfront": "mandatory",
    "alb-https-listeners": "mandatory",
    "alb-drop-invalid-headers": "mandatory",
    "alb-access-logs": "advisory",
    "cloudfront-viewer-https": "mandatory",
    "route53-latency-health-check": "mandatory",
    "dynamodb-autoscaling": "mandatory",
    "dynamodb-encryption": "advisory",
    "dynamodb-point-in-time-recovery": "advisory",
    "eks-endpoint-not-public": "mandatory",
    "eks-secrets-encrypted": "mandatory",
    "ecr-immutable-tags": "mandatory",
    "ecr-scan-on-push": "advisory",
    "s3-block-public-access": "mandatory",
    "alarm-per-resource": "advisory",
}
STACK_POLICIES = {"waf-before-alb", "waf-before-api-stage", "waf-before-cloudfront", "dynamodb-autoscaling"}
STACK_POLICIES |= {"s3-block-public-access", "alarm-per-resource"}


def test_policies_have_the_documented_levels_kinds_and_config():
    found = {p.name: p for p in policies.all_policies()}

    assert {name: p.enforcement_level.value for name, p in found.items()} == EXPECTED_LEVELS
    for name, policy in found.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name)
        expected = StackValidationPolicy if name in STACK_POLICIES else ResourceValidationPolicy
        assert isinstance(policy, expected), name
        assert policy.config_schema is not None
        assert policy.config_schema.properties["exemptResources"]["type"] == "array"
        assert policy.description.endswith(".")


def test_pack_arguments_build_a_pack_description():
    arguments = policies.pack_arguments()

    assert arguments["name"] == "ratelimited-platform-policies"
    assert arguments["enforcement_level"] is EnforcementLevel.ADVISORY
    assert [p.name for p in arguments["policies"]] == list(EXPECTED_LEVELS)


def test_main_only_builds_the_policy_pack():
    source = (ROOT / "policies" / "__main__.py").read_text()
    code = [line for line in source.splitlines() if line and not line.startswith(("#", '"', " ", "import", "from"))]

    assert code[-1] == "PolicyPack(**pack_arguments())"


def test_plain_reads_proxied_unknowns_without_raising():
    proxied = unknown_checking_proxy(
        {"internal": SENTINEL, "accessLogs": {"enabled": True, "bucket": SENTINEL}, "cidrs": ["10.0.0.0/8", SENTINEL]}
    )

    props = plain(proxied)

    assert is_unknown(props["internal"])
    assert get(props, "accessLogs.enabled") is True
    assert get(props, "accessLogs.bucket") is UNKNOWN
    assert items(props["cidrs"]) == ["10.0.0.0/8", UNKNOWN]
    assert get(props, "missing.deeper", "default") == "default"


def test_get_through_an_unknown_object_is_unknown():
    assert get({"viewerCertificate": SENTINEL}, "viewerCertificate.minimumProtocolVersion") is UNKNOWN
    assert items(SENTINEL) == [UNKNOWN]
    assert items(None) == []


def test_unknown_has_no_truth_value():
    with pytest.raises(TypeError):
        bool(UNKNOWN)


@pytest.mark.slow
def test_pack_starts_the_way_the_engine_starts_it():
    """`python -m pulumi.policy <engine> .` in policies/ serves the pack; GetAnalyzerInfo lists every policy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env["PYTHONPATH"] = ""
    with subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=ROOT / "policies",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            port = process.stdout.readline().strip()
            assert port.isdigit(), f"the pack printed {port!r} instead of its port"
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert info.name == "ratelimited-platform-policies"
            assert [p.name for p in info.policies] == list(EXPECTED_LEVELS)
        finally:
            process.kill()
            process.wait(timeout=10)


class _Args:
    def __init__(self, config: dict | None) -> None:
        self._config = config

    def get_config(self) -> dict | None:
        return self._config


def test_an_option_falls_back_to_its_schema_default_only_when_the_engine_sends_none():
    from policies.props import Option, config_schema

    option = Option("flag", {"type": "boolean", "default": True, "description": "d"})
    assert config_schema(option).properties["flag"]["default"] is True
    assert [option.value(_Args(c)) for c in (None, {}, {"flag": None})] == [True, True, True]
    assert option.value(_Args({"flag": False})) is False
    assert option.value(object()) is True  # a caller without config at all (no get_config)
    # Every policy's options: the schema default is the one value() falls back to, stated once.
    for policy in policies.all_policies():
        for key, schema in policy.config_schema.properties.items():
            assert "default" in schema, (policy.name, key)
