"""Every Kubernetes object the program registers, rendered to YAML and checked offline.

Sources: the workloads program (tests/components/programs/mesh_region.py: mesh, limiter, services) with the
dev config, and the real `__main__.py` for dev and prod. Each object is rendered from its
recorded inputs (wire form: camelCase already; integral floats turned back into integers) as
apiVersion/kind/metadata/spec|data, then:

- built-in kinds: `kubernetes-validate --strict` (Python API) at the cluster's Kubernetes version;
- CustomResources (Istio, TargetGroupBinding): kubernetes-validate bundles no schema for them (it raises
  SchemaNotFoundError), so they are checked here against the structural rules of their CRDs that this
  program touches (field names, types, enums, required fields), plus Istio's own semantic rules for CUSTOM
  AuthorizationPolicies;
- checkov `--framework kubernetes --skip-download` over all of them, with no failed check except SKIPS.

Not covered: the objects the Istio Helm charts render in the cluster (istiod, gateway Deployments, their
HPAs/PDBs/Services). Under Pulumi a `helm.v3.Release` is one resource; its manifests exist only in the
cluster. Their values are asserted in test_mesh.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.components.programs.mesh_runs import mesh_runs
from tools.mocked_run import ROOT
from tools.records import RecordedStack, is_unknown

# Checks that fail by design, each with its reason. A check listed here may fail only for the resources
# its predicate accepts; anything else still fails the test.
SKIPS: dict[str, tuple[str, Any]] = {
    "CKV_K8S_43": (
        "Image should use digest: microservice images come from stack config, where they are given by tag "
        "(the limiter's own image is pinned by digest). Pin them in config as repo@sha256:... to clear it.",
        lambda failure, images: "@sha256:" not in images.get(failure["resource"], "@sha256:"),
    ),
}


# -- rendering ---------------------------------------------------------------------------------------------
def _ints(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def k8s_objects(stack: RecordedStack) -> list[dict[str, Any]]:
    """The Kubernetes objects (typed resources and CustomResources) as manifests; Helm releases excluded."""
    objects = []
    for res in stack:
        typ = res["type"]
        if not typ.startswith("kubernetes:") or typ.startswith(("kubernetes:helm.sh/", "pulumi:providers:")):
            continue
        inputs = _ints(res["inputs"])
        group_version, kind = typ.removeprefix("kubernetes:").rsplit(":", 1)
        api_version = group_version.removeprefix("core/")
        manifest = {"apiVersion": inputs.get("apiVersion", api_version), "kind": inputs.get("kind", kind)}
        assert manifest["apiVersion"] == api_version and manifest["kind"] == kind, res["urn"]
        for key, value in inputs.items():
            if key not in ("apiVersion", "kind"):
                manifest[key] = value
        objects.append(manifest)
    return objects


def _has_unknown(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return is_unknown(value)


def _ref(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']} {meta.get('namespace', '-')}/{meta['name']}"


# -- CRD rules -------------------------------------------------------------------------------------------
# Structural schemas written from the CRDs (istio/api v1 types; aws-load-balancer-controller
# config/crd/bases/elbv2.k8s.aws_targetgroupbindings.yaml, v1beta1), limited to the fields a spec may
# carry at the levels this program fills; unknown fields are refused, as a structural CRD would prune them.
_STR = {"type": "string"}
_STRS = {"type": "array", "items": _STR}
_PORT = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, {"type": "string"}]}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


# Istio's objects are checked against the upstream CRDs by the preview's preflight (tools/preflight/
# kubernetes.py, tests/tools/test_preflight_kubernetes.py); the TargetGroupBinding CRD has no registry package,
# so its rules are written here from the AWS Load Balancer Controller's CRD.
CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("elbv2.k8s.aws/v1beta1", "TargetGroupBinding"): _obj(
        {
            "targetGroupARN": _STR,
            "targetGroupName": _STR,
            "targetType": {"enum": ["instance", "ip"]},
            "ipAddressType": {"enum": ["ipv4", "ipv6"]},
            "serviceRef": _obj({"name": _STR, "port": _PORT}, ("name", "port")),
            "networking": _obj(
                {
                    "ingress": {
                        "type": "array",
                        "items": _obj(
                            {
                                "from": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "oneOf": [
                                            _obj(
                                                {"securityGroup": _obj({"groupID": _STR}, ("groupID",))},
                                                ("securityGroup",),
                                            ),
                                            _obj({"ipBlock": _obj({"cidr": _STR}, ("cidr",))}, ("ipBlock",)),
                                        ]
                                    },
                                },
                                "ports": {
                                    "type": "array",
                                    "items": _obj({"port": _PORT, "protocol": {"enum": ["TCP", "UDP"]}}),
                                },
                            },
                            ("from", "ports"),
                        ),
                    }
                }
            ),
            "nodeSelector": {"type": "object"},
            "vpcID": _STR,
            "multiClusterTargetGroup": {"type": "boolean"},
        },
        ("serviceRef",),
    ),
}
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def is_custom(obj: dict[str, Any]) -> bool:
    return (obj["apiVersion"], obj["kind"]) in CRD_SCHEMAS or _is_istio(obj)


def _is_istio(obj: dict[str, Any]) -> bool:
    return str(obj["apiVersion"]).split("/")[0].endswith(".istio.io")


def validate_custom_resource(obj: dict[str, Any]) -> None:
    """Raise if a CustomResource breaks its CRD's structure (TargetGroupBinding; Istio's kinds: the upstream
    CRDs through the preflight) or Istio's validation rules that no CRD carries."""
    key = (obj["apiVersion"], obj["kind"])
    assert key in CRD_SCHEMAS or _is_istio(obj), f"{_ref(obj)}: no CRD rules for {key}; add them to CRD_SCHEMAS"
    assert set(obj) <= {"apiVersion", "kind", "metadata", "spec"}, f"{_ref(obj)}: unexpected top-level keys"
    meta = obj["metadata"]
    assert _DNS_SUBDOMAIN.match(meta["name"]) and len(meta["name"]) <= 253, f"{_ref(obj)}: bad name"
    assert meta.get("namespace") and meta["namespace"] != "default", f"{_ref(obj)}: needs a non-default namespace"
    if key in CRD_SCHEMAS:
        jsonschema.validate(obj["spec"], CRD_SCHEMAS[key])
    if obj["kind"] == "AuthorizationPolicy":
        spec = obj["spec"]
        # istio/api: provider is required for, and only allowed with, action CUSTOM; a CUSTOM policy
        # without rules never matches.
        assert (spec.get("action") == "CUSTOM") == ("provider" in spec), f"{_ref(obj)}: provider iff CUSTOM"
        if spec.get("action") == "CUSTOM":
            assert spec.get("rules"), f"{_ref(obj)}: a CUSTOM policy needs at least one rule"


