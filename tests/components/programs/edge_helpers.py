"""Queries the edge tests share: a region's RegionalEdge children, the stack's config, what the mock answers."""

from __future__ import annotations

import functools
import json
from typing import Any

from pulumi.runtime.mocks import MockCallArgs

from tools import stack_files
from tools.mocked_run import run_stack
from tools.mocks import PlatformMocks
from tools.records import RecordedStack, Resource

#: The health check of both ingress gateways' target groups (ALB and NLB), as recorded: the gateway pod's
#: readiness endpoint; two failures 10 s apart take a pod out, two successes bring it back.
GATEWAY_HEALTH_CHECK = {
    "enabled": True,
    "protocol": "HTTP",
    "port": "15021",
    "path": "/healthz/ready",
    "matcher": "200",
    "interval": 10,
    "timeout": 5,
    "healthyThreshold": 2,
    "unhealthyThreshold": 2,
}


def config(stack: RecordedStack, key: str) -> Any:
    """A config value of the recorded run, parsed from its engine (string) form."""
    raw = stack.record["config"][f"{stack.record['project']}:{key}"]
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


def regions(stack: RecordedStack) -> list[str]:
    return config(stack, "regions")


def under(stack: RecordedStack, region: str, type_: str) -> list[Resource]:
    """Resources of a type below that region's RegionalEdge."""
    return stack.of_type(type_, under=f"{region}-edge")


def one(resources: list[Resource], what: str) -> Resource:
    assert len(resources) == 1, f"expected one {what}, found {[r['name'] for r in resources]}"
    return resources[0]


def alb(stack: RecordedStack, region: str) -> Resource:
    found = [
        r
        for r in under(stack, region, "aws:lb/loadBalancer:LoadBalancer")
        if r["inputs"].get("loadBalancerType") == "application"
    ]
    return one(found, f"ALB in {region}")


def assert_reaches_only_the_gateway_pods(
    stack: RecordedStack, region: str, group_ids: set[str], target_group: dict[str, Any]
) -> None:
    """A load balancer's security groups allow egress to the VPC on its target group's traffic and health-check
    ports (TCP), and nothing else: without it every target stays unhealthy."""
    egress = [
        r["inputs"]
        for r in stack.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if r["inputs"]["securityGroupId"] in group_ids
    ]
    expected_ports = {int(target_group["port"]), int(target_group["healthCheck"]["port"])}
    assert {(e["fromPort"], e["toPort"]) for e in egress} == {(p, p) for p in expected_ports}
    vpc_cidr = stack.named(f"{region}-eks-vpc")["inputs"]["cidrBlock"]
    assert {(e["ipProtocol"], e["cidrIpv4"]) for e in egress} == {("tcp", vpc_cidr)}


def referrers(stack: RecordedStack, type_: str, target: Resource, prop: str) -> list[Resource]:
    """Resources of `type_` whose property `prop` was derived from `target`."""
    return [r for r in stack.of_type(type_) if stack.depends_on(r, target, prop)]


def mock_invoke(token: str, region: str, **args: Any) -> dict[str, Any]:
    """What the project's mock answers to an invoke in `region` (the ids a program must pass on)."""
    result, _ = PlatformMocks(default_region=region).call(MockCallArgs(token=token, args=args, provider=""))
    return result


# Config variations the edge tests share, each run once per session (a run costs a fresh process).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    # prod with CloudFront off (the ALBs open up, the origin-header machinery goes) and no API consumers
    # (methods stop requiring keys, no usage plans).
    "prod-open": ("prod", {"cloudfrontEnabled": False, "apiConsumers": []}),
    # dev without API Gateway (and without its rules on the API entry, which would then match nothing: refused).
    "dev-no-api": (
        "dev",
        {
            "apiGatewayEnabled": False,
            "rateLimitRules": [
                r
                for r in stack_files.merged_config("dev")["rateLimitRules"]
                if (r.get("match") or {}).get("entry") != "api"
            ],
        },
    ),
}


@functools.cache
def variant(name: str) -> RecordedStack:
    stack, overrides = VARIANTS[name]
    return RecordedStack(run_stack(stack, config_overrides=overrides))
