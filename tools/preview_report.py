"""The offline preview's report: one JSON document (schema below) and its human rendering.

`document(...)` builds the document from the recorded stack (tools.mocked_run), the pack's verdict
(tools.analyzer), the preflight findings (tools.preflight) and the cost estimate (tools.cost);
`text(document)` renders it the way `pulumi preview` prints a plan: the resource tree with
`+ create` markers, the outputs, the policy packs, then a summary whose counts add up.

The JSON document (`--json`), schema version 1. Keys are only ever added within a version; a
removed or renamed key bumps `schema_version`. Values the engine would not know in a preview are
`{"unknown": true}`; secrets are `{"secret": true}` and never printed.

    schema_version  1
    project, stack  names; mode: "preview" (computed outputs unknown) or "update" (outputs known)
    config          the stack config the program ran with: {key: value}, project prefix removed
    without         {"patterns": [...], "dropped": [resource names], "dangling": [{"urn", "name",
                    "type", "references": [{"urn", "name", "via"}]}]}: kept resources whose input
                    "via" was derived from a dropped one
    resources       [{"urn", "type", "name", "parent", "provider", "custom", "component" (nearest
                    ratelimited:index:* ancestor's urn or ""), "region", "operation": "create",
                    "inputs" (masked), "dependencies", "property_dependencies": {input: [urn]}}]
    outputs         {name: value}: the stack outputs, masked
    policies        {"packs": [{"name", "version", "policies": [{"name", "description", "type",
                    "enforcement_level", "default_enforcement_level", "config", "judged": [urn],
                    "judged_by_type": {type: count}, "violations"}]}], "diagnostics": [{"policy",
                    "enforcement_level", "urn", "resource_name", "resource_type", "message",
                    "description", "pack", "call"}], "not_applicable": [...]}
    preflight       {"rules": [{"id", "description"}], "resources_checked", "errors": [{"rule",
                    "urn", "name", "type", "message", "source", "severity": "error"}]}: checks of what
                    AWS, IAM, Helm or Kubernetes would refuse at `up`, over a run with outputs known
    cost            see tools/cost.py (estimate by resource and region, excluded usage prices)
    summary         {"resources", "operations": {"create": n}, "kinds": {"stack", "component",
                    "provider", "custom"}, "policies", "mandatory_violations",
                    "advisory_violations", "preview_skips", "preflight_errors",
                    "monthly_fixed_cost_usd", "exit_code"}

`kinds` add up to `resources`; `exit_code` is 1 when there is a mandatory violation or a
preflight error, else 0.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SCHEMA_VERSION = 1
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
_SECRET_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270"
COMPONENT_PREFIX = "ratelimited:index:"
_REGION = re.compile(r"(?<![a-z])([a-z]{2}(?:-gov)?-[a-z]+-\d+)(?![0-9])")


# --- masking -------------------------------------------------------------------------------


def mask(value: Any) -> Any:
    """A wire-form value with secrets as {"secret": true} and unknowns as {"unknown": true}."""
    if isinstance(value, Mapping):
        if value.get(_SECRET_SIG) == _SECRET_VALUE:
            return {"secret": True}
        if value.get("secret") is True and len(value) == 1:
            return {"secret": True}
        return {str(k): mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if value == UNKNOWN:
        return {"unknown": True}
    return value


def _declarations() -> dict[str, Any]:
    from tools import stack_files

    try:
        return stack_files.declarations()
    except (OSError, stack_files.StackFileError):
        return {}


def _config_value(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# --- the record ----------------------------------------------------------------------------


def without(record: dict[str, Any], patterns: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """The record minus the resources whose name matches a pattern, and minus their descendants.

    This simulates the program without those registrations: nothing else changes, so a
    dependency on a dropped resource simply points nowhere (see `dangling`).
    """
    if not patterns:
        return record, []
    resources = record["resources"]
    dropped = {r["urn"] for r in resources if any(fnmatch.fnmatchcase(r["name"], p) for p in patterns)}
    changed = True
    while changed:
        changed = False
        for resource in resources:
            if resource["urn"] not in dropped and resource.get("parent") in dropped:
                dropped.add(resource["urn"])
                changed = True
    names = [r["name"] for r in resources if r["urn"] in dropped]
    kept = [r for r in resources if r["urn"] not in dropped]
    return {**record, "resources": kept}, names


def dangling(original: Mapping[str, Any], kept: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Kept resources whose inputs were derived from a dropped resource (through a property dependency).

    A dependsOn alone is not reported: it orders creation without carrying a value, and the engine
    expands a dependsOn on a component into one on each of its children.
    """
    by_urn = {r["urn"]: r for r in original["resources"]}
    kept_urns = {r["urn"] for r in kept["resources"]}
    found = []
    for resource in kept["resources"]:
        references = [
            {"urn": urn, "name": by_urn[urn]["name"], "via": prop}
            for prop, urns in (resource.get("property_dependencies") or {}).items()
            for urn in urns
            if urn in by_urn and urn not in kept_urns
        ]
        if references:
            found.append(
                {"urn": resource["urn"], "name": resource["name"], "type": resource["type"], "references": references}
            )
    return found


