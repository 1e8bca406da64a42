"""Time sources. Every algorithm takes a clock so tests control time (envoyproxy/ratelimit's TimeSource)."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> float:
        """Seconds since the epoch (wall clock: window starts are shared across replicas)."""
        ...


def system_clock() -> float:
    return time.time()


class FakeClock:
    """A manually advanced clock for tests."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
