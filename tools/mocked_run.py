"""Run the Pulumi program (or another program file) under the project's mocks and record the stack.

Each run happens in a fresh Python process: the Pulumi runtime keeps global state (settings, the
root stack resource, the event loop) that made repeated runs in one process unreliable, and the
policy analyzer must not share a process with the mocks (setting the engine's PULUMI_* variables
there let each Analyze call reconfigure the mocked runtime).

    from tools.mocked_run import run_stack
    record = run_stack("dev", preview=True)

`record` is JSON-serialisable: {"project", "stack", "preview", "config", "resources": [...], "exports"};
each resource has urn, type, name, custom, remote, parent, provider, dependencies,
property_dependencies, inputs (wire form, unknowns as the UNKNOWN sentinel), outputs and id.

As a command: python -m tools.mocked_run --stack dev [--preview] [--program FILE] [--set key=JSON] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tools import stack_files

ROOT = stack_files.ROOT


class MockedRunError(RuntimeError):
    """The program failed under mocks; the message carries the program's own error.

    `kind` is the exception's class name, `location` the innermost frame in the project's own
    code ("components/edge.py:42 in _create_waf", or ""), `details` the program's whole stderr
    (the traceback, for --verbose).
    """

    def __init__(self, message: str, *, kind: str = "", location: str = "", details: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.location = location
        self.details = details


def run_stack(
    stack: str,
    *,
    preview: bool = False,
    program: str | os.PathLike[str] = "__main__.py",
    config_overrides: dict[str, Any] | None = None,
    timeout: float = 300,
) -> dict[str, Any]:
    """Run `program` with the config of Pulumi.<stack>.yaml in a fresh process; return the record."""
    with tempfile.TemporaryDirectory(prefix="mocked-run-") as tmp:
        out = Path(tmp) / "record.json"
        cmd = [sys.executable, "-m", "tools.mocked_run", "--stack", stack, "--program", str(program), "--out", str(out)]
        if preview:
            cmd.append("--preview")
        for key, value in (config_overrides or {}).items():
            cmd += ["--set", f"{key}={json.dumps(value)}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise MockedRunError(f"the program did not finish within {timeout:g} s", kind="Timeout") from exc
        if proc.returncode != 0:
            message, kind, location = _program_error(proc.stderr)
            raise MockedRunError(
                message or f"exit code {proc.returncode}", kind=kind, location=location, details=proc.stderr
            )
        return json.loads(out.read_text())


def _program_error(stderr: str) -> tuple[str, str, str]:
    """(the program's own exception line, its class name, its location), not the traceback around it."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    message = kind = location = ""
    for line in reversed(lines):
        if not message and line.startswith("PROGRAM ERROR: "):
            message = line.removeprefix("PROGRAM ERROR: ")
        elif not kind and line.startswith("PROGRAM ERROR KIND: "):
            kind = line.removeprefix("PROGRAM ERROR KIND: ")
        elif not location and line.startswith("PROGRAM ERROR AT: "):
            location = line.removeprefix("PROGRAM ERROR AT: ")
    if not message:
        message = "\n".join(lines[-15:])
    return message, kind, location


def _location(exc: BaseException, program: Path) -> str:
    """The innermost traceback frame in the project's own code (or the program file), as path:line in function."""
    import traceback

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for frame in reversed(traceback.extract_tb(current.__traceback__)):
            path = Path(frame.filename).resolve()
            ours = path == program.resolve() or (
                path.is_relative_to(ROOT)
                and not path.is_relative_to(ROOT / ".venv")
                and not path.is_relative_to(ROOT / "tools")
            )
            if ours and ".venv" not in path.parts:
                shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                return f"{shown}:{frame.lineno} in {frame.name}"
        current = current.__cause__ or current.__context__
    return ""


def _execute(stack: str, program: Path, preview: bool, overrides: dict[str, Any]) -> dict[str, Any]:
    import runpy

    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from tools.mocks import PlatformMocks, RecordingMonitor

    # Nothing is deployed: stack_config lets an update under mocks keep the sample stacks' placeholders.
    os.environ.setdefault("RATELIMITED_MOCKED_RUN", "1")
    project = stack_files.project()["name"]
    config = stack_files.engine_config(stack, overrides)
    pulumi.runtime.set_all_config(config, [])
    regions = json.loads(config.get(f"{project}:regions", '["eu-west-1"]'))
    mocks = PlatformMocks(preview=preview, default_region=regions[0] if regions else "eu-west-1")
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)

    sys.path.insert(0, str(ROOT))
    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(program), run_name="__main__")))

    exports = {}
    root = pulumi.runtime.get_root_resource()
    for key, value in (getattr(root, "outputs", None) or {}).items():
        exports[key] = _sync_await(_resolve(value))
    return {
        "project": project,
        "stack": stack,
        "preview": preview,
        "config": config,
        "resources": monitor.records,
        "exports": exports,
    }


async def _resolve(value: Any) -> Any:
    """A stack export as plain data; secrets and unknowns are marked, not revealed."""
    import pulumi

    output = pulumi.Output.from_input(value)
    known = await output.is_known()
    if not known:
        return {"unknown": True}
    secret = await output.is_secret()
    resolved = await output.future()
    if secret:
        return {"secret": True}
    return json.loads(json.dumps(resolved, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mocked_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml config to use")
    parser.add_argument("--preview", action="store_true", help="preview mode: computed outputs are unknown")
    parser.add_argument("--program", default="__main__.py", help="program file to run (default: the project's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="override a config key")
    parser.add_argument("--out", help="write the record as JSON to this file (default: stdout)")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    program = Path(args.program)
    if not program.is_absolute():
        program = ROOT / program
    try:
        record = _execute(args.stack, program, args.preview, overrides)
    except Exception as exc:
        import traceback

        traceback.print_exc()
        print(f"PROGRAM ERROR KIND: {type(exc).__name__}", file=sys.stderr)
        print(f"PROGRAM ERROR AT: {_location(exc, program)}", file=sys.stderr)
        print(f"PROGRAM ERROR: {type(exc).__name__}: {exc}".replace("\n", " "), file=sys.stderr)
        return 1
    text = json.dumps(record, indent=1, sort_keys=False)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
