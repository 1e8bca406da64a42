"""Window algorithms: arithmetic on counts and an injected clock, atomic I/O through a :class:`Store`.

Never imports a backend (alisaifee/limits' ``strategies.py`` split). Each counter is keyed by rule,
window length, window start and the caller's key (envoyproxy/ratelimit: cache keys carry the window
start), so a window's counter is a fresh item and never needs resetting.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from limiter_service.clock import Clock
from limiter_service.rules import Rule
from limiter_service.stores.base import Store

K = TypeVar("K")
V = TypeVar("V")

#: Items live for two windows (a sliding window reads the previous one) plus a minute of slack.
TTL_SLACK_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float | None
    source: str = "store"  # store | over_limit_cache | lease | no_write | error


class BoundedCache(Generic[K, V]):
    """A small LRU map; evicting an entry only costs a store call (never a wrong answer)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)


# -- pure arithmetic (hypothesis-tested) ----------------------------------------------------------
def window_start(now: float, window_seconds: int) -> int:
    """Start (epoch seconds) of the window containing ``now``; windows are aligned to the epoch."""
    return int(now // window_seconds) * window_seconds


def expires_at(start: int, window_seconds: int) -> int:
    return start + 2 * window_seconds + TTL_SLACK_SECONDS


def counter_key(rule: Rule, key: str, start: int) -> str:
    return f"w#{rule.name}#{rule.window_seconds}#{start}#{key}"


def sliding_ceiling(limit: int, previous: int, elapsed: float, window_seconds: int) -> int:
    """The most the current window may hold: ``floor(limit - previous * (1 - elapsed / window))``."""
    weight = 1.0 - elapsed / window_seconds
    return math.floor(limit - previous * weight + 1e-9)


def sliding_allows(limit: int, previous: int, current: int, cost: int, elapsed: float, window_seconds: int) -> bool:
    return current + cost <= sliding_ceiling(limit, previous, elapsed, window_seconds)


def sliding_retry_after(
    limit: int, previous: int, current: int, cost: int, elapsed: float, window_seconds: int
) -> float:
    """Seconds from now until ``cost`` would fit, if no other request arrives (0 if it fits now)."""
    if sliding_allows(limit, previous, current, cost, elapsed, window_seconds):
        return 0.0
    w = window_seconds
    if current + cost > limit:
        # Only after this window ends, when `current` becomes the weighted previous window.
        wait_in_next = w * (1.0 - (limit - cost) / current) if current > 0 else 0.0
        return (w - elapsed) + max(0.0, wait_in_next) + 1e-6
    # previous > 0 here: the previous window's weight must fall to (limit - current - cost) / previous.
    at = w * (1.0 - (limit - current - cost) / previous)
    return max(0.0, at - elapsed) + 1e-6


# -- strategies --------------------------------------------------------------------------------
@dataclass(slots=True)
class _Denied:
    min_cost: int  # the store refused this many tokens in this window (counts only grow)
    until: float  # epoch seconds; the cached denial holds until then
    remaining: int


@dataclass(slots=True)
class _Lease:
    tokens: int = 0  # leased from the store, not yet spent by this replica
    global_count: int = 0  # the window's counter as of our last successful write
    exhausted: bool = False  # a block no longer fits: take exact tokens for the rest of the window


class FixedWindow:
    """Fixed window: one conditional increment per allowed decision; optional leases.

    Over-limit keys: when the store refuses ``cost`` tokens, that window's counter can only grow, so
    any request of at least that cost is denied from a bounded local cache until the window ends.

    Leases (``rule.lease = N``): a replica takes ``max(N, cost)`` tokens in one conditional write and
    spends them locally. The store's counter is the sum of tokens handed out, so admissions never
    exceed ``limit``. Under-admission bound: tokens leased but not spent when the window ends, at most
    ``N - 1`` per replica holding a lease for that key (``(R - 1) * (N - 1)`` at the moment a request
    is refused on one of ``R`` replicas), plus leases held by replicas that died. Once a block no
    longer fits, the replica takes exactly ``cost`` per decision for the rest of that window.
    """

    def __init__(self, store: Store, clock: Clock, cache_size: int = 100_000) -> None:
        self.store = store
        self.clock = clock
        self._denied: BoundedCache[str, _Denied] = BoundedCache(cache_size)
        self._leases: BoundedCache[str, _Lease] = BoundedCache(cache_size)

    async def decide(self, rule: Rule, key: str, cost: int) -> Decision:
        now = self.clock()
        w = rule.window_seconds
        start = window_start(now, w)
        reset = start + w - now
        ck = counter_key(rule, key, start)
        limit = rule.limit
        lease = self._leases.get(ck) if rule.lease > 1 else None
        if lease is not None and lease.tokens >= cost:
            lease.tokens -= cost
            return Decision(True, limit, max(0, limit - lease.global_count) + lease.tokens, reset, None, "lease")
        denied = self._denied.get(ck)
        if denied is not None and cost >= denied.min_cost:
            return Decision(False, limit, denied.remaining, reset, reset, "over_limit_cache")
        if cost > limit:
            return Decision(False, limit, 0, reset, reset, "no_write")
        exp = expires_at(start, w)
        if rule.lease > 1 and (lease is None or not lease.exhausted):
            block = max(rule.lease, cost)
            result = await self.store.incr_if(ck, block, limit, exp)
            lease = self._leases.get(ck) or _Lease()
            if result.applied:
                lease.tokens += block - cost
                lease.global_count = max(lease.global_count, result.count or 0)
                self._leases.put(ck, lease)
                return Decision(True, limit, max(0, limit - lease.global_count) + lease.tokens, reset, None)
            lease.exhausted = True
            self._leases.put(ck, lease)
        result = await self.store.incr_if(ck, cost, limit, exp)
        held = lease.tokens if lease is not None else 0
        if result.applied:
            count = result.count if result.count is not None else limit
            if lease is not None:
                lease.global_count = max(lease.global_count, count)
            return Decision(True, limit, max(0, limit - count) + held, reset, None)
        remaining = (max(0, limit - result.count) if result.count is not None else 0) + held
        previous = self._denied.get(ck)
        min_cost = min(cost, previous.min_cost) if previous is not None else cost
        self._denied.put(ck, _Denied(min_cost, start + w, min(remaining, min_cost - 1)))
        return Decision(False, limit, remaining, reset, reset)


class SlidingWindow:
    """Sliding window: the previous window's count, weighted by how much of it still overlaps the
    last ``window_seconds``, plus the current window's count.

    At most one write per decision: the previous window is closed, so its count is read once per key
    and window and cached; the current window takes one conditional increment whose ceiling is
    ``floor(limit - previous * weight)``. A decision whose cost alone exceeds the ceiling is denied
    without a write, and denials are cached until the computed retry time.
    """

    def __init__(self, store: Store, clock: Clock, cache_size: int = 100_000) -> None:
        self.store = store
        self.clock = clock
        self._denied: BoundedCache[str, _Denied] = BoundedCache(cache_size)
        self._previous: BoundedCache[str, int] = BoundedCache(cache_size)

    async def decide(self, rule: Rule, key: str, cost: int) -> Decision:
        now = self.clock()
        w = rule.window_seconds
        start = window_start(now, w)
        elapsed = now - start
        limit = rule.limit
        ck = counter_key(rule, key, start)
        denied = self._denied.get(ck)
        if denied is not None and now < denied.until and cost >= denied.min_cost:
            wait = denied.until - now
            return Decision(False, limit, denied.remaining, wait, wait, "over_limit_cache")
        pk = counter_key(rule, key, start - w)
        previous = self._previous.get(pk)
        if previous is None:
            previous = await self.store.get(pk)
            self._previous.put(pk, previous)
        ceiling = sliding_ceiling(limit, previous, elapsed, w)
        if cost > ceiling:
            current_lb, source = 0, "no_write"
        else:
            result = await self.store.incr_if(ck, cost, ceiling, expires_at(start, w))
            if result.applied:
                count = result.count if result.count is not None else ceiling
                return Decision(True, limit, max(0, ceiling - count), w - elapsed, None)
            # Refused: the current count exceeds ceiling - cost (exact if the backend said so).
            current_lb = result.count if result.count is not None else ceiling - cost + 1
            source = "store"
        wait = sliding_retry_after(limit, previous, current_lb, cost, elapsed, w)
        remaining = max(0, ceiling - current_lb)
        self._denied.put(ck, _Denied(cost, now + wait, min(remaining, cost - 1)))
        return Decision(False, limit, remaining, wait, wait, source)
