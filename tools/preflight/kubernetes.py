"""Kubernetes custom resources and Helm values: what the API server and Helm refuse or lose, found offline.

- `istio-crd-schema`: every Istio custom resource the program registers (any type of an `*.istio.io` group)
  against its CRD's OpenAPI schema, as compiled into npm's @kubernetes-models/istio (generated from
  istio/istio's crd-all.gen.yaml): types, enums, required fields, oneOf. The API server refuses such an object.
- `istio-crd-unknown-field`: fields the CRD does not declare. The API server prunes them silently, so a
  misspelled field (`notPath` for `notPaths`) is lost without an error and the policy does something else.
  The declared fields are read from the same package's type declarations.
- `helm-values-schema`: the values of every release of Istio's `gateway` chart against the chart's own
  values.schema.json (vendored in schemas/, see its README): Helm refuses the release on any error.

Both Istio checks run in one Node process for all objects (tools/preflight/istio_crds.mjs). Values unknown
in a preview record (tools.mocks.UNKNOWN) are skipped one by one; the rest of the object is still checked.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tools.mocks import UNKNOWN
from tools.preflight.findings import Finding

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NODE_HELPER = HERE / "istio_crds.mjs"
GATEWAY_SCHEMA = HERE / "schemas" / "istio-gateway-values.schema.json"
GATEWAY_SCHEMA_COMMIT = "e7bf9af4144390f0119129b30321ff76a560aac0"
# The chart versions the vendored schema belongs to (schemas/README.md).
GATEWAY_SCHEMA_VERSIONS = re.compile(r"^1\.28\.\d+$")

CRD_SOURCE = (
    "npm @kubernetes-models/istio (compiled from istio/istio manifests/charts/base/files/crd-all.gen.yaml); "
    "https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation"
)
UNKNOWN_FIELD_SOURCE = (
    "npm @kubernetes-models/istio type declarations (the CRD's declared fields); unknown fields are pruned: "
    "https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#field-pruning"
)
GATEWAY_SOURCE = (
    f"istio/istio manifests/charts/gateway/values.schema.json at {GATEWAY_SCHEMA_COMMIT} "
    "(tools/preflight/schemas/); https://helm.sh/docs/topics/charts/#schema-files"
)

RULES: list[tuple[str, str]] = [
    ("istio-crd-schema", "Istio custom resources satisfy their CRD's schema (types, enums, required fields)."),
    ("istio-crd-unknown-field", "Istio custom resources use only fields their CRD declares."),
    ("helm-values-schema", "The values of Istio's gateway chart satisfy the chart's values.schema.json."),
]

_ISTIO_TYPE = re.compile(r"^kubernetes:(?P<group>[a-z0-9.-]+\.istio\.io)/(?P<version>v[0-9a-z]+):(?P<kind>[A-Za-z]+)$")


class PreflightToolError(RuntimeError):
    """A checker could not run (Node missing, its packages not installed): the preflight cannot pass."""


def check(record: dict[str, Any]) -> list[Finding]:
    """Every finding about the Istio custom resources and the gateway chart's values in `record`."""
    return check_istio_objects(record) + check_gateway_values(record)


# --- Istio custom resources ------------------------------------------------------------------------


def istio_resources(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [res for res in record["resources"] if _ISTIO_TYPE.match(res["type"])]


def check_istio_objects(record: dict[str, Any]) -> list[Finding]:
    resources = istio_resources(record)
    if not resources:
        return []
    objects = []
    for index, res in enumerate(resources):
        match = _ISTIO_TYPE.match(res["type"])
        assert match is not None
        obj = dict(res.get("inputs") or {})
        obj.setdefault("apiVersion", f"{match['group']}/{match['version']}")
        obj.setdefault("kind", match["kind"])
        objects.append({"id": str(index), "object": obj})
    answer = run_node_helper({"unknown": UNKNOWN, "objects": objects})
    findings = []
    for item in answer["findings"]:
        res = resources[int(item["id"])]
        if item["check"] == "unknown-field":
            rule, source = "istio-crd-unknown-field", UNKNOWN_FIELD_SOURCE
            message = f"The {_kind(res)} {_object_name(res)} has an {item['message']} at {item['path']}."
        else:
            rule, source = "istio-crd-schema", CRD_SOURCE
            message = f"The {_kind(res)} {_object_name(res)} does not match its CRD: {item['message']}."
        findings.append(Finding.about(rule, res, message, f"{source} (package version {answer['istio']})"))
    return findings


def run_node_helper(payload: dict[str, Any]) -> dict[str, Any]:
    """Run istio_crds.mjs once over `payload`; its answer, or PreflightToolError."""
    node = _node()
    proc = subprocess.run(
        [node, str(NODE_HELPER)],
        input=json.dumps(payload),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise PreflightToolError(
            f"{NODE_HELPER.name} failed (exit {proc.returncode}); run `npm ci` in {ROOT}. {proc.stderr.strip()[-2000:]}"
        )
    return json.loads(proc.stdout)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise PreflightToolError("node is not on PATH; the Istio CRD checks need Node.js and `npm ci`.")
    return node


def _kind(res: dict[str, Any]) -> str:
    return res["type"].rpartition(":")[2]


def _object_name(res: dict[str, Any]) -> str:
    meta = (res.get("inputs") or {}).get("metadata") or {}
    name = meta.get("name") or res["name"]
    return f"'{meta['namespace']}/{name}'" if meta.get("namespace") else f"'{name}'"


# --- the gateway chart's values --------------------------------------------------------------------


@functools.cache
def _gateway_validator() -> Any:
    import jsonschema

    schema = json.loads(GATEWAY_SCHEMA.read_text())
    # Helm reads `$schema: http://json-schema.org/schema#` as draft 7 (schemas/README.md).
    return jsonschema.Draft7Validator(schema)


def gateway_releases(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        res
        for res in record["resources"]
        if res["type"] == "kubernetes:helm.sh/v3:Release" and (res.get("inputs") or {}).get("chart") == "gateway"
    ]


def check_gateway_values(record: dict[str, Any]) -> list[Finding]:
    findings = []
    for res in gateway_releases(record):
        inputs = res.get("inputs") or {}
        version = inputs.get("version")
        if version != UNKNOWN and not (isinstance(version, str) and GATEWAY_SCHEMA_VERSIONS.match(version)):
            message = (
                f"The Helm release {res['name']!r} installs gateway chart version {version!r}, but the vendored "
                "values schema belongs to 1.28.x: vendor the schema of that version (tools/preflight/schemas/)."
            )
            findings.append(Finding.about("helm-values-schema", res, message, GATEWAY_SOURCE))
            continue
        values = inputs.get("values") or {}
        if values == UNKNOWN:
            continue
        for error in sorted(_gateway_validator().iter_errors(values), key=lambda e: list(e.absolute_path)):
            path = list(error.absolute_path)
            if _under_unknown(values, path) or error.instance == UNKNOWN:
                continue
            where = "/" + "/".join(str(p) for p in path)
            message = (
                f"The Helm release {res['name']!r} has gateway chart values that Helm refuses at {where}: "
                f"{error.message}."
            )
            findings.append(Finding.about("helm-values-schema", res, message, GATEWAY_SOURCE))
    return findings


def _under_unknown(values: Any, path: list[Any]) -> bool:
    value = values
    for part in path:
        if value == UNKNOWN:
            return True
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return False
    return value == UNKNOWN
