"""The same store cases over every store (memory; DynamoDB on dynalite), plus DynamoDB failure cases."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from limiter_service.clock import FakeClock
from limiter_service.stores.base import IncrResult, Store, StoreError
from limiter_service.stores.dynamodb import DynamoDBStore, create_table
from limiter_service.stores.memory import MemoryStore
from tests.limiter_service.limiter_testutil import LocalServer, dynamodb_store, free_port

pytestmark = pytest.mark.anyio
NOW = 1_700_000_000.0


def key() -> str:
    return f"test#{uuid.uuid4().hex}"


async def test_first_increment_creates_the_counter(store: Store, clock: FakeClock) -> None:
    k = key()
    assert await store.get(k) == 0
    result = await store.incr_if(k, 3, 10, int(clock()) + 60)
    assert result.applied and result.count == 3
    assert await store.get(k) == 3


async def test_refuses_past_the_ceiling_and_keeps_the_count(store: Store, clock: FakeClock) -> None:
    k = key()
    exp = int(clock()) + 60
    assert (await store.incr_if(k, 4, 5, exp)).count == 4
    refused = await store.incr_if(k, 2, 5, exp)
    assert not refused.applied
    assert refused.count in (None, 4)  # dynalite does not return ALL_OLD on a failed condition
    exact = await store.incr_if(k, 1, 5, exp)
    assert exact.applied and exact.count == 5
    assert not (await store.incr_if(k, 1, 5, exp)).applied
    assert await store.get(k) == 5


async def test_cost_above_ceiling_is_refused_even_on_a_fresh_key(store: Store, clock: FakeClock) -> None:
    k = key()
    calls_before = getattr(store, "calls", 0)
    result = await store.incr_if(k, 6, 5, int(clock()) + 60)
    assert not result.applied
    assert getattr(store, "calls", 0) == calls_before  # no I/O at all
    assert await store.get(k) == 0


async def test_expiry_is_set_once_and_expired_counters_read_as_zero(store: Store, clock: FakeClock) -> None:
    k = key()
    exp = int(clock()) + 30
    await store.incr_if(k, 1, 10, exp)
    await store.incr_if(k, 1, 10, exp + 100)  # a later write keeps the first expiry
    assert await stored_expiry(store, k) == exp
    clock.advance(31)
    assert await store.get(k) == 0


async def test_concurrent_increments_never_pass_the_ceiling(store: Store, clock: FakeClock) -> None:
    k = key()
    exp = int(clock()) + 60
    results = await asyncio.gather(*(store.incr_if(k, 1, 25, exp) for _ in range(60)))
    assert sum(r.applied for r in results) == 25
    assert await store.get(k) == 25
    assert sorted(r.count for r in results if r.applied) == list(range(1, 26))


async def stored_expiry(store: Store, k: str) -> int | None:
    if isinstance(store, MemoryStore):
        return store.expires_at(k)
    assert isinstance(store, DynamoDBStore)
    client = LocalServer.client_for(store.endpoint_url)
    item = client.get_item(TableName=store.table, Key={"pk": {"S": k}}, ConsistentRead=True)["Item"]
    return int(item["expires_at"]["N"])


# -- DynamoDB failures -------------------------------------------------------------------------
@pytest.mark.dynamodb
async def test_missing_table_is_a_store_error(dynalite: LocalServer, clock: FakeClock) -> None:
    store = dynamodb_store(dynalite.endpoint, "no-such-table", clock)
    with pytest.raises(StoreError) as info:
        await store.incr_if(key(), 1, 5, int(clock()) + 60)
    assert info.value.reason == "no_table"
    assert not store.reachable
    await store.aclose()


@pytest.fixture()
def blackhole(aws_env: Any) -> Iterator[int]:
    """A TCP server that accepts connections and never answers (a DynamoDB store aimed at it needs the
    test credentials and region of `aws_env`, whichever test runs first)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    port = server.getsockname()[1]
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(server.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield port
    stop.set()
    t.join(5)
    for c in conns:
        c.close()
    server.close()


@pytest.mark.dynamodb
async def test_a_hanging_server_times_out_within_the_deadline(blackhole: int, clock: FakeClock) -> None:
    store = dynamodb_store(f"http://127.0.0.1:{blackhole}", "t", clock, timeout_ms=50)
    # Liveness bound, not a speed test: botocore's default read timeout is 60 s, ours 25 ms per attempt.
    with pytest.raises(StoreError) as info:
        await asyncio.wait_for(store.incr_if(key(), 1, 5, int(clock()) + 60), timeout=20)
    assert info.value.reason == "timeout"
    await store.aclose()


@pytest.mark.dynamodb
async def test_recovers_by_itself_when_the_server_comes_back(aws_env: Any, clock: FakeClock) -> None:
    server = LocalServer("dynalite", free_port())
    store = dynamodb_store(server.endpoint, "recovers", clock, timeout_ms=200, breaker_cooldown=1.0)
    try:
        reasons = []
        for _ in range(7):
            with pytest.raises(StoreError) as info:
                await store.incr_if(key(), 1, 5, int(clock()) + 60)
            reasons.append(info.value.reason)
        assert reasons[0] in ("connection", "timeout")  # refused, or slow to refuse on a loaded box
        assert "circuit_open" in reasons  # repeated failures short-circuit instead of waiting
        server.start()
        create_table("recovers", client=server.client())
        deadline = time.monotonic() + 30
        while True:
            try:
                result = await store.incr_if(key(), 1, 5, int(clock()) + 60)
                break
            except StoreError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        assert result.applied and store.reachable
    finally:
        await store.aclose()
        server.stop()


# -- TTL (moto server: it implements TTL; never used for races) --------------------------------
@pytest.mark.dynamodb
async def test_create_table_enables_ttl_and_items_carry_it(moto_server: LocalServer, clock: FakeClock) -> None:
    client = moto_server.client()
    assert create_table("ttl-check", client=client) == "created"
    assert create_table("ttl-check", client=client) == "exists"  # idempotent
    ttl = client.describe_time_to_live(TableName="ttl-check")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    table = client.describe_table(TableName="ttl-check")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]

    store = dynamodb_store(moto_server.endpoint, "ttl-check", clock)
    k = key()
    await store.incr_if(k, 1, 5, int(clock()) + 90)
    item = client.get_item(TableName="ttl-check", Key={"pk": {"S": k}})["Item"]
    assert item["expires_at"] == {"N": str(int(clock()) + 90)}
    assert item["count"] == {"N": "1"}
    # moto reports the old item on a failed condition (AWS does too): the refusal carries the count.
    for _ in range(4):
        await store.incr_if(k, 1, 5, int(clock()) + 90)
    refused = await store.incr_if(k, 1, 5, int(clock()) + 90)
    assert not refused.applied and refused.count == 5
    await store.aclose()


