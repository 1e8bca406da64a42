"""In-process store: the embedded default for local runs and tests (one process only)."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable

from limiter_service.stores.base import IncrResult, Store

# Counters kept at most (LIMITER_MEMORY_MAX_KEYS; the settings take their default from here).
DEFAULT_MAX_KEYS = 1_000_000


class MemoryStore(Store):
    """Counters in a dict. Atomic because each method runs on the event loop without awaiting."""

    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.time, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._data: dict[str, tuple[int, int]] = {}  # key -> (count, expires_at)
        self._expiry: list[tuple[int, str]] = []  # heap of (expires_at, key)

    def _purge(self, now: float, room: int) -> None:
        """Drop expired counters; then, while `room` new ones would not fit, those that expire soonest."""
        heap = self._expiry
        while heap and (heap[0][0] <= now or len(self._data) + room > self._max_keys):
            expires_at, key = heapq.heappop(heap)
            entry = self._data.get(key)
            if entry is not None and entry[1] == expires_at:
                del self._data[key]

    def _current(self, key: str, now: float) -> int:
        entry = self._data.get(key)
        if entry is None or entry[1] <= now:
            return 0
        return entry[0]

    async def incr_if(self, key: str, cost: int, ceiling: int, expires_at: int) -> IncrResult:
        now = self._clock()
        if self._expiry and self._expiry[0][0] <= now:
            self._purge(now, room=0)  # every expired counter goes, so none read below has expired
        entry = self._data.get(key)
        count = entry[0] if entry is not None else 0
        if cost > ceiling or count + cost > ceiling:
            return IncrResult(False, count)
        if entry is None:
            if len(self._data) >= self._max_keys:
                # Make room before the new counter's expiry is queued: queued first, it could be popped
                # (it is not stored yet) and the counter would then never be freed.
                self._purge(now, room=1)
            heapq.heappush(self._expiry, (expires_at, key))
        else:
            expires_at = entry[1]
        self._data[key] = (count + cost, expires_at)
        return IncrResult(True, count + cost)

    async def get(self, key: str) -> int:
        return self._current(key, self._clock())

    def expires_at(self, key: str) -> int | None:
        """The stored expiry of a counter (for tests)."""
        entry = self._data.get(key)
        return None if entry is None else entry[1]