def placement(record: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """URN -> (region, layer): the layer is the nearest `ratelimited:index:<Layer>` component's type, the region
    the first AWS region named by the resource or an ancestor (`<region>-...`), else "global"."""
    by_urn = {r["urn"]: r for r in record["resources"]}
    result: dict[str, tuple[str, str]] = {}
    for resource in record["resources"]:
        component = nearest_component(resource, by_urn)
        if component is not None:
            layer = str(component["type"])[len(COMPONENT_PREFIX) :]
        elif resource["type"] == "pulumi:pulumi:Stack":
            layer = "(stack)"
        elif str(resource["type"]).startswith("pulumi:providers:"):
            layer = "(providers)"
        else:
            layer = "(no component)"
        region = "global"
        current: Mapping[str, Any] | None = resource
        while current is not None:
            match = _REGION.search(str(current["name"]))
            if match:
                region = match.group(1)
                break
            current = by_urn.get(current.get("parent") or "")
        result[resource["urn"]] = (region, layer)
    return result


def nearest_component(resource: Mapping[str, Any], by_urn: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The resource itself or its nearest ancestor that is one of the project's components."""
    current: Mapping[str, Any] | None = resource
    while current is not None:
        if str(current["type"]).startswith(COMPONENT_PREFIX):
            return current
        current = by_urn.get(current.get("parent") or "")
    return None


def kind(resource: Mapping[str, Any]) -> str:
    if resource["type"] == "pulumi:pulumi:Stack":
        return "stack"
    if str(resource["type"]).startswith("pulumi:providers:"):
        return "provider"
    return "custom" if resource.get("custom") else "component"


def simplify_type(type_: str) -> str:
    """The type as `pulumi preview` displays it: `aws:s3/bucket:Bucket` -> `aws:s3:Bucket`."""
    parts = type_.split(":")
    if len(parts) != 3 or not parts[2] or "/" not in parts[1]:
        return type_
    module, _, file = parts[1].rpartition("/")
    if file != parts[2][:1].lower() + parts[2][1:]:
        return type_
    return f"{parts[0]}:{module}:{parts[2]}"


# --- the document --------------------------------------------------------------------------


def document(
    record: Mapping[str, Any],
    result: Any,
    *,
    findings: Sequence[Any] = (),
    rules: Sequence[tuple[str, str]] = (),
    cost: Mapping[str, Any] | None = None,
    patterns: Sequence[str] = (),
    dropped: Sequence[str] = (),
    dangling_refs: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The preview as one JSON-serialisable document (schema in the module docstring)."""
    resources = list(record["resources"])
    by_urn = {r["urn"]: r for r in resources}
    places = placement(record)
    types = {r["urn"]: r["type"] for r in resources}
    project = str(record.get("project") or "")
    declared = _declarations()
    config = {}
    for key, value in (record.get("config") or {}).items():
        bare = key.split(":", 1)[1] if key.startswith(f"{project}:") else key
        # The engine passes strings as they are and everything else as JSON text.
        string = (declared.get(bare) or {}).get("type") == "string"
        config[bare] = value if string else _config_value(value)
    entries = []
    for resource in resources:
        component = nearest_component(resource, by_urn)
        entries.append(
            {
                "urn": resource["urn"],
                "type": resource["type"],
                "name": resource["name"],
                "parent": resource.get("parent") or "",
                "provider": _provider_urn(resource.get("provider") or ""),
                "custom": bool(resource.get("custom")),
                "component": component["urn"] if component is not None and component is not resource else "",
                "region": places[resource["urn"]][0],
                "operation": "create",
                "inputs": mask(resource.get("inputs") or {}),
                "dependencies": list(resource.get("dependencies") or []),
                "property_dependencies": {
                    k: list(v) for k, v in (resource.get("property_dependencies") or {}).items() if v
                },
            }
        )
    diagnostics = [d.to_dict() for d in result.diagnostics]
    violations = Counter(d.policy for d in result.diagnostics if not d.is_preview_skip)
    policies = []
    for policy in result.policies:
        judged = list(policy.get("judged") or [])
        policies.append(
            {
                "name": policy["name"],
                "description": policy.get("description", ""),
                "type": policy.get("type", ""),
                "enforcement_level": policy.get("enforcement_level", ""),
                "default_enforcement_level": policy.get(
                    "default_enforcement_level", policy.get("enforcement_level", "")
                ),
                "config": mask(policy.get("config") or {}),
                "judged": judged,
                "judged_by_type": dict(Counter(types.get(urn, "?") for urn in judged)),
                "violations": violations.get(policy["name"], 0),
            }
        )
    mandatory = len(result.mandatory)
    preflight_errors = len(findings)
    kinds = Counter(kind(r) for r in resources)
    monthly = (cost or {}).get("total_monthly_usd")
    return {
        "schema_version": SCHEMA_VERSION,
        "project": project,
        "stack": record.get("stack"),
        "mode": "preview" if record.get("preview") else "update",
        "config": config,
        "without": {"patterns": list(patterns), "dropped": list(dropped), "dangling": list(dangling_refs)},
        "resources": entries,
        "outputs": mask(record.get("exports") or {}),
        "policies": {
            "packs": [{"name": result.pack, "version": getattr(result, "version", ""), "policies": policies}],
            "diagnostics": diagnostics,
            "not_applicable": list(result.not_applicable),
        },
        "preflight": {
            "rules": [{"id": rule, "description": text} for rule, text in rules],
            "resources_checked": len(resources),
            "errors": [
                {
                    "rule": f.rule,
                    "urn": f.urn,
                    "name": f.name,
                    "type": f.type,
                    "message": f.message,
                    "source": f.source,
                    "severity": "error",
                }
                for f in findings
            ],
        },
        "cost": dict(cost or {}),
        "summary": {
            "resources": len(resources),
            "operations": {"create": len(resources)},
            "kinds": {k: kinds.get(k, 0) for k in ("stack", "component", "provider", "custom")},
            "policies": len(policies),
            "mandatory_violations": mandatory,
            "advisory_violations": len(result.advisory),
            "preview_skips": len(result.preview_skips),
            "preflight_errors": preflight_errors,
            "monthly_fixed_cost_usd": monthly,
            "exit_code": 1 if mandatory or preflight_errors else 0,
        },
    }


def _provider_urn(reference: str) -> str:
    if not reference:
        return ""
    return reference.rsplit("::", 1)[0] if reference.count("::") > 3 else reference


# --- text ----------------------------------------------------------------------------------


def text(doc: Mapping[str, Any], *, details: Sequence[str] = ()) -> str:
    """The document as `pulumi preview` would print it (offline, so the header says so)."""
    lines: list[str] = []
    mode = "preview: computed outputs unknown" if doc["mode"] == "preview" else "update: outputs known"
    lines.append(f"Previewing update ({doc['stack']}) offline: {doc['project']} under mocks ({mode}; see --help)")
    lines.append("")
    lines += _tree(doc["resources"])
    if doc["without"]["dropped"]:
        lines.append("")
        lines.append(
            f"Simulated without {len(doc['without']['dropped'])} registration(s) "
            f"({', '.join(doc['without']['patterns'])}): {', '.join(doc['without']['dropped'])}"
        )
    for item in doc["without"]["dangling"]:
        refs = ", ".join(f"'{r['name']}' (through {r['via']})" for r in item["references"])
        lines.append(
            f"warning: '{item['name']}' ({item['type']}) is kept but still references dropped {refs}; "
            "the real program could not register it like this"
        )
    if details:
        lines.append("")
        lines += details_lines(doc, details)
    lines.append("")
    lines += _outputs(doc["outputs"])
    lines.append("")
    lines += _policies(doc)
    lines.append("")
    lines += _preflight(doc)
    if doc.get("cost"):
        from tools import cost as cost_module

        lines.append("")
        lines += cost_module.text_lines(doc["cost"])
    lines.append("")
    lines += _summary(doc)
    return "\n".join(lines) + "\n"


def _tree(resources: Sequence[Mapping[str, Any]]) -> list[str]:
    children: dict[str, list[Mapping[str, Any]]] = {}
    urns = {r["urn"] for r in resources}
    roots = []
    for resource in resources:
        parent = resource.get("parent") or ""
        if parent in urns:
            children.setdefault(parent, []).append(resource)
        else:
            roots.append(resource)
    rows: list[tuple[str, str, str]] = []

    def walk(resource: Mapping[str, Any], prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        rows.append((prefix + branch + simplify_type(resource["type"]), resource["name"], resource["operation"]))
        kids = children.get(resource["urn"], [])
        inner = prefix if top else prefix + ("   " if last else "│  ")
        for i, kid in enumerate(kids):
            walk(kid, inner, i == len(kids) - 1, False)

    for root in roots:
        walk(root, "", True, True)
    type_width = max([len(r[0]) for r in rows] + [4])
    name_width = max([len(r[1]) for r in rows] + [4])
    lines = [f"     {'Type'.ljust(type_width)}  {'Name'.ljust(name_width)}  Plan"]
    for type_, name, operation in rows:
        lines.append(f" +   {type_.ljust(type_width)}  {name.ljust(name_width)}  {operation}")
    return lines


def _render_value(value: Any) -> str:
    if isinstance(value, Mapping) and value == {"secret": True}:
        return "[secret]"
    if isinstance(value, Mapping) and value == {"unknown": True}:
        return "[unknown]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_render_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_render_value(v) for v in value) + "]"
    return json.dumps(value)


def _outputs(outputs: Mapping[str, Any]) -> list[str]:
    lines = ["Outputs:"]
    if not outputs:
        lines.append("    (none)")
    width = max([len(k) for k in outputs] + [0])
    for key in sorted(outputs):
        flat = _render_value(outputs[key])
        lines.append(f"    {key.ljust(width)}: {flat if len(flat) <= 100 else _pretty(outputs[key], 4)}")
    return lines


def _judged_text(by_type: Mapping[str, int]) -> str:
    if not by_type:
        return "nothing to judge"
    return "judged " + ", ".join(
        f"{n} {simplify_type(t)}" for t, n in sorted(by_type.items(), key=lambda i: (-i[1], i[0]))
    )


def _policies(doc: Mapping[str, Any]) -> list[str]:
    lines = ["Policies:"]
    by_urn = {r["urn"]: r for r in doc["resources"]}
    diagnostics = doc["policies"]["diagnostics"]
    for pack in doc["policies"]["packs"]:
        levels = Counter(p["enforcement_level"] for p in pack["policies"])
        level_text = ", ".join(
            f"{levels[k]} {k}" for k in ("mandatory", "remediate", "advisory", "disabled") if levels.get(k)
        )
        pack_diags = [d for d in diagnostics if d.get("pack", pack["name"]) == pack["name"]]
        mandatory = sum(1 for d in pack_diags if d["enforcement_level"] == "mandatory")
        advisory = sum(1 for d in pack_diags if d["enforcement_level"] == "advisory")
        lines.append(
            f"    {pack['name']}@v{pack['version']}: {len(pack['policies'])} policies ({level_text}); "
            f"{mandatory} mandatory violation(s), {advisory} advisory"
        )
        width = max([len(p["name"]) for p in pack["policies"]] + [0])
        for policy in pack["policies"]:
            level = policy["enforcement_level"]
            changed = (
                f" (default {policy['default_enforcement_level']})"
                if level != policy["default_enforcement_level"]
                else ""
            )
            noun = "violation" if policy["violations"] == 1 else "violations"
            lines.append(
                f"      {policy['name'].ljust(width)}  {level}{changed}: {_judged_text(policy['judged_by_type'])}, "
                f"{policy['violations']} {noun}"
            )
        order = {"mandatory": 0, "remediate": 1, "advisory": 2}
        for diagnostic in sorted(pack_diags, key=lambda d: (order.get(d["enforcement_level"], 3), d["policy"])):
            resource = by_urn.get(diagnostic["urn"])
            where = f"{resource['name']} ({resource['type']})" if resource else diagnostic["urn"] or "(the stack)"
            message = diagnostic["message"].split("\n", 1)[-1]
            lines.append(f"    [{diagnostic['enforcement_level']}] {diagnostic['policy']}: {where}")
            lines.append(f"        {message}")
            if diagnostic["urn"]:
                lines.append(f"        urn: {diagnostic['urn']}")
    return lines


def _preflight(doc: Mapping[str, Any]) -> list[str]:
    section = doc["preflight"]
    errors = section["errors"]
    lines = [
        f"Preflight: {len(section['rules'])} rules over {section['resources_checked']} resources, "
        f"{len(errors)} error(s)"
    ]
    if not errors:
        lines.append("    Nothing AWS, IAM, Helm or Kubernetes is known to refuse.")
    for error in errors:
        lines.append(f"    error  [{error['rule']}] {error['message']}")
        lines.append(f"           source: {error['source']}")
        lines.append(f"           urn: {error['urn']}")
    return lines


def _summary(doc: Mapping[str, Any]) -> list[str]:
    summary = doc["summary"]
    kinds = summary["kinds"]
    lines = [
        "Resources:",
        f"    + {summary['operations']['create']} to create",
        f"    ({summary['resources']} resources: {kinds['custom']} custom, {kinds['component']} components, "
        f"{kinds['provider']} providers, {kinds['stack']} stack)",
        "",
        f"Policies: {summary['mandatory_violations']} mandatory violation(s), {summary['advisory_violations']} advisory"
        + (f", {summary['preview_skips']} skipped on unknown values" if summary["preview_skips"] else ""),
        f"Preflight: {summary['preflight_errors']} error(s)",
    ]
    if summary.get("monthly_fixed_cost_usd") is not None:
        lines.append(f"Estimated fixed cost: ${summary['monthly_fixed_cost_usd']:,.2f} per month (see Cost above)")
    verdict = "fails (exit 1)" if summary["exit_code"] else "passes (exit 0)"
    lines.append(f"Result: {verdict}")
    return lines


# --- details -------------------------------------------------------------------------------


def matching(doc: Mapping[str, Any], pattern: str) -> list[Mapping[str, Any]]:
    """Resources whose name or URN matches the glob `pattern`."""
    return [
        r for r in doc["resources"] if fnmatch.fnmatchcase(r["name"], pattern) or fnmatch.fnmatchcase(r["urn"], pattern)
    ]


def details_lines(doc: Mapping[str, Any], patterns: Iterable[str]) -> list[str]:
    """The inputs of each resource matching one of `patterns`, as `pulumi preview --diff` shows a create."""
    lines: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        for resource in matching(doc, pattern):
            if resource["urn"] in seen:
                continue
            seen.add(resource["urn"])
            lines.append(f"  + {resource['type']}: ({resource['operation']})")
            lines.append(f"      [urn={resource['urn']}]")
            if resource["provider"]:
                lines.append(f"      [provider={resource['provider']}]")
            inputs = resource["inputs"]
            width = max([len(k) for k in inputs] + [0])
            for key in sorted(inputs):
                lines.append(f"      {key.ljust(width)}: {_pretty(inputs[key], 6)}")
            for key, urns in sorted(resource["property_dependencies"].items()):
                lines.append(f"      (depends through {key} on {', '.join(u.rsplit('::', 1)[-1] for u in urns)})")
    return lines


def _pretty(value: Any, indent: int) -> str:
    """A value over several lines, as `pulumi preview --diff` prints inputs; secrets stay masked."""
    if isinstance(value, Mapping) and value in ({"secret": True}, {"unknown": True}):
        return _render_value(value)
    pad = " " * (indent + 4)
    if isinstance(value, Mapping) and value:
        width = max(len(str(k)) for k in value)
        inner = [f"{pad}{str(k).ljust(width)}: {_pretty(v, indent + 4)}" for k, v in sorted(value.items())]
        return "{\n" + "\n".join(inner) + "\n" + " " * indent + "}"
    if isinstance(value, list) and value:
        inner = [f"{pad}[{i}]: {_pretty(v, indent + 4)}" for i, v in enumerate(value)]
        return "[\n" + "\n".join(inner) + "\n" + " " * indent + "]"
    return _render_value(value)
