"""The command line: several workers (uvicorn spawns them and re-imports the logging config by name),
the memory store refused with several workers, check-rules reporting every error, the example rules."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from limiter_service.rules import load_rules_file
from tests.limiter_service.limiter_testutil import REPO, LocalServer, make_table, service_env

EXAMPLE_RULES = REPO / "limiter_service" / "examples" / "rules.yaml"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "limiter_service", *args],
        cwd=REPO,
        env=env or service_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
@pytest.mark.dynamodb
def test_serves_with_several_workers_and_logs_json(service_factory: Any, dynalite: LocalServer) -> None:
    table = make_table(dynalite)
    env = service_env(LIMITER_STORE="dynamodb", LIMITER_TABLE=table, AWS_ENDPOINT_URL_DYNAMODB=dynalite.endpoint)
    svc = service_factory(env, ("--workers", "2"))
    r = httpx.post(svc.url + "/v1/check", json={"rule": "default-per-client-ip", "key": "192.0.2.1"}, timeout=10)
    assert r.status_code == 200 and r.json()["allowed"] is True
    svc.stop()
    lines = [json.loads(line) for line in svc.log_path.read_text().splitlines() if line.startswith("{")]
    started = [entry for entry in lines if entry["msg"].startswith("Started server process")]
    assert len(started) == 2  # both workers came up (a broken log config kills spawned workers)
    assert "Traceback" not in svc.log_path.read_text()


def test_several_workers_with_the_memory_store_are_refused() -> None:
    proc = cli("--port", "1", "--workers", "3")  # LIMITER_STORE unset: memory
    assert proc.returncode == 2
    assert "--workers 3 with LIMITER_STORE=memory" in proc.stderr
    assert "up to 3 times" in proc.stderr and "LIMITER_STORE=dynamodb" in proc.stderr
    assert cli("--port", "1", "--workers", "0").returncode == 2


def test_check_rules_reports_every_error_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - {name: a, key: [client_ip], limit: -3, window_seconds: 60, algorithm: leaky}\n"
        "  - {name: b, key: [cookie:x], limit: 5, window_seconds: 60}\n"
        "  - {name: a, key: [client_ip], limit: 5, window_seconds: 60, colour: red}\n"
        "  - {name: ok, key: [client_ip], limit: 5, window_seconds: 60}\n"
    )
    proc = cli("check-rules", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "invalid rules (5 errors):"
    assert lines[1:] == [
        f"  {path}: rules[0] ('a'): field 'limit': must be between 1 and 1000000000, got -3",
        f"  {path}: rules[0] ('a'): field 'algorithm': must be one of fixed_window, sliding_window, got 'leaky'",
        f"  {path}: rules[1] ('b'): field 'key': invalid key part 'cookie:x' (one of header:<name>, client_ip)",
        f"  {path}: rules[2] ('a'): field 'colour': is not a known field (known: algorithm, failure_mode, key, "
        "lease, limit, match, name, shadow, window_seconds)",
        f"  {path}: rules[2] ('a'): field 'name': duplicates rules[0]",
    ]


def test_the_shipped_example_rules_are_valid_and_the_readme_example_uses_them() -> None:
    assert cli("check-rules", str(EXAMPLE_RULES)).stdout.strip() == "5 rules OK"
    readme = (REPO / "limiter_service" / "README.md").read_text()
    section = readme.split("### Locally against dynalite", 1)[1].split("\n## ", 1)[0]
    rules_file = re.search(r"LIMITER_RULES_FILE=(\S+)", section)
    assert rules_file is not None
    # The README's commands run from the repository root.
    assert (REPO / rules_file.group(1)).resolve() == EXAMPLE_RULES
    names = {rule.name for rule in load_rules_file(EXAMPLE_RULES)}
    called = re.findall(r'"rule": "([^"]+)"', section)
    assert called and set(called) <= names
