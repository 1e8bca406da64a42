"""Mutation testing on demand: how many small, plausible bugs do the tests catch?

    python -m tools.mutation limiter_service/algorithms.py          # 10 sampled mutants of one module
    python -m tools.mutation policies components --sample 15 --seed 7
    python -m tools.mutation stack_config.py --sample 0            # every mutant (slow)
    python -m tools.mutation --list                                # the module -> tests table
    python -m tools.mutation policies --replay before.json         # an earlier run's mutants (its --json) again

The mutants are cosmic-ray's (its operators: arithmetic, comparison, boolean and unary operators
swapped, `and`/`or`, numbers +/- 1, `True`/`False`, `not` added, `break`/`continue`, exceptions,
decorators removed, loops that never run). cosmic-ray's own runner needs a session database and one
configuration per run; this driver keeps only its mutation operators and does the rest the way the
tests here need it:

- the project's files are copied to a scratch directory (the virtualenvs and node_modules linked), so
  mutants never touch the working tree and a run can go on while you edit;
- each module has its own test files (TESTS below): a mutant runs only those, `pytest -x`, in a fresh
  process (the Pulumi-mock tests start their own subprocesses, so nothing is patched in memory), with a
  per-mutant timeout; a timeout counts as a kill and is shown apart;
- before any mutant, the module's tests run once unmutated: if they fail, the module is reported as an
  error, not scored;
- `--sample N` picks N mutated lines per module at random (`--seed`, drawn per module: the same sample
  whether the module runs alone or with its area), one mutant per line, so a module full of `+` is not
  all arithmetic; type annotations are never mutated (they are not evaluated), nor the `*` and `**` that
  unpack or mark keyword-only parameters (cosmic-ray takes them for arithmetic: `def f(a, *, b)` would
  become `def f(a, -, b)`); a mutant that does not compile is dropped, never counted as a kill;
- mutants recorded in tools/mutation_equivalents.yaml (file, the line before and after, optionally the
  line above it where the changed line occurs more than once, and the reason)
  are reported apart as equivalent and left out of the score.

Exit status: 0 when every module ran; 1 when a module's tests failed unmutated; 2 on bad input.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Queue

import yaml

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "tools" / "mutation_equivalents.yaml"
LINKED = (".venv", ".venv-checkov", "node_modules")
#: Joins the lines of a mutant that changes several (a removed decorator with its arguments).
JOIN = " ⏎ "

_LIMITER = "tests/limiter_service/"
_DYNAMODB = [_LIMITER + "test_limiter_stores.py", _LIMITER + "test_limiter_dynamodb_client.py"]
_LIMITER_CORE = [
    _LIMITER + "test_limiter_algorithms.py",
    _LIMITER + "test_limiter_core.py",
    _LIMITER + "test_limiter_stores.py",
]
_LIMITER_APP = [_LIMITER + "test_limiter_api.py", _LIMITER + "test_limiter_core.py"]
_SETTINGS_METRICS = _LIMITER + "test_limiter_settings_metrics.py"
_POLICIES = ["tests/policies/"]
_OBSERVABILITY = "tests/components/test_observability.py"
_PROMETHEUS = "tests/components/test_observability_prometheus.py"
# docs/tuning.md: the values the components pick, read from what the program registers.
_TUNING = "tests/test_tuning_doc.py"
_ARGS = "tests/components/test_args_are_values.py"

# Module -> the test files that cover it. A mutant runs only these, so keep them tight but complete:
# a test file left out here makes its kills invisible (the score is then a lower bound).
TESTS: dict[str, list[str]] = {
    "limiter_service/algorithms.py": _LIMITER_CORE,
    "limiter_service/limiter.py": [*_LIMITER_CORE, _LIMITER + "test_limiter_api.py"],
    "limiter_service/rules.py": [_LIMITER + "test_limiter_rules.py", _LIMITER + "test_limiter_core.py"],
    "limiter_service/clock.py": _LIMITER_CORE,
    "limiter_service/headers.py": _LIMITER_APP,
    "limiter_service/metrics.py": [_SETTINGS_METRICS, *_LIMITER_APP],
    "limiter_service/settings.py": [_SETTINGS_METRICS, _LIMITER + "test_limiter_api.py"],
    "limiter_service/app.py": _LIMITER_APP,
    "limiter_service/logs.py": [_LIMITER + "test_limiter_logs.py", *_LIMITER_APP],
    "limiter_service/api/authz.py": _LIMITER_APP,
    "limiter_service/api/check.py": _LIMITER_APP,
    "limiter_service/api/deps.py": _LIMITER_APP,
    "limiter_service/api/health.py": _LIMITER_APP,
    "limiter_service/stores/base.py": _LIMITER_CORE,
    "limiter_service/stores/memory.py": [*_LIMITER_CORE, _SETTINGS_METRICS],  # its default is a documented setting
    "limiter_service/stores/dynamodb.py": _DYNAMODB,
    "limiter_service/stores/http.py": _DYNAMODB,
    "limiter_service/stores/sigv4.py": [_LIMITER + "test_limiter_sigv4.py", *_DYNAMODB],
    "policies/compute.py": _POLICIES,
    "policies/data.py": [*_POLICIES, "tests/components/test_data.py"],
    "policies/graph.py": _POLICIES,
    "policies/network.py": _POLICIES,
    "policies/observability.py": [*_POLICIES, "tests/components/test_observability.py"],
    "policies/props.py": _POLICIES,
    "policies/storage.py": _POLICIES,
    # Alarms made by the edge and API layers are judged in test_observability.py (every health check and load
    # balancer alarmed, every alarm notifying); every args type's immutability in test_args_are_values.py (first:
    # it takes a second, and -x stops there).
    "components/api_gateway.py": [_ARGS, "tests/components/test_api_gateway.py", _OBSERVABILITY, _TUNING],
    "components/certificates.py": ["tests/components/test_edge.py", _TUNING],
    "components/data.py": [_ARGS, "tests/components/test_data.py", _TUNING],
    "components/edge.py": [_ARGS, "tests/components/test_edge.py", _OBSERVABILITY, _TUNING],
    "components/eks.py": [_ARGS, "tests/components/test_eks.py", _TUNING],
    "components/irsa.py": ["tests/components/test_limiter.py", "tests/tools/test_preflight_iam.py"],
    "components/limiter.py": [
        _ARGS,
        "tests/components/test_limiter.py",
        "tests/components/test_k8s_manifests.py",
        _TUNING,
    ],
    "components/manifests.py": ["tests/components/test_k8s_manifests.py", "tests/components/test_services.py", _TUNING],
    "components/mesh.py": [_ARGS, "tests/components/test_mesh.py", "tests/components/test_k8s_manifests.py", _TUNING],
    "components/services.py": [
        _ARGS,
        "tests/components/test_services.py",
        "tests/components/test_k8s_manifests.py",
        _TUNING,
    ],
    "components/observability.py": [_ARGS, _OBSERVABILITY, _PROMETHEUS, _TUNING],
    "components/specs.py": [
        _ARGS,
        "tests/components/test_data.py",
        "tests/components/test_services.py",
        "tests/components/test_eks.py",
        "tests/components/test_api_gateway.py",
    ],
    "stack_config.py": ["tests/test_stack_config.py", "tests/test_config_coherence.py"],
}


@dataclass(frozen=True)
class Mutant:
    """One mutation of one module: cosmic-ray's operator and occurrence, and what it changes."""

    module: str
    operator: str
    occurrence: int
    line: int
    before: str
    after: str
    code: str = field(repr=False)


