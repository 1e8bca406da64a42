"""Offline preview: run the program under mocks and let the real policy pack judge what it would create.

    python -m tools.preview --stack dev                 # the plan, as `pulumi preview` prints it
    python -m tools.preview --stack prod --json         # the whole document (schema: tools/preview_report.py)
    python -m tools.preview --stack dev --details '*-edge-alb'   # inputs of matching resources
    python -m tools.preview --stack dev --update        # judge known values, as `pulumi up` does
    python -m tools.preview --stack dev --mermaid plan.md   # the request path, fenced for Markdown
    python -m tools.preview --stack dev --without '*-alb-waf'   # simulate the program without a resource

It runs `__main__.py` with the config of Pulumi.<stack>.yaml in a fresh process under the
project's mocks (tools.mocked_run), records every registration with its inputs, parent and
property dependencies, drives the pack's analyzer servicer (pulumi-policy's own class, see
tools.analyzer) as the engine would, runs the preflight checks (tools.preflight) and estimates
the fixed monthly cost (tools.cost).

Exit status: 0 when the stack passes; 1 on a mandatory policy violation or a preflight error;
2 on bad input (flags, stack files, policy config) or when the program itself fails, with one
line on stderr that names the file, key or flag (--verbose adds the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

from tools import diagram, preview_report

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
    the Pulumi Cloud.
  - The cost estimate comes from the dated price table tools/prices.yaml (list prices, fixed
    costs only); it is not part of a real preview."""


