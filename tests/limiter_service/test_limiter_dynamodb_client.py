"""The DynamoDB store's client against the built-in stub (bench/dynamodb_stub.py): retries inside the
deadline, response integrity, connection reuse over TLS, shedding, and credentials from the chain."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from limiter_service.clock import FakeClock
from limiter_service.limiter import Limiter
from limiter_service.metrics import Metrics
from limiter_service.rules import FailureMode, KeyPart, Rule
from limiter_service.stores.base import StoreError
from limiter_service.stores.dynamodb import DynamoDBStore
from tests.limiter_service.limiter_testutil import REPO, free_port, stop_process, wait_port

pytestmark = pytest.mark.anyio
EXPIRES = 2_000_000_000


class Stub:
    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.dynamodb_stub", "--port", str(self.port), *args],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, self.proc)

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"


@pytest.fixture()
def stubs(aws_env: dict[str, str]) -> Iterator[Any]:
    started: list[Stub] = []

    def start(*args: str) -> Stub:
        stub = Stub(*args)
        started.append(stub)
        return stub

    yield start
    for stub in started:
        stop_process(stub.proc)


def store_for(url: str, **kwargs: Any) -> DynamoDBStore:
    kwargs.setdefault("timeout_ms", 2000)
    return DynamoDBStore("t", endpoint_url=url, **kwargs)


@pytest.mark.parametrize("fault", ["--throttle-every", "--error-every"])
async def test_throttling_and_5xx_are_retried_within_the_deadline(stubs: Any, fault: str) -> None:
    stub = stubs(fault, "2")  # every second answer is a ThrottlingException or a 500 (nothing written)
    store = store_for(stub.url(), max_attempts=2)
    try:
        counts = [(await store.incr_if("k", 1, 100, EXPIRES)).count for _ in range(10)]
        assert counts == list(range(1, 11))  # every decision applied exactly once
        assert store.calls == 19  # answers 2, 4, ..., 18 were faults, each retried at once
        assert store.reachable
    finally:
        await store.aclose()


async def test_zero_attempts_or_resets_given_directly_still_make_one_attempt(stubs: Any) -> None:
    """Settings refuse 0 (ge=1); a store built directly clamps it rather than never calling DynamoDB."""
    store = store_for(stubs().url(), max_attempts=0, reset_after_failures=0)
    try:
        assert (await store.incr_if("k", 1, 100, EXPIRES)).count == 1
        assert store.calls == 1 and store.max_attempts == 1
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("code", "retried", "reason"),
    [
        # What a provisioned table answers when a partition runs out of capacity: HTTP 400, yet transient.
        ("ProvisionedThroughputExceededException", True, None),
        ("RequestLimitExceeded", True, None),
        ("TransactionInProgressException", True, None),
        # A 400 that no retry can fix: one attempt, then the error.
        ("ValidationException", False, "client_error"),
        ("AccessDeniedException", False, "auth"),
        ("ResourceNotFoundException", False, "no_table"),
    ],
)
async def test_which_http_400_answers_are_retried(stubs: Any, code: str, retried: bool, reason: str | None) -> None:
    stub = stubs("--throttle-every", "2", "--throttle-code", code)  # the second answer is that error
    store = store_for(stub.url(), max_attempts=2)
    try:
        assert (await store.incr_if("k", 1, 100, EXPIRES)).count == 1
        if retried:
            assert (await store.incr_if("k", 1, 100, EXPIRES)).count == 2  # the retry (answer 3) succeeded
            assert store.calls == 3
        else:
            with pytest.raises(StoreError) as info:
                await store.incr_if("k", 1, 100, EXPIRES)
            assert info.value.reason == reason
            assert store.calls == 2
    finally:
        await store.aclose()


async def test_an_answer_failing_its_crc32_is_never_used_and_is_retried(stubs: Any) -> None:
    stub = stubs("--corrupt-every", "2")  # every second answer's x-amz-crc32 is wrong (the write happened)
    store = store_for(stub.url(), max_attempts=2)
    try:
        counts = [(await store.incr_if("k", 1, 100, EXPIRES)).count for _ in range(5)]
        # Each corrupted answer is discarded and the call retried; its write had been applied, so the
        # counter moves by two: an unreadable answer can only under-admit, never over-admit.
        assert counts == [1, 3, 5, 7, 9]
        assert store.calls == 9
    finally:
        await store.aclose()


@pytest.mark.parametrize(("fault", "reason"), [("--throttle-every", "throttled"), ("--corrupt-every", "integrity")])
async def test_persistent_faults_end_in_a_store_error_naming_them(stubs: Any, fault: str, reason: str) -> None:
    stub = stubs(fault, "1")
    store = store_for(stub.url(), max_attempts=3)
    try:
        with pytest.raises(StoreError) as info:
            await store.incr_if("k", 1, 100, EXPIRES)
        assert info.value.reason == reason
        assert store.calls == 3  # all attempts used, then the error
    finally:
        await store.aclose()


async def test_failed_condition_returns_the_old_count(stubs: Any) -> None:
    store = store_for(stubs().url())
    try:
        assert (await store.incr_if("k", 4, 5, EXPIRES)).count == 4
        refused = await store.incr_if("k", 2, 5, EXPIRES)
        assert not refused.applied and refused.count == 4  # ALL_OLD on ConditionalCheckFailedException
        assert store.reachable
    finally:
        await store.aclose()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl CLI)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_is_verified_and_connections_are_reused(
    stubs: Any, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    stub = stubs("--tls-cert", str(cert), "--tls-key", str(key))
    untrusted = store_for(stub.url("https"))  # botocore's CA bundle does not know this certificate
    try:
        with pytest.raises(StoreError) as info:
            await untrusted.incr_if("k", 1, 100, EXPIRES)
        assert info.value.reason == "connection"
        assert "CERTIFICATE_VERIFY_FAILED" in repr(info.value.__cause__)
    finally:
        await untrusted.aclose()
    monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))
    store = store_for(stub.url("https"))
    try:
        for i in range(20):
            assert (await store.incr_if("k", 1, 100, EXPIRES)).count == i + 1
        assert store._http is not None and store._http.opened == 1  # one TLS connection, kept alive
    finally:
        await store.aclose()


async def test_calls_beyond_max_pending_are_shed_without_io_or_tripping_the_breaker(stubs: Any) -> None:
    store = store_for(stubs().url(), max_pending=3, reset_after_failures=2)
    try:
        await store.warm_up()
        results = await asyncio.gather(
            *(store.incr_if(f"k{i}", 1, 100, EXPIRES) for i in range(10)), return_exceptions=True
        )
        shed = [r for r in results if isinstance(r, StoreError)]
        assert len(shed) == 7 and {e.reason for e in shed} == {"overloaded"}
        assert store.calls == 3  # the shed ones sent nothing
        assert store.reachable
        assert (await store.incr_if("after", 1, 100, EXPIRES)).applied  # no breaker opened
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("mode", "outcome", "allowed"), [("open", "shed_allowed", True), ("closed", "shed_denied", False)]
)
async def test_a_shed_decision_follows_the_failure_mode_and_is_counted_as_shed(
    stubs: Any, mode: str, outcome: str, allowed: bool
) -> None:
    store = store_for(stubs().url(), max_pending=1)
    rule = Rule(name="r", key=(KeyPart("client_ip"),), limit=100, window_seconds=60, failure_mode=FailureMode(mode))
    metrics = Metrics()
    limiter = Limiter([rule], store, FakeClock(1_700_000_000.0), metrics, 1000)
    try:
        await store.warm_up()
        first, second = await asyncio.gather(limiter.check(rule, "a"), limiter.check(rule, "b"))
        assert first.decision.allowed and first.decision.source == "store"
        assert second.decision.allowed is allowed and second.decision.source == "error"
        assert metrics.registry.get_sample_value("limiter_decisions_total", {"rule": "r", "outcome": outcome}) == 1
        assert metrics.registry.get_sample_value("limiter_decisions_total", {"rule": "r", "outcome": "allowed"}) == 1
    finally:
        await store.aclose()


class _PodIdentityAgent(BaseHTTPRequestHandler):
    """The EKS Pod Identity agent's answer (AWS_CONTAINER_CREDENTIALS_FULL_URI): credentials as JSON."""

    issued: list[str] = []
    tokens_seen: list[str] = []

    def do_GET(self) -> None:
        self.tokens_seen.append(self.headers.get("Authorization", ""))
        key = f"ASIAPOD{len(self.issued)}"
        self.issued.append(key)
        # Expiring within botocore's refresh window, so each check fetches new credentials.
        expiry = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps(
            {"AccessKeyId": key, "SecretAccessKey": "secret", "Token": f"token-{key}", "Expiration": expiry}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


async def test_credentials_come_from_the_chain_and_refresh_off_the_loop(
    stubs: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    agent = ThreadingHTTPServer(("127.0.0.1", 0), _PodIdentityAgent)
    thread = threading.Thread(target=agent.serve_forever, daemon=True)
    thread.start()
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text("pod-identity-token")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"http://127.0.0.1:{agent.server_port}/v1/credentials")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))
    store = store_for(stubs().url())
    try:
        await store.warm_up()
        assert store.reachable
        assert store._signer is not None
        first = store._signer.credentials.access_key
        assert first == _PodIdentityAgent.issued[-1]  # the agent's, not the environment's
        assert set(_PodIdentityAgent.tokens_seen) == {"pod-identity-token"}
        store._credentials_checked = time.monotonic() - 3600  # the next call starts a background check
        assert (await store.incr_if("k", 1, 100, EXPIRES)).applied
        task = store._credentials_task
        assert task is not None
        await task
        assert store._signer.credentials.access_key == _PodIdentityAgent.issued[-1] != first  # refreshed
    finally:
        await store.aclose()
        agent.shutdown()
        agent.server_close()