@dataclass
class Result:
    """How the module's tests answered one mutant."""

    module: str
    operator: str
    line: int
    before: str
    after: str
    outcome: str  # killed | timeout | survived | equivalent
    seconds: float
    reason: str = ""


def _in_annotation(node) -> bool:
    """True when the parso node sits in a type annotation (never evaluated: `from __future__ import annotations`)."""
    child = node
    while child.parent is not None:
        parent = child.parent
        kids = parent.children
        if parent.type == "tfpdef" and kids.index(child) >= 2:
            return True
        if parent.type == "annassign" and kids.index(child) == 1:
            return True
        if parent.type == "funcdef":
            index = kids.index(child)
            if index > 0 and getattr(kids[index - 1], "value", None) == "->":
                return True
        child = parent
    return False


@dataclass(frozen=True)
class Site:
    """Where one of cosmic-ray's operators can mutate a module (cheap: no mutant made yet)."""

    module: str
    operator: str
    occurrence: int
    line: int


# Where a parso `*` or `**` operator is unpacking (`f(*a)`, `{**d}`, `[*a]`) or a parameter (`*args`, the bare
# keyword-only `*`), not multiplication or power.
_NOT_ARITHMETIC = frozenset({"parameters", "param", "argument", "arglist", "dictorsetmaker", "star_expr"})