class UsageError(Exception):
    """Bad input: one line for stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m tools.preview",
        description=(
            "Offline preview: run __main__.py under the project's mocks with the config of\n"
            "Pulumi.<stack>.yaml and judge every registered resource with the policy pack in\n"
            "policies/, driving its real analyzer as the Pulumi engine does; then the preflight\n"
            "checks and a fixed-cost estimate.\n"
            "Exit status: 0 passes; 1 a mandatory policy violation or a preflight error;\n"
            "2 bad input or a failing program (one line on stderr; --verbose for the traceback)."
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
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the whole preview as one JSON document (schema version 1, see tools/preview_report.py)",
    )
    parser.add_argument(
        "--details",
        action="append",
        default=[],
        metavar="NAME_GLOB",
        help="also show the inputs of the resources whose name (or URN) matches, like `pulumi preview --diff`. "
        "Repeatable.",
    )
    parser.add_argument(
        "--mermaid",
        metavar="FILE",
        help="also write a Mermaid diagram to FILE: fenced for Markdown, bare if FILE ends in .mmd or .mermaid",
    )
    parser.add_argument(
        "--mermaid-view",
        choices=("request-path", "dependencies"),
        default="request-path",
        help="request-path (default): Route 53 to the tables, one subgraph per region; "
        "dependencies: components and main resources with property dependencies as edges",
    )
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="NAME_GLOB",
        help=(
            "drop the registrations whose resource name matches (and their children) before judging: "
            "simulates the program without that resource, e.g. --without '*-alb-waf'. Inputs of other "
            "resources derived from it keep their values, so it fits a resource nothing else references "
            "(a WAF association, a scaling target, a public access block); a kept resource that still "
            "references a dropped one is reported as a warning. Repeatable."
        ),
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help='override a stack config key for this run: VALUE is JSON (true, 5, ["eu-west-1"]) or, for a '
        "string key, plain text; the project prefix is optional (--set ratelimited-platform:domain=example.org)",
    )
    parser.add_argument("--program", default="__main__.py", help="program file to run (default: the project's)")
    parser.add_argument(
        "--policy-config",
        metavar="FILE",
        help="policy config JSON, as for `pulumi preview --policy-pack-config` ({policy: level or {...}})",
    )
    parser.add_argument("--verbose", action="store_true", help="on a failure, also print the full traceback")
    return parser.parse_args(argv)


def _policy_config(path_text: str | None) -> Any:
    if not path_text:
        return None
    path = Path(path_text)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"--policy-config {path_text}: no such file") from None
    except OSError as exc:
        raise UsageError(f"--policy-config {path_text}: cannot read it ({exc.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--policy-config {path_text} line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg}); "
            'expected an object such as {"waf-before-alb": "mandatory"}'
        ) from None


def _overrides(items: Sequence[str]) -> dict[str, Any]:
    from tools.stack_files import StackFileError, parse_set

    overrides: dict[str, Any] = {}
    for item in items:
        try:
            key, value = parse_set(item)
        except StackFileError as exc:
            raise UsageError(str(exc)) from None
        overrides[key] = value
    return overrides


def run(args: argparse.Namespace) -> int:
    from tools import cost, preflight
    from tools.analyzer import analyze_record
    from tools.mocked_run import ROOT, MockedRunError, run_stack
    from tools.stack_files import StackFileError, merged_config

    overrides = _overrides(args.set)
    policy_config = _policy_config(args.policy_config)
    try:
        merged_config(args.stack, overrides)  # the stack file and --set, checked before the program runs
    except StackFileError as exc:
        raise UsageError(str(exc)) from None
    program = Path(args.program)
    if not (program if program.is_absolute() else ROOT / program).is_file():
        raise UsageError(f"--program {args.program}: no such file (a relative path is taken from {ROOT})")
    # The preflight needs known outputs (names, IAM documents and Kubernetes objects are only whole once ids
    # and ARNs are), so a preview takes them from a second mocked run in update mode, run beside the first.
    pool = ThreadPoolExecutor(max_workers=1)
    known = None
    if not args.update:
        known = pool.submit(run_stack, args.stack, preview=False, program=args.program, config_overrides=overrides)
    try:
        record = run_stack(args.stack, preview=not args.update, program=args.program, config_overrides=overrides)
        known_record = known.result() if known is not None else record
    except StackFileError as exc:
        raise UsageError(str(exc)) from None
    except MockedRunError as exc:
        if args.verbose and exc.details:
            trace = [line for line in exc.details.splitlines() if not line.startswith("PROGRAM ERROR")]
            print("\n".join(trace).rstrip(), file=sys.stderr)
        if exc.kind == "ConfigError":
            raise UsageError(
                f"stack config (Pulumi.{args.stack}.yaml{' and --set' if overrides else ''}): "
                f"{str(exc).removeprefix('ConfigError: ')}"
            ) from None
        where = f" at {exc.location}" if exc.location else ""
        hint = "" if args.verbose else "; --verbose shows the traceback"
        raise UsageError(f"the program failed under mocks{where}: {exc}{hint}") from None
    finally:
        pool.shutdown(wait=True)
    original = record
    record, dropped = preview_report.without(record, args.without)
    if args.without and not dropped:
        raise UsageError(f"--without {' '.join(args.without)}: matched no resource name")
    dangling = preview_report.dangling(original, record) if dropped else []
    try:
        # This process runs no mocks (run_stack used a subprocess), so it may set the PULUMI_*
        # variables the engine gives a policy pack process.
        result = analyze_record(record, policy_config=policy_config, engine_env=True)
    except ValueError as exc:
        source = f"--policy-config {args.policy_config}" if args.policy_config else "policy config"
        raise UsageError(f"{source}: {exc}") from None
    try:
        findings = preflight.run(preview_report.without(known_record, args.without)[0])
    except preflight_tool_errors() as exc:
        raise UsageError(f"preflight: {exc}") from None
    doc = preview_report.document(
        record,
        result,
        findings=findings,
        rules=preflight.RULES,
        cost=cost.estimate(record),
        patterns=args.without,
        dropped=dropped,
        dangling_refs=dangling,
    )
    for pattern in args.details:
        if not preview_report.matching(doc, pattern):
            raise UsageError(f"--details {pattern}: matched no resource name or URN")
    if args.mermaid:
        _write_diagram(Path(args.mermaid), record, args.mermaid_view)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        sys.stdout.write(preview_report.text(doc, details=args.details))
        if args.mermaid:
            print(f"\nMermaid diagram ({args.mermaid_view}) written to {args.mermaid}")
    for item in dangling:
        refs = ", ".join(f"'{r['name']}' (through {r['via']})" for r in item["references"])
        print(f"warning: --without: kept '{item['name']}' still references dropped {refs}", file=sys.stderr)
    return int(doc["summary"]["exit_code"])


def preflight_tool_errors() -> tuple[type[Exception], ...]:
    """What the preflight raises when a tool it needs is missing (node, the npm packages): bad setup, not a bug."""
    try:
        from tools.preflight.kubernetes import PreflightToolError
    except ImportError:
        return ()
    return (PreflightToolError,)


def _write_diagram(path: Path, record: dict[str, Any], view: str) -> None:
    text = diagram.request_path(record) if view == "request-path" else diagram.dependencies(record)
    if path.suffix not in (".mmd", ".mermaid"):
        text = diagram.fenced(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise UsageError(f"--mermaid {path}: cannot write it ({exc.strerror})") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug in the tool itself: one line, the traceback on --verbose
        tools = Path(__file__).resolve().parent
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve().is_relative_to(tools)
        ]
        where = f" at tools/{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        if args.verbose:
            traceback.print_exc()
        print(
            f"error: the offline preview itself failed{where}: {type(exc).__name__}: {exc}"
            + ("" if args.verbose else "; --verbose shows the traceback"),
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
