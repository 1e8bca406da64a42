"""The limiter over every store: exact admission, over-limit cache, leases, failure modes, shadow."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace

import pytest

from limiter_service.clock import FakeClock
from limiter_service.limiter import Limiter, request_key
from limiter_service.metrics import Metrics
from limiter_service.rules import Algorithm, FailureMode, KeyPart, Rule, parse_rules
from limiter_service.stores.base import IncrResult, Store, StoreError
from tests.limiter_service.limiter_testutil import CountingStore

pytestmark = pytest.mark.anyio


def rule(**kw: object) -> Rule:
    base = Rule(name=f"r-{uuid.uuid4().hex[:8]}", key=(KeyPart("client_ip"),), limit=20, window_seconds=3600)
    return replace(base, **kw)  # type: ignore[arg-type]


def make(store: Store, clock: FakeClock, *rules: Rule) -> tuple[Limiter, CountingStore, Metrics]:
    counting = CountingStore(store)
    metrics = Metrics()
    return Limiter(list(rules), counting, clock, metrics, 1000), counting, metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def at_window_start(clock: FakeClock, window: int = 3600) -> None:
    clock.now = (int(clock.now) // window + 1) * window + 1.0


async def test_fixed_window_one_store_call_per_allowed_decision(store: Store, clock: FakeClock) -> None:
    at_window_start(clock)
    r = rule(limit=20)
    limiter, counting, metrics = make(store, clock, r)
    results = [(await limiter.check(r, "k")).decision for _ in range(20)]
    assert all(d.allowed for d in results)
    assert [d.remaining for d in results] == list(range(19, -1, -1))
    assert counting.incr_calls == 20 and counting.get_calls == 0
    assert sample(metrics, "limiter_decisions_total", rule=r.name, outcome="allowed") == 20


async def test_over_limit_flood_is_answered_locally_until_the_window_resets(store: Store, clock: FakeClock) -> None:
    at_window_start(clock)
    r = rule(limit=5)
    limiter, counting, metrics = make(store, clock, r)
    for _ in range(5):
        assert (await limiter.check(r, "k")).decision.allowed
    first_denial = (await limiter.check(r, "k")).decision
    assert not first_denial.allowed
    calls = counting.calls
    flood = [(await limiter.check(r, "k")).decision for _ in range(200)]
    assert not any(d.allowed for d in flood)
    assert {d.source for d in flood} == {"over_limit_cache"}
    assert counting.calls == calls  # no store call for the flood
    assert sample(metrics, "limiter_local_cache_hits_total", rule=r.name, kind="over_limit") == 200
    assert sample(metrics, "limiter_decisions_total", rule=r.name, outcome="denied") == 201
    clock.advance(3600)
    assert (await limiter.check(r, "k")).decision.allowed
    assert counting.calls == calls + 1


@pytest.mark.parametrize("lease", [10, 100])
async def test_leases_take_one_write_per_block(store: Store, clock: FakeClock, lease: int) -> None:
    at_window_start(clock)
    r = rule(limit=1000, lease=lease)
    limiter, counting, _ = make(store, clock, r)
    assert all([(await limiter.check(r, "k")).decision.allowed for _ in range(500)])
    assert counting.calls == 500 // lease


async def test_leases_across_replicas_never_over_admit_and_drain_exactly(store: Store, clock: FakeClock) -> None:
    """Three replicas share one store; a flood on each admits exactly the limit in total."""
    at_window_start(clock)
    r = rule(limit=97, lease=10)
    replicas = [make(store, clock, r)[0] for _ in range(3)]
    rng = random.Random(7)
    admitted = 0
    denied_on = set()
    for _ in range(400):
        i = rng.randrange(3)
        d = (await replicas[i].check(r, "hot")).decision
        if d.allowed:
            admitted += 1
            assert admitted <= r.limit
        else:
            denied_on.add(i)
    # Drain: once every replica has been refused, no leased token is left unspent.
    for i, limiter in enumerate(replicas):
        while (await limiter.check(r, "hot")).decision.allowed:
            admitted += 1
        denied_on.add(i)
    assert admitted == r.limit


async def test_leases_under_admission_is_bounded(store: Store, clock: FakeClock) -> None:
    """A replica that stops receiving traffic strands at most lease - 1 tokens."""
    at_window_start(clock)
    r = rule(limit=100, lease=10)
    a, b = make(store, clock, r)[0], make(store, clock, r)[0]
    assert (await b.check(r, "k")).decision.allowed  # b leases 10, spends 1, then goes quiet
    admitted_a = 0
    while (await a.check(r, "k")).decision.allowed:
        admitted_a += 1
    assert admitted_a == 100 - 10  # exactly the stranded lease (lease - 1 unspent + 1 spent) is missing
    assert admitted_a + 1 >= r.limit - (r.lease - 1)


async def test_sliding_window_over_every_store(store: Store, clock: FakeClock) -> None:
    at_window_start(clock, 60)
    r = rule(limit=10, window_seconds=60, algorithm=Algorithm.SLIDING_WINDOW)
    limiter, counting, _ = make(store, clock, r)
    assert [(await limiter.check(r, "k")).decision.allowed for _ in range(11)] == [True] * 10 + [False]
    clock.advance(60 + 30)  # half of the previous window still counts: 5
    results = [(await limiter.check(r, "k")).decision.allowed for _ in range(6)]
    assert results == [True] * 5 + [False]
    # One read of the closed previous window per key and window, at most one write per decision.
    assert counting.get_calls == 2
    assert counting.incr_calls <= 11 + 6


class FailingStore(Store):
    name = "failing"

    def __init__(self) -> None:
        self.failing = True

    async def incr_if(self, key: str, cost: int, ceiling: int, expires_at: int) -> IncrResult:
        if self.failing:
            raise StoreError("down", reason="connection", operation="UpdateItem")
        return IncrResult(True, cost)

    async def get(self, key: str) -> int:
        if self.failing:
            raise StoreError("down", reason="connection", operation="GetItem")
        return 0

    @property
    def reachable(self) -> bool:
        return not self.failing


async def test_store_failure_follows_each_rules_failure_mode(clock: FakeClock) -> None:
    open_rule = rule(failure_mode=FailureMode.OPEN)
    closed_rule = rule(failure_mode=FailureMode.CLOSED, algorithm=Algorithm.SLIDING_WINDOW)
    failing = FailingStore()
    limiter, _, metrics = make(failing, clock, open_rule, closed_rule)
    d_open = (await limiter.check(open_rule, "k")).decision
    d_closed = (await limiter.check(closed_rule, "k")).decision
    assert d_open.allowed and d_open.source == "error"
    assert (d_open.remaining, d_open.retry_after) == (0, None)  # nothing known: claim no headroom
    assert not d_closed.allowed and d_closed.retry_after == 1.0 and d_closed.remaining == 0
    assert sample(metrics, "limiter_decisions_total", rule=open_rule.name, outcome="error_allowed") == 1
    assert sample(metrics, "limiter_decisions_total", rule=closed_rule.name, outcome="error_denied") == 1
    failing.failing = False  # recovers with no restart
    assert (await limiter.check(closed_rule, "k")).decision.allowed


async def test_shadow_rules_decide_but_never_deny(store: Store, clock: FakeClock) -> None:
    at_window_start(clock)
    r = rule(limit=1, shadow=True)
    limiter, _, metrics = make(store, clock, r)
    first, second = await limiter.check(r, "k"), await limiter.check(r, "k")
    assert first.enforced_allowed and second.enforced_allowed
    assert not second.decision.allowed
    assert sample(metrics, "limiter_decisions_total", rule=r.name, outcome="shadow_denied") == 1


async def test_requests_are_checked_against_every_matching_rule(clock: FakeClock) -> None:
    from limiter_service.stores.memory import MemoryStore

    rules = parse_rules(
        {
            "rules": [
                {"name": "per-ip", "key": ["client_ip"], "limit": 5, "window_seconds": 60},
                {
                    "name": "per-key",
                    "match": {"path_prefix": "/api/", "methods": ["POST"], "hosts": ["*.example.com"]},
                    "key": ["header:x-api-key"],
                    "limit": 1,
                    "window_seconds": 60,
                },
            ]
        }
    )
    limiter, _, _ = make(MemoryStore(clock=clock), clock, *rules)
    headers = {"x-api-key": "abc"}
    out = await limiter.check_request("POST", "/api/x", "api.example.com:443", headers, "10.0.0.1")
    assert [d.rule.name for d in out] == ["per-ip", "per-key"] and all(d.enforced_allowed for d in out)
    out = await limiter.check_request("POST", "/api/x", "api.example.com", headers, "10.0.0.1")
    assert [d.enforced_allowed for d in out] == [True, False]
    # No x-api-key: the per-key rule does not apply; GET: it does not match.
    assert [d.rule.name for d in await limiter.check_request("POST", "/api/x", "api.example.com", {}, "ip")] == [
        "per-ip"
    ]
    assert [d.rule.name for d in await limiter.check_request("GET", "/api/x", "a.example.com", headers, "ip")] == [
        "per-ip"
    ]
    assert await limiter.check_request("GET", "/", "h", {}, None) == []


@pytest.mark.parametrize(
    ("host", "matched"),
    [("api.example.com", True), ("a.b.example.com", True), ("API.Example.com:8443", True),
     ("example.com", False), (".example.com", False), ("badexample.com", False), ("example.com.evil", False)],
)  # fmt: skip
def test_a_wildcard_host_matches_one_or_more_labels_before_the_domain_only(host: str, matched: bool) -> None:
    from limiter_service.rules import Match

    assert Match(hosts=("*.example.com",)).matches("GET", "/", host) is matched


def test_request_keys_join_parts_and_hash_long_values() -> None:
    r = rule(key=(KeyPart("header", "x-api-key"), KeyPart("client_ip")))
    assert request_key(r, {"x-api-key": "k"}, "1.2.3.4") == "k\x1f1.2.3.4"
    assert request_key(r, {"x-api-key": "k"}, None) is None
    assert request_key(r, {"x-api-key": "  "}, "1.2.3.4") is None
    long_key = request_key(r, {"x-api-key": "x" * 600}, "1.2.3.4")
    assert long_key is not None and long_key.startswith("sha256:") and len(long_key) == 71