def _is_unpacking_star(node) -> bool:
    parent = node.parent
    return getattr(node, "value", None) in ("*", "**") and parent is not None and parent.type in _NOT_ARITHMETIC


def enumerate_sites(module: str, source: str) -> list[Site]:
    """Every (operator, occurrence) cosmic-ray can apply to `source`, minus those in annotations and unpacking
    or parameter stars."""
    import cosmic_ray.plugins
    from cosmic_ray.ast import ast_nodes, get_ast

    nodes = list(ast_nodes(get_ast(source)))
    lines = source.splitlines()
    sites = []
    for name in cosmic_ray.plugins.operator_names():
        operator_class = cosmic_ray.plugins.get_operator(name)
        if operator_class.arguments():  # VariableReplacer/Inserter need a configuration: not used
            continue
        positions = [(node, start) for node in nodes for start, _end in operator_class().mutation_positions(node)]
        for occurrence, (node, (line, _col)) in enumerate(positions):
            if _in_annotation(node) or _is_unpacking_star(node):
                continue
            if "pragma: no mutate" not in lines[line - 1]:
                sites.append(Site(module, name, occurrence, line))
    return sites


def make_mutant(site: Site, source: str) -> Mutant | None:
    """The mutated module for one site; None when the operator leaves the code as it was, or makes code that
    does not compile (`x != -1` -> `x != not 1`): its tests would fail on import, a kill that tests nothing."""
    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code

    code = mutate_code(source, cosmic_ray.plugins.get_operator(site.operator)(), site.occurrence)
    if code is None or code == source or not _compiles(code, site.module):
        return None
    before, after = _changed_line(source, code)
    return Mutant(site.module, site.operator, site.occurrence, site.line, before, after, code)


def _compiles(code: str, module: str) -> bool:
    try:
        with warnings.catch_warnings():  # `x is 1`, a valid mutant, warns at compile time
            warnings.simplefilter("ignore", SyntaxWarning)
            compile(code, module, "exec")
    except SyntaxError:
        return False
    return True


def enumerate_mutants(module: str, source: str) -> list[Mutant]:
    """Every mutant of `source` (slow for a large module: one parse per mutant)."""
    made = (make_mutant(site, source) for site in enumerate_sites(module, source))
    return [mutant for mutant in made if mutant is not None]


def _changed_line(source: str, code: str) -> tuple[str, str]:
    """The first line the mutant changes, before and after, stripped (the key of an equivalent)."""
    old, new = source.splitlines(), code.splitlines()
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            before = JOIN.join(line.strip() for line in old[i1:i2] if line.strip())
            after = JOIN.join(line.strip() for line in new[j1:j2] if line.strip())
            if before != after:
                return before, after
    return "", ""


def sample(module: str, source: str, size: int, rng: random.Random) -> list[Mutant]:
    """`size` mutated lines at random, one mutant on each (another on that line if the first is a no-op);
    0 keeps every mutant."""
    if size <= 0:
        return enumerate_mutants(module, source)
    by_line: dict[int, list[Site]] = {}
    for site in enumerate_sites(module, source):
        by_line.setdefault(site.line, []).append(site)
    chosen = sorted(rng.sample(sorted(by_line), min(size, len(by_line))))
    mutants = []
    for line in chosen:
        candidates = list(by_line[line])
        rng.shuffle(candidates)
        mutant = next((m for m in (make_mutant(site, source) for site in candidates) if m is not None), None)
        if mutant is not None:
            mutants.append(mutant)
    return mutants