@pytest.mark.parametrize(
    "anyio_backend",
    # uvloop (what uvicorn runs in the image) runs due timers before it reads sockets; asyncio after.
    [
        pytest.param(("asyncio", {"use_uvloop": False}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ],
)
async def test_an_answer_that_arrived_while_the_process_stalled_is_used(stubs: Any) -> None:
    store = store_for(stubs().url(), timeout_ms=50, max_attempts=1, reset_after_failures=1)
    try:
        await store.warm_up()

        async def stall() -> None:
            time.sleep(0.3)  # blocks the event loop past the deadline; the stub answers meanwhile

        for i in range(3):
            blocker = asyncio.get_running_loop().create_task(stall())
            result = await store.incr_if("k", 1, 100, EXPIRES)
            await blocker
            assert result.applied and result.count == i + 1  # the answer, not a timeout
        assert store.calls == 3 and store.reachable
    finally:
        await store.aclose()


async def test_a_timed_out_connection_is_reused_after_its_late_answer_is_discarded(stubs: Any) -> None:
    stub = stubs("--slow-every", "3", "--slow-ms", "150")  # answer 3 (the second UpdateItem) comes 150 ms late
    store = store_for(stub.url(), timeout_ms=50, max_attempts=1)
    try:
        await store.warm_up()  # answer 1 (GetItem)
        assert (await store.incr_if("k", 1, 100, EXPIRES)).count == 1  # answer 2
        with pytest.raises(StoreError) as info:
            await store.incr_if("k", 1, 100, EXPIRES)  # answer 3: late, after the deadline
        assert info.value.reason == "timeout"
        await asyncio.sleep(0.3)  # the late answer arrives and is discarded
        # The same connection again: the late answer (count 2) is not read as this one's.
        assert (await store.incr_if("k", 1, 100, EXPIRES)).count == 3
        assert store._http is not None and store._http.opened == 1
    finally:
        await store.aclose()


@pytest.mark.parametrize("key", ["k", 'w#r#60#1700000000#"quoted"\\\x1fünï\u2028', "x" * 512])
def test_the_update_request_is_the_conditional_add(aws_env: dict[str, str], key: str) -> None:
    store = DynamoDBStore('table "t"', endpoint_url="http://127.0.0.1:9")
    assert json.loads(store._update_body(key, 3, 7, 1_700_000_180)) == {
        "TableName": 'table "t"',
        "Key": {"pk": {"S": key}},
        "UpdateExpression": "ADD #c :cost SET #e = if_not_exists(#e, :exp)",
        "ConditionExpression": "attribute_not_exists(pk) OR #c <= :max",
        "ExpressionAttributeNames": {"#c": "count", "#e": "expires_at"},
        "ExpressionAttributeValues": {":cost": {"N": "3"}, ":max": {"N": "7"}, ":exp": {"N": "1700000180"}},
        "ReturnValues": "UPDATED_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


class _GatewayError(BaseHTTPRequestHandler):
    """A proxy's 502 in front of DynamoDB: an HTML body, no JSON."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = b"<html><body>502 Bad Gateway</body></html>"
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


async def test_a_5xx_that_is_not_json_is_a_retried_server_error(aws_env: dict[str, str]) -> None:
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _GatewayError)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    seen: list[tuple[str, str | None]] = []
    store = store_for(
        f"http://127.0.0.1:{proxy.server_address[1]}", max_attempts=2, observer=lambda o, s, r: seen.append((o, r))
    )
    try:
        with pytest.raises(StoreError) as info:
            await store.incr_if("k", 1, 100, EXPIRES)
        assert info.value.reason == "server_error"
        assert "502 Bad Gateway" in str(info.value)
        assert store.calls == 2  # retried like any 5xx
    finally:
        await store.aclose()
        proxy.shutdown()
        proxy.server_close()


async def test_every_call_reports_its_latency_to_the_observer(stubs: Any) -> None:
    seen: list[tuple[str, float, str | None]] = []
    store = store_for(stubs().url(), observer=lambda op, seconds, reason: seen.append((op, seconds, reason)))
    try:
        await store.incr_if("k", 4, 5, EXPIRES)
        assert not (await store.incr_if("k", 2, 5, EXPIRES)).applied  # a failed condition is a success
        await store.get("k")
    finally:
        await store.aclose()
    assert [(op, reason) for op, _, reason in seen] == [("UpdateItem", None), ("UpdateItem", None), ("GetItem", None)]
    assert all(0 <= seconds < 2 for _, seconds, _ in seen), seen


def test_a_broken_aws_profile_is_a_configuration_error(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(StoreError) as info:
        DynamoDBStore("t", endpoint_url="http://127.0.0.1:9")
    assert info.value.reason == "config"
    assert "cannot configure the DynamoDB client" in str(info.value) and "no-such-profile" in str(info.value)


class _RawServer:
    """A raw HTTP server: reads each request, then writes `answer` (keep-alive), or closes when it is None."""

    def __init__(self, answer: bytes | None) -> None:
        self.answer = answer
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            while self.answer is not None:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(self.answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed its end
        finally:
            writer.close()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
            await asyncio.gather(writer.wait_closed(), return_exceptions=True)
        await self.server.wait_closed()


OK_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-amz-crc32: 1\r\n\r\n{}"


async def test_a_connection_closed_before_the_answer_fails_the_request_at_once() -> None:
    from limiter_service.stores.http import HttpPool, ResponseError

    async with _RawServer(None) as port:
        pool = HttpPool(f"http://127.0.0.1:{port}", "h", None, max_idle=2)
        try:
            with pytest.raises(ResponseError, match="connection closed"):
                await asyncio.wait_for(pool.post({}, b""), timeout=2)
        finally:
            pool.close()


async def test_idle_connections_are_reused_for_up_to_30_seconds() -> None:
    from limiter_service.stores.http import HttpPool

    async with _RawServer(OK_ANSWER) as port:
        pool = HttpPool(f"http://127.0.0.1:{port}", "h", None, max_idle=2)
        try:
            assert await pool.post({}, b"") == (200, b"1", b"{}")
            (idle,) = pool._idle
            idle.last_used -= 29.8  # as if idle for 29.8 s
            await pool.post({}, b"")
            assert pool.opened == 1  # reused
            (idle,) = pool._idle
            idle.last_used -= 30.0  # idle for 30 s: servers may have dropped it
            await pool.post({}, b"")
            assert pool.opened == 2 and idle.closed  # closed, a new one opened
        finally:
            pool.close()
            await asyncio.sleep(0.01)  # let the closed transports finish


async def test_an_answer_that_is_not_http_fails_the_request_at_once_and_drops_the_connection() -> None:
    from limiter_service.stores.http import HttpPool, ResponseError

    async with _RawServer(b"SMTP ready\r\n\r\n") as port:
        pool = HttpPool(f"http://127.0.0.1:{port}", "h", None, max_idle=2)
        try:
            with pytest.raises(ResponseError, match="malformed HTTP response"):
                await asyncio.wait_for(pool.post({}, b""), timeout=2)
            assert pool._idle == []
        finally:
            pool.close()


def test_a_connection_whose_late_answer_never_came_is_closed_after_the_idle_time() -> None:
    """Draining connections wait for the late answer of a cancelled request; one that waited longer than
    IDLE_SECONDS is closed when another finishes draining, not kept forever."""
    import time

    from limiter_service.stores.http import IDLE_SECONDS, HttpPool, _Connection

    pool = HttpPool("http://127.0.0.1:9", "h", None, max_idle=4)
    stuck, waiting, drained = _Connection(pool), _Connection(pool), _Connection(pool)
    now = time.monotonic()
    stuck.draining, waiting.draining, drained.draining = now - IDLE_SECONDS - 1, now - 1, now - 2
    pool._draining = {stuck, waiting, drained}
    pool._drained(drained)
    assert pool._draining == {waiting} and stuck.closed and not waiting.closed
    assert pool._idle == [drained]  # the one whose answer came is reusable


class _Transport:
    def __init__(self) -> None:
        self.closed = False

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _answer(keep_alive: bool = True) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + (b"" if keep_alive else b"Connection: close\r\n") + b"\r\n{}"


def test_a_late_answer_frees_its_connection_but_an_unasked_one_or_a_closing_one_drops_it() -> None:
    import time

    from limiter_service.stores.http import HttpPool, _Connection

    pool = HttpPool("http://127.0.0.1:9", "h", None, max_idle=4)

    def draining() -> _Connection:
        conn = _Connection(pool)
        conn.connection_made(_Transport())
        conn.draining = time.monotonic()
        pool._draining.add(conn)
        return conn

    late = draining()
    late.data_received(_answer())  # the answer to the request that was cancelled: read and discarded
    assert pool._idle == [late] and not late.closed
    late.data_received(_answer())  # then one nobody asked for: the connection can no longer be trusted
    assert late.closed

    closing = draining()
    closing.data_received(_answer(keep_alive=False))  # the late answer closes the connection: not reused
    assert closing.closed and pool._idle == [late]
