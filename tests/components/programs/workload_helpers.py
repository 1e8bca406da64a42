"""Lookups shared by the tests of the cluster workloads (mesh, limiter, services) over recorded stacks."""

from __future__ import annotations

import json
from typing import Any

from tools.records import RecordedStack

RELEASE = "kubernetes:helm.sh/v3:Release"
AUTHZ = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
TGB = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"


def config(stack: RecordedStack, key: str) -> Any:
    """A config value of the run, as the program read it (JSON decoded when it is JSON)."""
    value = stack.record["config"][f"{stack.record['project']}:{key}"]
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def k8s(stack: RecordedStack, typ: str, name: str, namespace: str | None = None, *, under: str | None = None) -> dict:
    """The one Kubernetes object of a type with this metadata name (and namespace)."""
    found = [
        r
        for r in stack.of_type(typ, under=under)
        if r["inputs"]["metadata"]["name"] == name
        and (namespace is None or r["inputs"]["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, f"expected one {typ} {namespace}/{name}, found {len(found)}"
    return found[0]


def component(stack: RecordedStack, type_name: str) -> dict:
    """The first component of a type (`Mesh`, `Limiter`, `Services`)."""
    found = stack.of_type(f"ratelimited:index:{type_name}")
    assert found, f"no {type_name} component registered"
    return found[0]


def helm_release(stack: RecordedStack, chart: str, release_name: str | None = None) -> dict:
    """The one Helm release of a chart (and name) below the mesh."""
    found = [
        r
        for r in stack.of_type(RELEASE, under=component(stack, "Mesh")["name"])
        if r["inputs"]["chart"] == chart and (release_name is None or r["inputs"].get("name") == release_name)
    ]
    assert len(found) == 1, f"expected one {chart} release {release_name or ''}, found {len(found)}"
    return found[0]


def route_table(stack: RecordedStack, kind: str, *, under: str | None = None) -> list[dict]:
    """The `http` list of a gateway's one route table."""
    return k8s(stack, VIRTUAL_SERVICE, f"{kind}-routes", "istio-ingress", under=under)["inputs"]["spec"]["http"]