def replay(earlier: dict[str, list[dict[str, object]]], modules: Sequence[str]) -> dict[str, list[Mutant]]:
    """The mutants of an earlier run's results (its --json), rebuilt on the current sources: each is found
    again by operator and changed text, on the nearest such line. A mutant whose line is gone is skipped
    (and named)."""
    plan: dict[str, list[Mutant]] = {}
    for module in modules:
        if module not in earlier:
            continue
        source = (ROOT / module).read_text()
        lines = [line.strip() for line in source.splitlines()]
        sites = enumerate_sites(module, source)
        mutants = []
        for entry in earlier[module]:
            # The same operator and the same change, the nearest first (lines above may have moved): the
            # site on a line with the changed text, else the 30 nearest sites of that operator.
            first_line = str(entry["before"]).split(JOIN)[0]
            near = sorted(
                (s for s in sites if s.operator == entry["operator"]),
                key=lambda s, line=entry["line"]: (lines[s.line - 1] != first_line, abs(s.line - line)),
            )[:30]
            candidates = (make_mutant(site, source) for site in near)
            found = next(
                (m for m in candidates if m and (m.before, m.after) == (entry["before"], entry["after"])), None
            )
            if found is None:
                # A mutant that joins or drops lines (a number token with its line break, a removed decorator)
                # can get another text key when the module around it changes: the same operator on the same,
                # unchanged line is the same mutant.
                same_line = [m for s in sites if s.operator == entry["operator"] and s.line == entry["line"]
                             for m in [make_mutant(s, source)] if m]  # fmt: skip
                if entry["after"]:
                    same_line = [m for m in same_line if m.after == entry["after"]]
                if len(same_line) == 1:
                    found = same_line[0]
                    print(f"re-keyed: {module}:{entry['line']} {entry['operator']} found by its line")
            if found is None:  # its code was removed or rewritten: nothing left to mutate
                print(f"gone: {module}:{entry['line']} {entry['before']!r} no longer exists; not replayed")
                continue
            mutants.append(found)
        plan[module] = mutants
    return plan


def load_equivalents(path: Path = EQUIVALENTS) -> dict[tuple[str, ...], str]:
    """(file, line before, line after[, line above]) -> why that mutant cannot change behaviour.

    `above` (the nearest non-blank line before the changed one) narrows an entry whose changed line occurs
    more than once in the file (a bare `break`) to the one place its reason holds.
    """
    if not path.exists():
        return {}
    entries = yaml.safe_load(path.read_text()) or []
    table = {}
    for index, entry in enumerate(entries):
        missing = {"file", "before", "after", "reason"} - set(entry)
        if missing or not str(entry["reason"]).strip():
            raise ValueError(f"{path.name}: entry {index} needs file, before, after and a reason (missing {missing})")
        key = (entry["file"], entry["before"].strip(), entry["after"].strip())
        if "above" in entry:
            key += (entry["above"].strip(),)
        table[key] = entry["reason"].strip()
    return table


def line_above(source: str, line: int) -> str:
    """The nearest non-blank line before `line` (1-based), stripped."""
    above = [text.strip() for text in source.splitlines()[: line - 1] if text.strip()]
    return above[-1] if above else ""


def equivalent_reason(equivalents: dict[tuple[str, ...], str], mutant: Mutant) -> str | None:
    """Why `mutant` is equivalent, if an entry says so (one with `above` only at its own place)."""
    key = (mutant.module, mutant.before, mutant.after)
    if key in equivalents:
        return equivalents[key]
    if not any(len(k) == 4 and k[:3] == key for k in equivalents):
        return None
    first_line = mutant.before.split(JOIN)[0]
    source = (ROOT / mutant.module).read_text()
    lines = [text.strip() for text in source.splitlines()]
    # The mutant's site line is where its token starts; its changed line is the first that reads `before`.
    at = next((i + 1 for i in range(mutant.line - 1, len(lines)) if lines[i] == first_line), mutant.line)
    return equivalents.get((*key, line_above(source, at)))


