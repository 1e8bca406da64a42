"""The image's Dockerfile: hadolint and checkov clean, and the contract the Kubernetes layer relies on.

No Docker engine here: the image is not built; the service itself is tested as a process elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.limiter_service.limiter_testutil import REPO

DOCKERFILE = REPO / "limiter_service" / "Dockerfile"


def tool(name: str, local: Path) -> str:
    """The tool from the repo's own venv, else PATH; a missing tool fails in CI and skips elsewhere."""
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    reason = f"{name} not found at {local.relative_to(REPO)} or on PATH"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason + " (CI installs it; locally: see the README's test setup)")


def test_hadolint_finds_nothing() -> None:
    hadolint = tool("hadolint", Path(sys.executable).parent / "hadolint")
    proc = subprocess.run([hadolint, "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout or "[]") == []
    assert proc.returncode == 0, proc.stderr


def test_checkov_dockerfile_checks_pass() -> None:
    checkov = tool("checkov", REPO / ".venv-checkov" / "bin" / "checkov")
    proc = subprocess.run(
        [checkov, "--skip-download", "--framework", "dockerfile", "-f", str(DOCKERFILE), "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(proc.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["check_name"]) for c in report["results"]["failed_checks"]]
    assert failed == [], failed
    assert summary["passed"] > 0
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_image_runs_the_contracted_command_as_non_root() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) == 2 and all("slim" in f for f in froms)  # multi-stage, slim
    assert 'CMD ["python", "-m", "limiter_service", "--host", "0.0.0.0", "--port", "8080"]' in lines
    assert "USER 10001:10001" in lines  # numeric: runAsNonRoot can verify it
    assert "EXPOSE 8080" in lines
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    assert any("compileall" in line for line in lines)  # no bytecode writes on a read-only root
    assert "COPY . /opt/app/limiter_service" in lines
    ignored = (REPO / "limiter_service" / ".dockerignore").read_text()
    assert "**/__pycache__" in ignored
