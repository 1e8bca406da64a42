"""Fixtures of the workload layers' tests (mesh, limiter, services): the program variants, run once per session."""

from __future__ import annotations

import pytest

from tests.components.programs.mesh_runs import mesh_runs
from tools.records import RecordedStack


@pytest.fixture(scope="session")
def runs() -> dict[str, RecordedStack]:
    """Every variant of tests/components/programs/mesh_runs.py, by name."""
    return mesh_runs()


@pytest.fixture(scope="session")
def dev(runs) -> RecordedStack:
    return runs["dev"]