def _project_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    return [name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()]


def make_workdir(parent: Path, index: int) -> Path:
    """A copy of the project's files (not the ignored ones), the virtualenvs and node_modules linked."""
    workdir = parent / f"work{index}"
    for name in _project_files():
        target = workdir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    for name in LINKED:
        if (ROOT / name).exists():
            (workdir / name).symlink_to((ROOT / name).resolve())
    return workdir


def run_tests(workdir: Path, tests: Sequence[str], timeout: float) -> tuple[str, float, str]:
    """Run pytest on `tests` in `workdir`: ('passed' | 'failed' | 'timeout', seconds, output tail)."""
    # No bytecode: a mutant can keep the file's size and mtime second, and a stale .pyc would hide it.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    start = time.monotonic()
    process = subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)  # the test run's own process group: pytest and what it started
        process.communicate()
        return "timeout", time.monotonic() - start, ""
    seconds = time.monotonic() - start
    tail = "\n".join(output.decode(errors="replace").splitlines()[-15:])
    if process.returncode == 0:
        return "passed", seconds, tail
    if process.returncode == 5:
        raise RuntimeError(f"pytest collected no tests from {' '.join(tests)}")
    return "failed", seconds, tail


def expand_modules(selected: Sequence[str]) -> list[str]:
    """Module paths from arguments: files, or folders (every module of TESTS under them); none means all."""
    if not selected:
        return list(TESTS)
    modules: list[str] = []
    for raw in selected:
        name = raw.rstrip("/")
        if name in TESTS:
            modules.append(name)
            continue
        under = [module for module in TESTS if module.startswith(name + "/")]
        if not under:
            known = ", ".join(sorted({module.split("/")[0] for module in TESTS}))
            raise SystemExit(f"error: no module of the table matches '{raw}' (areas: {known}; see --list)")
        modules.extend(under)
    return list(dict.fromkeys(modules))


def _score(results: Sequence[Result]) -> tuple[int, int]:
    killed = sum(result.outcome in ("killed", "timeout") for result in results)
    scored = sum(result.outcome != "equivalent" for result in results)
    return killed, scored


