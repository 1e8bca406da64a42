"""Window arithmetic and strategies with a fake clock; hypothesis for the window arithmetic."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limiter_service.algorithms import (
    BoundedCache,
    FixedWindow,
    SlidingWindow,
    counter_key,
    sliding_allows,
    sliding_ceiling,
    sliding_retry_after,
    window_start,
)
from limiter_service.clock import FakeClock
from limiter_service.rules import Algorithm, KeyPart, Rule
from limiter_service.stores.memory import MemoryStore

FIXED = Rule(name="fixed", key=(KeyPart("client_ip"),), limit=3, window_seconds=60)
SLIDING = replace(FIXED, name="sliding", limit=10, window_seconds=10, algorithm=Algorithm.SLIDING_WINDOW)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


# -- pure arithmetic ---------------------------------------------------------------------------
@given(now=st.floats(min_value=0, max_value=4e9, allow_nan=False), window=st.integers(1, 31 * 86400))
def test_window_start_is_aligned_and_contains_now(now: float, window: int) -> None:
    start = window_start(now, window)
    assert start % window == 0
    assert start <= now < start + window


@given(
    limit=st.integers(1, 10_000),
    previous=st.integers(0, 10_000),
    current=st.integers(0, 10_000),
    cost=st.integers(1, 100),
    frac=st.floats(min_value=0, max_value=0.999, allow_nan=False),
    window=st.integers(1, 3600),
)
def test_sliding_retry_after_is_the_first_moment_the_cost_fits(
    limit: int, previous: int, current: int, cost: int, frac: float, window: int
) -> None:
    if cost > limit:
        cost = limit
    elapsed = frac * window

    def fits_after(wait: float) -> bool:
        t = elapsed + wait
        if t < window:
            return sliding_allows(limit, previous, current, cost, t, window)
        t -= window  # the current window has become the previous one
        return t >= window or sliding_allows(limit, current, 0, cost, t, window)

    wait = sliding_retry_after(limit, previous, current, cost, elapsed, window)
    assert wait >= 0
    assert fits_after(wait)
    if wait > 2e-3:
        assert not fits_after(wait - 1e-3)
    if sliding_allows(limit, previous, current, cost, elapsed, window):
        assert wait == 0


@given(
    limit=st.integers(1, 10_000),
    previous=st.integers(0, 20_000),
    frac=st.floats(min_value=0, max_value=0.999, allow_nan=False),
    window=st.integers(1, 3600),
)
def test_sliding_ceiling_keeps_the_weighted_count_within_the_limit(
    limit: int, previous: int, frac: float, window: int
) -> None:
    elapsed = frac * window
    ceiling = sliding_ceiling(limit, previous, elapsed, window)
    weighted = previous * (1 - elapsed / window)
    assert weighted + ceiling <= limit + 1e-6  # admitting up to the ceiling never passes the limit
    assert weighted + ceiling + 1 > limit  # and the ceiling is not lower than it must be


# -- fixed window ------------------------------------------------------------------------------
def test_fixed_window_admits_limit_then_denies_until_the_window_resets() -> None:
    clock = FakeClock(6_000.0 + 45)  # 45 s into the window [6000, 6060)
    fw = FixedWindow(MemoryStore(clock=clock), clock)
    decisions = [run(fw.decide(FIXED, "k", 1)) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[0].reset_after == pytest.approx(15)
    assert decisions[3].retry_after == pytest.approx(15)
    assert decisions[0].retry_after is None
    assert run(fw.decide(FIXED, "other", 1)).allowed  # keys are independent
    clock.advance(14.9)
    assert not run(fw.decide(FIXED, "k", 1)).allowed
    clock.advance(0.1)  # the window [6060, 6120) starts
    d = run(fw.decide(FIXED, "k", 1))
    assert d.allowed and d.remaining == 2 and d.reset_after == pytest.approx(60)


def test_fixed_window_costs_and_cost_above_limit() -> None:
    clock = FakeClock(12_000.0)
    fw = FixedWindow(MemoryStore(clock=clock), clock)
    assert run(fw.decide(FIXED, "k", 2)).remaining == 1
    denied = run(fw.decide(FIXED, "k", 2))
    assert not denied.allowed and denied.remaining == 1  # the memory store reports the count
    assert run(fw.decide(FIXED, "k", 1)).allowed  # a smaller cost still fits
    assert run(fw.decide(FIXED, "k2", 4)).source == "no_write"


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(st.tuples(st.floats(0, 40, allow_nan=False), st.integers(1, 4)), min_size=1, max_size=60),
    limit=st.integers(1, 12),
)
def test_fixed_window_is_exact(ops: list[tuple[float, int]], limit: int) -> None:
    """Allowed iff the cost fits in what the window has left: never over, never under."""
    rule = replace(FIXED, limit=limit, window_seconds=30)
    clock = FakeClock(3_000.0)
    fw = FixedWindow(MemoryStore(clock=clock), clock)
    used: dict[int, int] = {}
    for advance, cost in ops:
        clock.advance(advance)
        start = window_start(clock(), 30)
        fits = used.get(start, 0) + cost <= limit
        d = run(fw.decide(rule, "k", cost))
        assert d.allowed == fits
        if fits:
            used[start] = used.get(start, 0) + cost
            assert d.remaining == limit - used[start]
        assert d.reset_after == pytest.approx(start + 30 - clock())


@pytest.mark.parametrize("strategy", [FixedWindow, SlidingWindow])
def test_counters_expire_two_windows_and_a_minute_after_their_window_starts(strategy: type) -> None:
    """Long enough for the sliding window to read the previous window, short enough not to pile up items."""
    rule = replace(SLIDING if strategy is SlidingWindow else FIXED, window_seconds=3600)
    clock = FakeClock(3600.0 * 480_000 + 1234)
    store = MemoryStore(clock=clock)
    run(strategy(store, clock).decide(rule, "k", 1))
    start = 3600 * 480_000
    assert store.expires_at(counter_key(rule, "k", start)) == start + 2 * 3600 + 60


def test_bounded_cache_evicts_the_least_recently_used_entry() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)


def test_fixed_window_remaining_counts_down_by_one_through_leases() -> None:
    """With leases a replica holds tokens the store has already counted: remaining must still fall by one
    per admission (the limit minus the store's count plus the tokens held), and reach 0 exactly at the limit."""
    clock = FakeClock(60_000.0)
    store = MemoryStore(clock=clock)
    fw = FixedWindow(store, clock)
    leased = replace(FIXED, limit=10, lease=4)
    decisions = [run(fw.decide(leased, "k", 1)) for _ in range(11)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert [d.remaining for d in decisions] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]
    assert [d.source for d in decisions[:5]] == ["store", "lease", "lease", "lease", "store"]


class CountingStore(MemoryStore):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.writes: list[int] = []  # the cost of every conditional write

    async def incr_if(self, key, cost, ceiling, expires_at):  # type: ignore[no-untyped-def]
        self.writes.append(cost)
        return await super().incr_if(key, cost, ceiling, expires_at)


def test_once_a_lease_block_no_longer_fits_the_window_takes_exact_tokens_without_retrying_blocks() -> None:
    """Limit 10, blocks of 4: two blocks (8), then a third is refused; the rest of the window costs one write
    per request, not a doomed block write first each time."""
    clock = FakeClock(60_000.0)
    store = CountingStore(clock)
    fw = FixedWindow(store, clock)
    leased = replace(FIXED, limit=10, lease=4)
    decisions = [run(fw.decide(leased, "k", 1)) for _ in range(11)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert store.writes == [4, 4, 4, 1, 1, 1]  # the 11th is refused by its own single write, then cached


# -- sliding window ----------------------------------------------------------------------------
def test_sliding_window_remaining_counts_down_from_the_weighted_ceiling() -> None:
    clock = FakeClock(10_000.0)  # a window start for 10 s windows
    sw = SlidingWindow(MemoryStore(clock=clock), clock)
    assert [run(sw.decide(SLIDING, "k", 1)).remaining for _ in range(10)] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    clock.advance(15)  # half-way into the next window: the previous 10 weigh 5, so the ceiling is 5
    assert [run(sw.decide(SLIDING, "k", 2)).remaining for _ in range(2)] == [3, 1]


def test_sliding_window_weights_the_previous_window() -> None:
    clock = FakeClock(10_000.0)  # a window start for 10 s windows
    sw = SlidingWindow(MemoryStore(clock=clock), clock)
    assert all(run(sw.decide(SLIDING, "k", 1)).allowed for _ in range(10))
    assert not run(sw.decide(SLIDING, "k", 1)).allowed
    clock.advance(10)  # next window: the previous 10 weigh 100 %
    d = run(sw.decide(SLIDING, "k", 1))
    assert not d.allowed and d.retry_after == pytest.approx(1.0, abs=1e-3)
    clock.advance(5)  # half-way: previous weighs 5, so 5 more fit
    assert [run(sw.decide(SLIDING, "k", 1)).allowed for _ in range(6)] == [True] * 5 + [False]
    denied = run(sw.decide(SLIDING, "k", 1))
    assert denied.source == "over_limit_cache"
    clock.advance(denied.retry_after or 0)
    assert run(sw.decide(SLIDING, "k", 1)).allowed


def test_sliding_window_longer_than_the_slack_still_weighs_the_previous_window() -> None:
    """A one-hour window: the previous window's counter must outlive the first minute of the next one."""
    hourly = replace(SLIDING, limit=100, window_seconds=3600)
    clock = FakeClock(3600.0 * 500 + 3000)  # 10 minutes before a window ends
    sw = SlidingWindow(MemoryStore(clock=clock), clock)
    assert all(run(sw.decide(hourly, "k", 1)).allowed for _ in range(100))
    clock.advance(600 + 61)  # 61 s into the next window: the previous 100 still weigh 98.3 %
    admitted = sum(run(sw.decide(hourly, "k", 1)).allowed for _ in range(100))
    assert admitted == math.floor(100 - 100 * (1 - 61 / 3600) + 1e-9) == 1
    clock.advance(1800)  # half-way (at 30 min 61 s): about half the limit again, counting the one admitted
    admitted = sum(run(sw.decide(hourly, "k", 1)).allowed for _ in range(100))
    assert admitted == math.floor(100 - 100 * (1 - 1861 / 3600) + 1e-9) - 1


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(st.tuples(st.floats(0, 7, allow_nan=False), st.integers(1, 3)), min_size=1, max_size=80),
    limit=st.integers(1, 15),
)
def test_sliding_window_weighted_count_never_exceeds_the_limit(ops: list[tuple[float, int]], limit: int) -> None:
    w = 10
    rule = replace(SLIDING, limit=limit, window_seconds=w)
    clock = FakeClock(50_000.0)
    sw = SlidingWindow(MemoryStore(clock=clock), clock)
    used: dict[int, int] = {}
    for advance, cost in ops:
        clock.advance(advance)
        now = clock()
        start = window_start(now, w)
        prev, cur = used.get(start - w, 0), used.get(start, 0)
        weighted_after = prev * (1 - (now - start) / w) + cur + cost
        d = run(sw.decide(rule, "k", cost))
        # Exact: allowed iff the weighted count stays within the limit (with integer rounding).
        assert d.allowed == (cur + cost <= math.floor(limit - prev * (1 - (now - start) / w) + 1e-9))
        if d.allowed:
            assert weighted_after <= limit + 1e-6
            used[start] = cur + cost
        else:
            assert d.retry_after is not None and d.retry_after > 0
