"""Offline preview: run the program under mocks and let the real policy pack judge what it would create.

    python -m tools.preview --stack dev            # preview (computed outputs unknown), human summary
    python -m tools.preview --stack prod --json    # machine-readable
    python -m tools.preview --stack dev --update   # judge known values, as `pulumi up` does
    python -m tools.preview --stack dev --mermaid out/dev.mmd
    python -m tools.preview --stack dev --without '*-alb-waf'   # simulate the program without the ALB's WAF association

It runs `__main__.py` with the config of Pulumi.<stack>.yaml in a fresh process under the
project's mocks (tools.mocked_run), records every registration with its inputs, parent and
property dependencies, and drives the pack's analyzer servicer (pulumi-policy's own class, see
tools.analyzer) as the engine would: GetAnalyzerInfo, Configure, ConfigureStack, Analyze for each
resource, AnalyzeStack once. It exits 1 on any mandatory violation, 2 when the program or the
command line fails, 0 otherwise.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

DIFFERENCES = """\
What differs from a real `pulumi preview --policy-pack policies`:
  - Outputs are mocked (tools/mocks.py): ids, ARNs and names the cloud would assign are
    made up, or unknown unless --update; invokes (lookups such as prefix lists) are answered
    by the mocks, never by AWS.
  - No provider Check runs, so provider-side defaults are not filled into the inputs the
    policies see; the policies apply the documented defaults themselves.
  - Remote (multi-language) components such as eks:index:Cluster and
    eks:index:ManagedNodeGroup have no children here: the policies judge the component's own
    inputs instead of the aws:eks/cluster:Cluster etc. a real preview would report.
  - AnalyzeStack sees each resource's mocked outputs laid over its inputs, where a real
    engine sends the provider's state.
  - No state: every resource is a create; nothing is diffed, replaced or deleted.
  - Policy config comes from --policy-config (the JSON of --policy-pack-config), not from
    the Pulumi Cloud."""

_REGION = re.compile(r"(?<![a-z])([a-z]{2}(?:-gov)?-[a-z]+-\d+)(?![0-9])")
_COMPONENT_PREFIX = "ratelimited:index:"
_MAIN_TYPES = {
    "aws:lb/loadBalancer:LoadBalancer": "ALB/NLB",
    "aws:alb/loadBalancer:LoadBalancer": "ALB",
    "aws:lb/listener:Listener": "listener",
    "aws:wafv2/webAcl:WebAcl": "WAF web ACL",
    "aws:wafv2/webAclAssociation:WebAclAssociation": "WAF association",
    "aws:cloudfront/distribution:Distribution": "CloudFront",
    "aws:apigateway/restApi:RestApi": "REST API",
    "aws:apigateway/stage:Stage": "API stage",
    "aws:dynamodb/table:Table": "DynamoDB table",
    "eks:index:Cluster": "EKS cluster",
    "eks:index:ManagedNodeGroup": "node group",
    "aws:eks/cluster:Cluster": "EKS cluster",
    "aws:ecr/repository:Repository": "ECR repository",
    "aws:route53/record:Record": "Route 53 record",
    "aws:route53/healthCheck:HealthCheck": "health check",
    "aws:s3/bucket:Bucket": "S3 bucket",
    "aws:s3/bucketV2:BucketV2": "S3 bucket",
    "aws:ec2/vpc:Vpc": "VPC",
    "aws:kms/key:Key": "KMS key",
    "kubernetes:helm.sh/v3:Release": "Helm release",
    "kubernetes:helm.sh/v4:Chart": "Helm chart",
    "docker-build:index:Image": "image",
}


# --- the record --------------------------------------------------------------------------


def without(record: dict[str, Any], patterns: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """The record minus the resources whose name matches a pattern, and minus their descendants.

    This simulates the program without those registrations: nothing else changes, so a
    dependency on a dropped resource simply points nowhere (the analyzer ignores such URNs, as
    the engine's would never have them).
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


def placement(record: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """URN -> (region, layer) from the nearest `ratelimited:index:<Layer>` component named `<region>-<layer>`."""
    by_urn = {r["urn"]: r for r in record["resources"]}
    result: dict[str, tuple[str, str]] = {}
    for resource in record["resources"]:
        layer, region = "", ""
        current: Mapping[str, Any] | None = resource
        while current is not None:
            if str(current["type"]).startswith(_COMPONENT_PREFIX):
                layer = str(current["type"])[len(_COMPONENT_PREFIX) :]
                match = _REGION.search(str(current["name"]))
                region = match.group(1) if match else "global"
                break
            current = by_urn.get(current.get("parent") or "")
        if not layer:
            if resource["type"] == "pulumi:pulumi:Stack":
                layer = "(stack)"
            elif str(resource["type"]).startswith("pulumi:providers:"):
                layer = "(providers)"
            else:
                layer = "(no component)"
            match = _REGION.search(str(resource["name"]))
            region = match.group(1) if match else "global"
        result[resource["urn"]] = (region, layer)
    return result


# --- output ------------------------------------------------------------------------------


def summary_lines(record: Mapping[str, Any], result: Any, dropped: Sequence[str]) -> list[str]:
    resources = record["resources"]
    places = placement(record)
    mode = "preview: computed outputs unknown" if record.get("preview") else "update: outputs known"
    lines = [
        f"Offline preview of {record.get('project')}/{record.get('stack')} ({mode}; mocked, see --help)",
        f"{len(resources)} resources registered",
    ]
    if dropped:
        lines.append(f"Simulated without {len(dropped)} registrations: {', '.join(dropped)}")
    counts = Counter(places[r["urn"]] for r in resources if r["type"] != "pulumi:pulumi:Stack")
    width = max([len(region) for region, _ in counts] + [6])
    lines.append("")
    lines.append(f"  {'region'.ljust(width)}  {'layer'.ljust(16)} resources")
    for (region, layer), count in sorted(counts.items()):
        lines.append(f"  {region.ljust(width)}  {layer.ljust(16)} {count:>9}")
    lines.append("")
    mandatory, advisory = len(result.mandatory), len(result.advisory)
    levels = Counter(p["enforcement_level"] for p in result.policies)
    lines.append(
        f"Policy pack {result.pack}: {len(result.policies)} policies "
        f"({levels.get('mandatory', 0)} mandatory, {levels.get('advisory', 0)} advisory); "
        f"{mandatory} mandatory violation(s), {advisory} advisory"
    )
    if result.preview_skips:
        lines.append(f"{len(result.preview_skips)} policy run(s) skipped on unknown values (see below)")
    by_urn = {r["urn"]: r for r in resources}
    order = {"mandatory": 0, "remediate": 1, "advisory": 2}
    for diagnostic in sorted(result.diagnostics, key=lambda d: (order.get(d.enforcement_level, 3), d.policy)):
        resource = by_urn.get(diagnostic.urn)
        where = f"{resource['name']} ({resource['type']})" if resource else diagnostic.urn or "(the stack)"
        text = diagnostic.message.split("\n", 1)[-1]
        lines.append(f"  [{diagnostic.enforcement_level}] {diagnostic.policy}: {where}")
        lines.append(f"      {text}")
        if diagnostic.urn:
            lines.append(f"      urn: {diagnostic.urn}")
    if not result.diagnostics:
        lines.append("  No policy violations.")
    return lines


def to_json(record: Mapping[str, Any], result: Any, dropped: Sequence[str]) -> dict[str, Any]:
    places = placement(record)
    counts = Counter(places[r["urn"]] for r in record["resources"] if r["type"] != "pulumi:pulumi:Stack")
    return {
        "project": record.get("project"),
        "stack": record.get("stack"),
        "preview": record.get("preview"),
        "resources": len(record["resources"]),
        "without": list(dropped),
        "by_region_and_layer": [
            {"region": region, "layer": layer, "resources": count} for (region, layer), count in sorted(counts.items())
        ],
        "mandatory_violations": len(result.mandatory),
        "advisory_violations": len(result.advisory),
        "preview_skips": len(result.preview_skips),
        **result.to_dict(),
    }


def mermaid(record: Mapping[str, Any]) -> str:
    """A Mermaid flowchart of the planned stack: regions, their components and the main resources."""
    resources = record["resources"]
    places = placement(record)
    ids = {r["urn"]: f"n{i}" for i, r in enumerate(resources)}
    shown = [r for r in resources if _is_main(r)]
    components = [r for r in resources if str(r["type"]).startswith(_COMPONENT_PREFIX)]
    by_urn = {r["urn"]: r for r in resources}

    def owner(resource: Mapping[str, Any]) -> str:
        current = by_urn.get(resource.get("parent") or "")
        while current is not None and not str(current["type"]).startswith(_COMPONENT_PREFIX):
            current = by_urn.get(current.get("parent") or "")
        return current["urn"] if current is not None else ""

    def label(text: str) -> str:
        return text.replace('"', "'")

    lines = ["flowchart LR"]
    regions = sorted({places[r["urn"]][0] for r in [*components, *shown]})
    for region in regions:
        lines.append(f'  subgraph {_slug(region)}["{label(region)}"]')
        for component in (c for c in components if places[c["urn"]][0] == region):
            layer = places[component["urn"]][1]
            lines.append(f'    subgraph {ids[component["urn"]]}["{label(layer)}: {label(component["name"])}"]')
            for resource in (r for r in shown if owner(r) == component["urn"]):
                kind = _MAIN_TYPES[resource["type"]]
                lines.append(f'      {ids[resource["urn"]]}["{label(kind)}<br/>{label(resource["name"])}"]')
            lines.append("    end")
        for resource in (r for r in shown if not owner(r) and places[r["urn"]][0] == region):
            kind = _MAIN_TYPES[resource["type"]]
            lines.append(f'    {ids[resource["urn"]]}["{label(kind)}<br/>{label(resource["name"])}"]')
        lines.append("  end")
    shown_urns = {r["urn"] for r in shown}
    edges: set[tuple[str, str, str]] = set()
    for resource in shown:
        for prop, urns in (resource.get("property_dependencies") or {}).items():
            for urn in urns:
                if urn in shown_urns and urn != resource["urn"]:
                    edges.add((ids[resource["urn"]], ids[urn], prop))
    for source, target, prop in sorted(edges):
        lines.append(f"  {source} -->|{label(prop)}| {target}")
    return "\n".join(lines) + "\n"


def _is_main(resource: Mapping[str, Any]) -> bool:
    """Main resources for the diagram; of the DNS records, only those on the request path (aliases)."""
    if resource["type"] not in _MAIN_TYPES:
        return False
    if resource["type"] == "aws:route53/record:Record":
        return bool((resource.get("inputs") or {}).get("aliases"))
    return True


def _slug(text: str) -> str:
    return "r_" + re.sub(r"[^A-Za-z0-9_]", "_", text)


# --- command line ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.preview",
        description=(
            "Offline preview: run __main__.py under the project's mocks with the config of\n"
            "Pulumi.<stack>.yaml and judge every registered resource with the policy pack in\n"
            "policies/, driving its real analyzer as the Pulumi engine does.\n"
            "Exit status: 1 on any mandatory violation, 2 when the program or the command fails."
        ),
        epilog=DIFFERENCES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml config to use (default: dev)")
    parser.add_argument(
        "--update",
        action="store_true",
        help="judge known values, as `pulumi up` does before each create (default: preview, outputs unknown)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of the summary")
    parser.add_argument("--mermaid", metavar="FILE", help="also write a Mermaid diagram of the planned stack to FILE")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="NAME_GLOB",
        help=(
            "drop the registrations whose resource name matches (and their children) before judging: "
            "simulates the program without that resource, e.g. --without '*-alb-waf'. Inputs of other "
            "resources derived from it keep their values, so it fits a resource nothing else references "
            "(a WAF association, a scaling target, a public access block). Repeatable."
        ),
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override a stack config key for this run, e.g. --set cloudfrontEnabled=true",
    )
    parser.add_argument("--program", default="__main__.py", help="program file to run (default: the project's)")
    parser.add_argument(
        "--policy-config",
        metavar="FILE",
        help="policy config JSON, as for `pulumi preview --policy-pack-config` ({policy: level or {...}})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from tools.analyzer import analyze_record
    from tools.mocked_run import MockedRunError, run_stack

    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"error: --set {item!r} is not KEY=JSON", file=sys.stderr)
            return 2
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    policy_config = None
    if args.policy_config:
        policy_config = json.loads(Path(args.policy_config).read_text())
    # The preflight needs known outputs: in preview mode a second run (update mode) goes on beside the first.
    pool = ThreadPoolExecutor(max_workers=1)
    known = None
    if not args.update:
        known = pool.submit(run_stack, args.stack, preview=False, program=args.program, config_overrides=overrides)
    try:
        record = run_stack(args.stack, preview=not args.update, program=args.program, config_overrides=overrides)
        known_record = known.result() if known is not None else record
    except (MockedRunError, FileNotFoundError) as exc:
        print(f"error: the program failed under mocks: {exc}", file=sys.stderr)
        return 2
    finally:
        pool.shutdown(wait=True)
    record, dropped = without(record, args.without)
    if args.without and not dropped:
        print(f"error: --without {args.without} matched no resource name", file=sys.stderr)
        return 2
    findings = preflight_findings(without(known_record, args.without)[0])
    try:
        # This process runs no mocks (run_stack used a subprocess), so it may set the PULUMI_*
        # variables the engine gives a policy pack process.
        result = analyze_record(record, policy_config=policy_config, engine_env=True)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.mermaid:
        path = Path(args.mermaid)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(mermaid(record))
    if args.json:
        print(json.dumps({**to_json(record, result, dropped), **preflight_json(findings)}, indent=2))
    else:
        print("\n".join(summary_lines(record, result, dropped)))
        print("\n".join(preflight_lines(findings)))
        if args.mermaid:
            print(f"\nMermaid diagram written to {args.mermaid}")
    return 1 if result.mandatory or findings else 0


# --- preflight ---------------------------------------------------------------------------


def preflight_findings(known: Mapping[str, Any]) -> list[Any]:
    """The preflight over the program with outputs known: names, IAM documents and Kubernetes objects are only
    whole once ids and ARNs are, so a preview takes them from a second mocked run in update mode."""
    from tools import preflight

    return preflight.run(known)


def preflight_lines(findings: Sequence[Any]) -> list[str]:
    from tools import preflight

    lines = ["", f"Preflight: {len(preflight.RULES)} rules; {len(findings)} error(s)"]
    if not findings:
        lines.append("  Nothing AWS, IAM, Helm or Kubernetes is known to refuse.")
    for finding in findings:
        lines.append(f"  error  [{finding.rule}] {finding.message}")
        lines.append(f"         source: {finding.source}")
    return lines


def preflight_json(findings: Sequence[Any]) -> dict[str, Any]:
    import dataclasses

    from tools import preflight

    return {
        "preflight": {
            "rules": [{"id": rule, "description": text} for rule, text in preflight.RULES],
            "errors": [dataclasses.asdict(f) for f in findings],
        }
    }


if __name__ == "__main__":
    sys.exit(main())