def _percent(killed: int, scored: int) -> str:
    return f"{100 * killed / scored:.0f}%" if scored else "n/a"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="module files or folders (limiter_service, policies, ...)")
    parser.add_argument("--sample", type=int, default=10, help="mutants per module (default 10; 0: all)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the sample (default 1)")
    parser.add_argument("--timeout", type=float, default=0, help="seconds per mutant (default: 3x the clean run + 30)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once, each in its own copy (default 1)")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument(
        "--replay", type=Path, help="run the mutants of an earlier --json file again (after new tests: same mutants)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="list killed mutants too")
    parser.add_argument("--list", action="store_true", help="print the module -> tests table and stop")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows per module, also into a file

    if args.list:
        for module, tests in TESTS.items():
            print(f"{module}: {' '.join(tests)}")
        return 0
    modules = expand_modules(args.modules)
    try:
        equivalents = load_equivalents()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # One random stream per module: a module's sample is the same alone or within an area, and a change to
    # one module does not reshuffle the others'.
    if args.replay:
        try:
            plan = replay(json.loads(args.replay.read_text()), modules)
        except ValueError as error:
            print(f"error: {args.replay}: {error}", file=sys.stderr)
            return 2
        how = f"replaying {args.replay}"
    else:
        plan = {
            module: sample(module, (ROOT / module).read_text(), args.sample, random.Random(f"{args.seed}:{module}"))
            for module in modules
        }
        how = f"sample {args.sample}, seed {args.seed}"
    total = sum(len(mutants) for mutants in plan.values())
    print(f"{total} mutants in {len(plan)} modules ({how}, jobs {args.jobs})")

    started = time.monotonic()
    results: dict[str, list[Result]] = {}
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        workdirs: Queue[Path] = Queue()
        for index in range(max(1, args.jobs)):
            workdirs.put(make_workdir(Path(scratch), index))
        for module, mutants in plan.items():
            tests = TESTS[module]
            workdir = workdirs.get()
            try:
                outcome, clean_seconds, tail = run_tests(workdir, tests, timeout=1800)
            finally:
                workdirs.put(workdir)
            if outcome != "passed":
                errors.append(module)
                print(f"\n{module}: its tests fail without any mutant ({outcome}); not scored\n{tail}")
                continue
            timeout = args.timeout or 3 * clean_seconds + 30
            with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                module_results = list(
                    pool.map(lambda m, t=tests, s=timeout: _run_mutant(m, t, s, workdirs, equivalents), mutants)
                )
            results[module] = module_results
            _print_module(module, module_results, clean_seconds, args.verbose)

    _print_summary(results, errors, time.monotonic() - started)
    if args.json:
        args.json.write_text(json.dumps({m: [asdict(r) for r in rs] for m, rs in results.items()}, indent=1))
    return 1 if errors else 0


def _run_mutant(mutant: Mutant, tests: Sequence[str], timeout: float, workdirs: Queue[Path], equivalents) -> Result:
    reason = equivalent_reason(equivalents, mutant)
    if reason is not None:
        return Result(mutant.module, mutant.operator, mutant.line, mutant.before, mutant.after, "equivalent", 0, reason)
    workdir = workdirs.get()
    path = workdir / mutant.module
    original = path.read_text()
    try:
        path.write_text(mutant.code)
        outcome, seconds, _tail = run_tests(workdir, tests, timeout)
    finally:
        path.write_text(original)
        workdirs.put(workdir)
    verdict = {"failed": "killed", "timeout": "timeout", "passed": "survived"}[outcome]
    return Result(mutant.module, mutant.operator, mutant.line, mutant.before, mutant.after, verdict, round(seconds, 1))


def _print_module(module: str, results: Sequence[Result], clean_seconds: float, verbose: bool = False) -> None:
    killed, scored = _score(results)
    timeouts = sum(result.outcome == "timeout" for result in results)
    equivalent = sum(result.outcome == "equivalent" for result in results)
    spent = sum(result.seconds for result in results)
    print(
        f"\n{module}: {_percent(killed, scored)} killed ({killed} of {scored}; {timeouts} by timeout), "
        f"{equivalent} equivalent; clean run {clean_seconds:.0f} s, mutants {spent:.0f} s"
    )
    for result in results:
        if result.outcome == "survived" or (verbose and result.outcome != "equivalent"):
            print(f"  {result.outcome} {module}:{result.line} {result.operator.removeprefix('core/')}")
            print(f"      - {result.before}\n      + {result.after}")
        elif result.outcome == "equivalent":
            print(f"  equivalent {module}:{result.line}: {result.reason}")


def _areas(results: dict[str, list[Result]]) -> Iterator[tuple[str, list[Result]]]:
    areas: dict[str, list[Result]] = {}
    for module, module_results in results.items():
        areas.setdefault(module.split("/")[0] if "/" in module else module, []).extend(module_results)
    yield from areas.items()


def _print_summary(results: dict[str, list[Result]], errors: Sequence[str], seconds: float) -> None:
    print("\nscore per module (killed / mutants not equivalent):")
    for module, module_results in results.items():
        killed, scored = _score(module_results)
        print(f"  {module:42} {killed:3} / {scored:3}  {_percent(killed, scored):>4}")
    print("score per area:")
    for area, area_results in _areas(results):
        killed, scored = _score(area_results)
        print(f"  {area:42} {killed:3} / {scored:3}  {_percent(killed, scored):>4}")
    killed, scored = _score([result for module_results in results.values() for result in module_results])
    print(f"total {killed} / {scored} ({_percent(killed, scored)}) in {seconds / 60:.1f} min")
    for module in errors:
        print(f"error: the tests of {module} fail without any mutant")


if __name__ == "__main__":
    sys.exit(main())