@pytest.mark.dynamodb
def test_create_table_tolerates_a_server_without_ttl(dynalite: LocalServer) -> None:
    status = create_table("no-ttl", client=dynalite.client())
    assert status.startswith("created") and "TTL not supported" in status
    assert create_table("no-ttl", client=dynalite.client()).startswith("exists")


@pytest.mark.dynamodb
async def test_warm_up_never_raises_and_reports_reachability(
    dynalite: LocalServer, dynalite_table: str, clock: FakeClock
) -> None:
    down = dynamodb_store(f"http://127.0.0.1:{free_port()}", "t", clock)
    await down.warm_up(timeout=10)
    assert not down.reachable
    await down.aclose()
    up = dynamodb_store(dynalite.endpoint, dynalite_table, clock)
    await up.warm_up(timeout=10)
    assert up.reachable
    await up.aclose()


@pytest.mark.dynamodb
async def test_a_timeout_this_process_stalled_through_is_shed_not_a_store_failure(
    blackhole: int, clock: FakeClock
) -> None:
    observed: list[tuple[str, float, str | None]] = []
    store = dynamodb_store(
        f"http://127.0.0.1:{blackhole}", "t", clock, timeout_ms=200, max_attempts=1, reset_after_failures=1,
        observer=lambda operation, seconds, reason: observed.append((operation, seconds, reason)),
    )  # fmt: skip
    try:
        await store.warm_up(timeout=0.2)  # resolves credentials; the blackhole never answers the probe
        observed.clear()

        async def stall() -> None:
            # Blocks the event loop: the call's 200 ms timer fires about 100 ms late, half its budget (a stall
            # is more than STALL_FRACTION, a quarter, late; noise only makes it later).
            time.sleep(0.3)

        blocker = asyncio.get_running_loop().create_task(stall())
        with pytest.raises(StoreError) as info:
            await store.incr_if(key(), 1, 5, int(clock()) + 60)
        await blocker
        assert info.value.reason == "stalled"
        # The latency histogram gets the call's real duration (the stall, ~0.3 s), labelled as a stall.
        [(operation, seconds, reason)] = observed
        assert (operation, reason) == ("UpdateItem", "stalled")
        assert 0.25 <= seconds < 5, seconds
        # Not counted by the breaker (it opens after 1 failure here): the next call reaches the server
        # and times out on its own, a store failure this time.
        with pytest.raises(StoreError) as info:
            await store.incr_if(key(), 1, 5, int(clock()) + 60)
        assert info.value.reason == "timeout"
        with pytest.raises(StoreError) as info:
            await store.incr_if(key(), 1, 5, int(clock()) + 60)
        assert info.value.reason == "circuit_open"
    finally:
        await store.aclose()


