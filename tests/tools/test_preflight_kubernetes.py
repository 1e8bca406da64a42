"""The Kubernetes preflight: Istio objects against their CRDs, the gateway chart's values against its schema.

Each rule fails on a bad object and passes on a good one (hand-made records), then the real program's
records (session fixtures `dev_stack`, `prod_stack`) pass, and the same records broken on purpose fail.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from tools.mocks import UNKNOWN
from tools.preflight import kubernetes

AP = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
DR = "kubernetes:networking.istio.io/v1:DestinationRule"
GW = "kubernetes:networking.istio.io/v1:Gateway"
VS = "kubernetes:networking.istio.io/v1:VirtualService"
PA = "kubernetes:security.istio.io/v1:PeerAuthentication"
RELEASE = "kubernetes:helm.sh/v3:Release"


def resource(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:dev::ratelimited-platform::{type_}::{name}",
        "type": type_,
        "name": name,
        "inputs": inputs,
        "outputs": {},
        "property_dependencies": {},
    }


def record(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"project": "ratelimited-platform", "stack": "dev", "preview": False, "resources": list(resources)}


def istio(type_: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    group_version, _, kind = type_.removeprefix("kubernetes:").rpartition(":")
    meta = {"name": name, "namespace": "istio-ingress"}
    return resource(type_, name, {"apiVersion": group_version, "kind": kind, "metadata": meta, "spec": spec})


GOOD_AP = {
    "action": "CUSTOM",
    "provider": {"name": "ratelimit-ext-authz"},
    "rules": [{"to": [{"operation": {"notPaths": ["/healthz/ready"]}}]}],
    "selector": {"matchLabels": {"istio": "ingress-web", "any-label": "x"}},
}
GOOD_GW = {
    "selector": {"istio": "ingress-web"},
    "servers": [{"hosts": ["*"], "port": {"number": 80.0, "name": "http", "protocol": "HTTP"}}],
}
GOOD_DR = {"host": "limiter.limiter.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}


def rules(findings: list[kubernetes.Finding]) -> list[str]:
    return [f.rule for f in findings]


def test_rules_are_listed():
    assert [rule for rule, _ in kubernetes.RULES] == [
        "istio-crd-schema",
        "istio-crd-unknown-field",
        "helm-values-schema",
    ]


# --- istio-crd-schema and istio-crd-unknown-field --------------------------------------------------------


def test_good_istio_objects_pass():
    objects = [
        istio(AP, "ap", GOOD_AP),
        istio(GW, "gw", GOOD_GW),
        istio(DR, "dr", GOOD_DR),
        istio(PA, "pa", {"mtls": {"mode": "STRICT"}}),
        istio(
            VS,
            "vs",
            {
                "hosts": ["*"],
                "gateways": ["web"],
                "http": [{"directResponse": {"status": 200.0, "body": {"string": "ok"}}}],
            },
        ),
    ]
    assert kubernetes.check(record(*objects)) == []


@pytest.mark.parametrize(
    ("type_", "spec", "expected"),
    [
        (AP, {**GOOD_AP, "action": "RATELIMIT"}, "/spec/action must be equal to one of the allowed values"),
        (DR, {"trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}, "/spec must have required property host"),
        (
            GW,
            {
                **GOOD_GW,
                "servers": [{"hosts": ["*"], "port": {"number": "eighty", "name": "http", "protocol": "HTTP"}}],
            },
            "/spec/servers/0/port/number must be",
        ),
        (PA, {"mtls": {"mode": "STRICTER"}}, "/spec/mtls/mode must be equal to one of the allowed values"),
    ],
)
def test_istio_schema_errors(type_, spec, expected):
    findings = kubernetes.check(record(istio(type_, "obj", spec)))
    assert rules(findings) == ["istio-crd-schema"], findings
    assert expected in findings[0].message and "'istio-ingress/obj'" in findings[0].message
    assert findings[0].type == type_ and findings[0].name == "obj"


@pytest.mark.parametrize(
    ("type_", "spec", "path"),
    [
        (
            AP,
            {**GOOD_AP, "rules": [{"to": [{"operation": {"notPath": ["/healthz/ready"]}}]}]},
            "/spec/rules/0/to/0/operation/notPath",
        ),
        (AP, {**GOOD_AP, "rule": [{}]}, "/spec/rule"),
        (
            DR,
            {
                **GOOD_DR,
                "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}, "outlierDetection": {"consecutive5xxErrorz": 5.0}},
            },
            "/spec/trafficPolicy/outlierDetection/consecutive5xxErrorz",
        ),
        (GW, {**GOOD_GW, "selectors": {"istio": "x"}}, "/spec/selectors"),
    ],
)
def test_istio_unknown_fields(type_, spec, path):
    findings = kubernetes.check(record(istio(type_, "obj", spec)))
    assert rules(findings) == ["istio-crd-unknown-field"], findings
    assert f"at {path}." in findings[0].message


def test_an_istio_kind_with_no_crd_is_an_error():
    obj = istio("kubernetes:networking.istio.io/v9:Gateway", "gw", GOOD_GW)
    findings = kubernetes.check(record(obj))
    assert (
        rules(findings) == ["istio-crd-schema"]
        and "no CRD schema for networking.istio.io/v9 Gateway" in findings[0].message
    )


def test_unknown_values_are_skipped_one_by_one():
    port = {"number": UNKNOWN, "name": "http", "protocol": "HTTP"}
    gw = istio(GW, "gw", {**GOOD_GW, "servers": [{"hosts": ["*"], "port": port}]})
    dr = istio(DR, "dr", {"host": UNKNOWN, "trafficPolicy": UNKNOWN})
    assert kubernetes.check(record(gw, dr)) == []
    # The rest of an object with an unknown value is still checked.
    bad = istio(GW, "gw2", {**GOOD_GW, "servers": [{"hosts": ["*"], "port": port, "tsl": {}}]})
    assert rules(kubernetes.check(record(bad))) == ["istio-crd-unknown-field"]


def test_a_failing_helper_is_an_error_not_a_pass(monkeypatch, tmp_path):
    monkeypatch.setattr(kubernetes, "NODE_HELPER", tmp_path / "missing.mjs")
    with pytest.raises(kubernetes.PreflightToolError, match=r"missing\.mjs failed"):
        kubernetes.check(record(istio(AP, "ap", GOOD_AP)))


# --- helm-values-schema -----------------------------------------------------------------------------


GOOD_VALUES = {
    "name": "istio-ingress-web",
    "labels": {"app": "istio-ingress-web", "istio": "ingress-web"},
    "service": {"type": "ClusterIP", "ports": [{"name": "http", "port": 80.0, "targetPort": 80.0, "protocol": "TCP"}]},
    "autoscaling": {"enabled": True, "minReplicas": 2.0, "maxReplicas": 10.0},
    "podDisruptionBudget": {"maxUnavailable": 1.0},
    "podAnnotations": {"proxy.istio.io/config": '{"gatewayTopology": {"numTrustedProxies": 2}}'},
}


def gateway(values: Any, version: Any = "1.28.1", chart: str = "gateway") -> dict[str, Any]:
    inputs = {"chart": chart, "version": version, "namespace": "istio-ingress", "values": values}
    return resource(RELEASE, "gw-release", inputs)


def test_vendored_schema_is_a_valid_draft7_schema():
    jsonschema.Draft7Validator.check_schema(json.loads(kubernetes.GATEWAY_SCHEMA.read_text()))


def test_good_gateway_values_pass():
    assert kubernetes.check(record(gateway(GOOD_VALUES))) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"serviceType": "ClusterIP"}, "Additional properties are not allowed ('serviceType' was unexpected)"),
        ({"autoscaling": {"minReplicas": "2"}}, "at /autoscaling/minReplicas: '2' is not of type 'integer'"),
        ({"kind": "StatefulSet"}, "at /kind: 'StatefulSet' is not one of"),
        ({"service": {"ports": [{"port": 80.5}]}}, "at /service/ports/0/port: 80.5 is not of type 'integer'"),
        ({"podDisruptionBudget": {"unhealthyPodEvictionPolicy": "Always"}}, "'Always' is not one of"),
    ],
)
def test_bad_gateway_values_fail(change, expected):
    findings = kubernetes.check(record(gateway({**GOOD_VALUES, **change})))
    assert rules(findings) == ["helm-values-schema"], findings
    assert expected in findings[0].message and "'gw-release'" in findings[0].message


def test_other_charts_are_not_judged_by_the_gateway_schema():
    assert kubernetes.check(record(gateway({"anything": 1}, chart="istiod"))) == []


def test_a_chart_version_the_schema_does_not_belong_to_fails():
    findings = kubernetes.check(record(gateway(GOOD_VALUES, version="1.29.0")))
    assert rules(findings) == ["helm-values-schema"] and "'1.29.0'" in findings[0].message


def test_unknown_gateway_values_are_skipped_one_by_one():
    values = {**GOOD_VALUES, "autoscaling": {"minReplicas": UNKNOWN}, "name": UNKNOWN}
    assert kubernetes.check(record(gateway(values), gateway(UNKNOWN, version=UNKNOWN))) == []
    assert rules(kubernetes.check(record(gateway({**values, "replicas": 2.0})))) == ["helm-values-schema"]


# --- the real program -------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev_stack", "prod_stack"])
def test_real_program_has_no_kubernetes_findings(stack, request):
    recorded = request.getfixturevalue(stack).record
    regions = recorded["config"]["ratelimited-platform:regions"]
    count = len(json.loads(regions) if isinstance(regions, str) else regions)
    # Preconditions: every Istio kind the program uses, and both gateway releases per region, are judged.
    kinds = {res["type"] for res in kubernetes.istio_resources(recorded)}
    assert kinds == {AP, DR, GW, VS, PA}, kinds
    assert len(kubernetes.gateway_releases(recorded)) == 2 * count
    assert kubernetes.check(recorded) == []


def test_real_objects_broken_on_purpose_fail(dev_stack):
    broken = copy.deepcopy(dev_stack.record)
    [policy] = [r for r in broken["resources"] if r["type"] == AP and r["name"].endswith("gateway-web-ratelimit")]
    operation = policy["inputs"]["spec"]["rules"][0]["to"][0]["operation"]
    operation["notPath"] = operation.pop("notPaths")
    [release] = [r for r in kubernetes.gateway_releases(broken) if r["name"].endswith("gateway-api")]
    release["inputs"]["values"]["pdb"] = release["inputs"]["values"].pop("podDisruptionBudget")
    findings = kubernetes.check(broken)
    assert sorted((f.rule, f.name) for f in findings) == [
        ("helm-values-schema", release["name"]),
        ("istio-crd-unknown-field", policy["name"]),
    ]