# -- checkov ----------------------------------------------------------------------------------------------
def checkov_binary() -> str | None:
    local = ROOT / ".venv-checkov" / "bin" / "checkov"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("checkov")


def run_checkov(binary: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="k8s-manifests-") as tmp:
        for i, obj in enumerate(objects):
            meta = obj["metadata"]
            name = f"{i:03d}-{obj['kind']}-{meta.get('namespace', 'cluster')}-{meta['name']}.yaml"
            (Path(tmp) / name).write_text(yaml.safe_dump(obj, sort_keys=False))
        proc = subprocess.run(
            [binary, "-d", tmp, "--framework", "kubernetes", "--skip-download", "--output", "json", "--quiet",
             "--compact"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise AssertionError(f"checkov failed to run (exit {proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [f for r in reports for f in r.get("results", {}).get("failed_checks", [])]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    return {"failed": failed, "passed": passed}


# -- fixtures ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def manifest_sources(request) -> dict[str, tuple[RecordedStack, str]]:
    """Recorded stacks whose Kubernetes objects are checked, with the cluster's Kubernetes version."""
    runs = mesh_runs()
    variants = ("dev", "dev-cloudfront-no-api", "dev-overlapping-routes")
    sources = {f"mesh-program-{v}": (runs[v], _k8s_version(runs[v].record)) for v in variants}
    for stack in ("dev", "prod"):
        recorded = request.getfixturevalue(f"{stack}_stack")  # tests/conftest.py: `__main__.py` under mocks
        sources[f"main-{stack}"] = (recorded, _k8s_version(recorded.record))
    return sources


def _k8s_version(record: dict[str, Any]) -> str:
    value = record["config"].get(f"{record['project']}:kubernetesVersion", "1.34")
    return str(json.loads(value) if value.startswith('"') else value)


@pytest.fixture(scope="session")
def manifests(manifest_sources) -> dict[str, tuple[list[dict[str, Any]], str]]:
    return {name: (k8s_objects(stack), version) for name, (stack, version) in manifest_sources.items()}


@pytest.fixture(scope="session")
def checkov_result(request) -> dict[str, Any]:
    """One checkov run over the union of all sources' objects (deduplicated by content)."""
    binary = checkov_binary()
    if binary is None:
        reason = ("checkov not found: expected .venv-checkov/bin/checkov at the repository root or `checkov` "
                  "on PATH (it cannot share .venv: dependency conflicts)")  # fmt: skip
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    unique: dict[str, dict[str, Any]] = {}
    for objects, _ in request.getfixturevalue("manifests").values():
        for obj in objects:
            unique.setdefault(json.dumps(obj, sort_keys=True), obj)
    objects = list(unique.values())
    result = run_checkov(binary, objects)
    result["objects"] = objects
    return result


# -- tests ------------------------------------------------------------------------------------------------
def test_sources_register_kubernetes_objects(manifests):
    for name, (objects, _) in manifests.items():
        kinds = {o["kind"] for o in objects}
        assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap",
                "ServiceAccount", "NetworkPolicy", "TargetGroupBinding", "AuthorizationPolicy",
                "PeerAuthentication", "Gateway", "VirtualService"} <= kinds, name  # fmt: skip


def test_objects_are_fully_known_and_namespaced(manifests):
    for objects, _ in manifests.values():
        for obj in objects:
            assert not _has_unknown(obj), f"{_ref(obj)} has unknown values after an update"
            # Cluster-scoped kinds: namespaces, and the AMP scraper's read-only RBAC (observability layer).
            if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
                assert obj["metadata"].get("namespace") not in (None, "", "default"), _ref(obj)


def test_builtin_kinds_pass_kubernetes_validate_strict(manifests):
    checked = 0
    for objects, version in manifests.values():
        for obj in objects:
            if is_custom(obj):
                continue
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                pytest.fail(f"{_ref(obj)}: no bundled schema and no CRD rules; add it to CRD_SCHEMAS")
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{_ref(obj)} fails kubernetes-validate --strict at {version}: {exc.message} "
                            f"(at {'/'.join(map(str, exc.path))})")  # fmt: skip
            checked += 1
    assert checked > 0


def test_kubernetes_validate_has_no_schema_for_custom_resources(manifests):
    """Documents why CustomResources are checked against their CRDs instead."""
    objects, version = next(iter(manifests.values()))
    custom = [o for o in objects if is_custom(o)]
    assert custom
    for obj in custom:
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(obj, version, strict=True)


def test_custom_resources_follow_their_crds(manifests):
    checked = 0
    for objects, _ in manifests.values():
        for obj in objects:
            if is_custom(obj):
                validate_custom_resource(obj)
                checked += 1
    assert checked > 0


def test_crd_rules_catch_mistakes():
    """The rules no CRD carries, and the TargetGroupBinding's, are not vacuous: typical mistakes are refused.
    (Istio fields and enum values are the upstream CRDs' job: tests/tools/test_preflight_kubernetes.py.)"""
    good = {
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "p", "namespace": "istio-ingress"},
        "spec": {"action": "CUSTOM", "provider": {"name": "x"}, "rules": [{}]},
    }  # fmt: skip
    validate_custom_resource(good)
    for spec in (
        {"action": "CUSTOM", "provider": {"name": "x"}},  # no rules: never matches
        {"action": "ALLOW", "provider": {"name": "x"}, "rules": [{}]},
    ):
        with pytest.raises((AssertionError, jsonschema.ValidationError)):
            validate_custom_resource({**good, "spec": spec})
    tgb = {"apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
           "metadata": {"name": "t", "namespace": "n"},
           "spec": {"targetGroupArn": "arn", "serviceRef": {"name": "s", "port": 80}}}  # fmt: skip
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(tgb)