def test_a_store_must_implement_incr_if_and_get_and_is_reachable_by_default() -> None:
    class OnlyIncr(Store):
        async def incr_if(self, key: str, cost: int, ceiling: int, expires_at: int) -> IncrResult:
            return IncrResult(True, cost)

    class OnlyGet(Store):
        async def get(self, key: str) -> int:
            return 0

    for partial in (OnlyIncr, OnlyGet):
        with pytest.raises(TypeError, match="abstract"):
            partial()  # type: ignore[abstract]

    class Both(OnlyIncr, OnlyGet):
        pass

    assert Both().reachable is True  # a store without a probe claims nothing is wrong


async def test_the_memory_store_frees_expired_counters_soonest_first(clock: FakeClock) -> None:
    """Memory stays bounded by the live counters: a counter past its expiry is dropped on the next write,
    even while counters that expire later remain."""
    store = MemoryStore(clock=clock)
    now = int(clock())
    await store.incr_if("short", 1, 5, now + 1)
    await store.incr_if("long", 1, 5, now + 100)
    clock.advance(2)
    await store.incr_if("other", 1, 5, now + 100)
    assert store.expires_at("short") is None
    assert store.expires_at("long") == now + 100


def test_a_store_result_is_an_immutable_value() -> None:
    import dataclasses

    result = IncrResult(True, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.count = 4  # type: ignore[misc]
    assert result == IncrResult(True, 3) and hash(result) == hash(IncrResult(True, 3))


async def test_a_memory_counter_is_gone_from_the_second_it_expires(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    now = int(clock())
    await store.incr_if("k", 5, 5, now + 10)
    clock.advance(now + 10 - clock())  # exactly its expiry
    assert clock() == now + 10
    assert await store.get("k") == 0
    assert await store.incr_if("k", 5, 5, now + 20) == IncrResult(True, 5)  # a fresh counter, not 5 + 5
    assert store.expires_at("k") == now + 20


async def test_the_memory_store_keeps_at_most_max_keys_dropping_the_soonest_to_expire(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock, max_keys=3)
    now = int(clock())
    for i in range(10):
        assert (await store.incr_if(f"k{i}", 1, 5, now + 100 - i)).applied
        assert len(store._data) <= 3
    # k(i) expires at now + 100 - i: the two that expire last stay, and k9, just written; the rest were dropped.
    assert {f"k{i}" for i in range(10) if store.expires_at(f"k{i}")} == {"k0", "k1", "k9"}


async def test_a_counter_written_into_a_full_memory_store_is_freed_when_it_expires(clock: FakeClock) -> None:
    """The new counter expires before all others: it must still be queued for expiry once stored."""
    store = MemoryStore(clock=clock, max_keys=2)
    now = int(clock())
    for i in range(3):
        await store.incr_if(f"long{i}", 1, 5, now + 100)
    await store.incr_if("short", 1, 5, now + 1)
    assert store.expires_at("short") == now + 1
    clock.advance(2)
    await store.incr_if("long0", 1, 5, now + 100)  # any write purges what has expired
    assert store.expires_at("short") is None
    assert len(store._data) <= 2


class _CreatingTable:
    """A DynamoDB client whose new table stays CREATING for `polls` describe calls (real tables take seconds)."""

    def __init__(self, polls: int) -> None:
        self.polls = polls
        self.ttl: dict[str, Any] | None = None

    def create_table(self, **kwargs: Any) -> None:
        assert kwargs["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]

    def describe_table(self, TableName: str) -> dict[str, Any]:
        self.polls -= 1
        return {"Table": {"TableStatus": "CREATING" if self.polls >= 0 else "ACTIVE"}}

    def describe_time_to_live(self, TableName: str) -> dict[str, Any]:
        return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}

    def update_time_to_live(self, TableName: str, TimeToLiveSpecification: dict[str, Any]) -> None:
        self.ttl = TimeToLiveSpecification


def test_create_table_waits_for_the_table_to_become_active_then_sets_ttl() -> None:
    client = _CreatingTable(polls=3)
    assert create_table("t", client=client, wait_seconds=10) == "created"
    assert client.polls < 0 and client.ttl == {"Enabled": True, "AttributeName": "expires_at"}
    with pytest.raises(TimeoutError, match=r"table t did not become ACTIVE within 0\.3s"):
        create_table("t", client=_CreatingTable(polls=1000), wait_seconds=0.3)
