"""Shared fixtures: one mocked run per stack and mode per test session (each costs a fresh process)."""

from __future__ import annotations

import pytest

from tools.mocked_run import run_stack
from tools.records import RecordedStack


@pytest.fixture(scope="session")
def dev_stack() -> RecordedStack:
    """`__main__.py` with Pulumi.dev.yaml, outputs known (as after an update)."""
    return RecordedStack(run_stack("dev"))


@pytest.fixture(scope="session")
def prod_stack() -> RecordedStack:
    """`__main__.py` with Pulumi.prod.yaml, outputs known."""
    return RecordedStack(run_stack("prod"))


@pytest.fixture(scope="session")
def prod_preview() -> RecordedStack:
    """`__main__.py` with Pulumi.prod.yaml in preview mode: computed outputs unknown."""
    return RecordedStack(run_stack("prod", preview=True))


@pytest.fixture(scope="session")
def dev_preview() -> RecordedStack:
    """`__main__.py` with Pulumi.dev.yaml in preview mode: computed outputs unknown."""
    return RecordedStack(run_stack("dev", preview=True))