def test_checkov_kubernetes_has_no_unexpected_failures(checkov_result):
    images = {}
    for obj in checkov_result["objects"]:
        if obj["kind"] == "Deployment":
            meta = obj["metadata"]
            resource = f"Deployment.{meta['namespace']}.{meta['name']}"
            images[resource] = " ".join(c["image"] for c in obj["spec"]["template"]["spec"]["containers"])
    unexpected = []
    for failure in checkov_result["failed"]:
        skip = SKIPS.get(failure["check_id"])
        if skip is None or not skip[1](failure, images):
            unexpected.append(f"{failure['check_id']} {failure['check_name']!r} on {failure['resource']}")
    assert not unexpected, "checkov kubernetes failures:\n" + "\n".join(sorted(set(unexpected)))
    assert checkov_result["passed"] > 100


def test_objects_rendered_by_helm_charts_are_not_checked_here(manifest_sources):
    """Reported as a skip on purpose, so that every test report says what the offline checks do not cover."""
    releases = sorted(
        {
            f"{r['inputs']['chart']} ({r['inputs'].get('name', r['name'])})"
            for stack, _ in manifest_sources.values()
            for r in stack.of_type("kubernetes:helm.sh/v3:Release")
            if any(a["type"] == "ratelimited:index:Mesh" for a in stack.ancestors(r))
        }
    )
    assert any(r.startswith("istiod") for r in releases)
    pytest.skip(
        "not validated offline: the objects these Helm releases render exist only in the cluster (a "
        f"helm.v3.Release is one Pulumi resource): {', '.join(releases)}; their values are asserted in test_mesh.py"
    )


def test_checkov_skips_are_few_and_explained():
    assert len(SKIPS) <= 3
    for check_id, (reason, _) in SKIPS.items():
        assert re.match(r"^CKV2?_K8S_\d+$", check_id) and len(reason) > 40
