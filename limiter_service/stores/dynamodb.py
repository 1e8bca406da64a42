"""DynamoDB store: conditional UpdateItem counters in one table (partition key ``pk``, TTL ``expires_at``).

Why boto3's sync client in a bounded thread pool rather than aiobotocore: boto3 is the official SDK and
already a dependency of the image; aiobotocore pins exact botocore versions (so it fights boto3 in one
environment) and lags behind it. A thread hop costs tens of microseconds against a network round trip
of milliseconds, and the pool size bounds the number of DynamoDB calls in flight.

Deadlines: botocore's connect/read timeouts bound each attempt (``timeout / max_attempts``), and an
``asyncio.wait_for`` on the whole call bounds the answer (``timeout``), retries included. botocore's
own retries are off (its backoff can sleep for a second); this module retries throttling, 5xx and
network errors itself while time is left. A timed-out UpdateItem may still have been applied: that
can only under-admit, never over-admit.

Recovery: no state is permanent. After ``reset_after_failures`` consecutive failures the client (and
its connection pool) is replaced; a short circuit breaker answers ``StoreError("circuit open")`` for
``breaker_cooldown`` seconds after such a run so that an outage does not cost every request a full
timeout, then lets calls through again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from limiter_service.stores.base import IncrResult, Store, StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)
HEALTH_KEY = "health#probe"

#: Called after every backend call: (operation, seconds, error reason or None).
Observer = Callable[[str, float, str | None], None]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, ReadTimeoutError, ConnectTimeoutError)):
        return "timeout"
    if isinstance(exc, BotoConnectionError):
        return "connection"
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"):
            return "throttled"
        if code == "ResourceNotFoundException":
            return "no_table"
        if code in ("AccessDeniedException", "UnrecognizedClientException"):
            return "auth"
        return "client_error"
    if isinstance(exc, (NoCredentialsError, NoRegionError)):
        return "config"
    return "error"


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in RETRYABLE_CODES or status >= 500
    return isinstance(exc, (TimeoutError, BotoCoreError))


def _session() -> boto3.session.Session:
    """A session honouring ``AWS_REGION`` too: the Kubernetes layer sets it, and botocore itself reads
    only ``AWS_DEFAULT_REGION`` (and the profile) for the region."""
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None
    return boto3.session.Session(region_name=region)


def _default_client(config: Config) -> Any:
    return _session().client("dynamodb", config=config)


class DynamoDBStore(Store):
    """Counters as items ``{pk: S, count: N, expires_at: N}`` in the counters table."""

    name = "dynamodb"

    def __init__(
        self,
        table: str,
        *,
        timeout_ms: int = 50,
        max_attempts: int = 2,
        threads: int = 32,
        reset_after_failures: int = 5,
        breaker_cooldown: float = 0.5,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.time,
        client_factory: Callable[[Config], Any] | None = None,
    ) -> None:
        self.table = table
        self.timeout = timeout_ms / 1000.0
        self.max_attempts = max(1, max_attempts)
        self._attempt_timeout = max(self.timeout / self.max_attempts, 0.005)
        self._threads = threads
        self._reset_after = reset_after_failures
        self._cooldown = breaker_cooldown
        self._observer = observer
        self._clock = clock
        self._client_factory = client_factory or _default_client
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="limiter-ddb")
        self._client_lock = threading.Lock()
        self._client: Any = self._new_client()  # raises StoreError on bad configuration
        self._stale = False
        self._failures = 0
        self._open_until = 0.0
        self._reachable = True
        self.calls = 0  # backend requests sent (attempts), for tests and benchmarks

    # -- client management -------------------------------------------------------------------
    def _config(self) -> Config:
        return Config(
            connect_timeout=self._attempt_timeout,
            read_timeout=self._attempt_timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=self._threads,
            tcp_keepalive=True,
        )

    def _new_client(self) -> Any:
        try:
            return self._client_factory(self._config())
        except (BotoCoreError, ValueError) as exc:
            raise StoreError(f"cannot create the DynamoDB client: {exc}", reason=_reason(exc)) from exc

    def _run(self, fn: Callable[[Any], T]) -> T:
        """Runs in a worker thread: replace a stale client (off the event loop), then call."""
        if self._stale:
            with self._client_lock:
                if self._stale:
                    old, self._client = self._client, self._new_client()
                    self._stale = False
                    try:
                        old.close()
                    except Exception:  # pragma: no cover - best effort
                        log.debug("closing the old DynamoDB client failed", exc_info=True)
        return fn(self._client)

    @property
    def reachable(self) -> bool:
        return self._reachable

    # -- the call wrapper --------------------------------------------------------------------
    async def _call(self, operation: str, fn: Callable[[Any], T]) -> T:
        loop = asyncio.get_running_loop()
        start = loop.time()
        if start < self._open_until:
            self._observe(operation, 0.0, "circuit_open")
            raise StoreError(
                "DynamoDB circuit open after repeated failures", reason="circuit_open", operation=operation
            )
        deadline = start + self.timeout
        last: BaseException | None = None
        for _attempt in range(self.max_attempts):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self.calls += 1
            try:
                result = await asyncio.wait_for(loop.run_in_executor(self._executor, self._run, fn), remaining)
            except Exception as exc:
                last = exc
                if not _retryable(exc):
                    break
                continue
            self._failures = 0
            self._reachable = True
            self._observe(operation, loop.time() - start, None)
            return result
        error = last if last is not None else TimeoutError()
        reason = "timeout" if last is None else _reason(last)
        self._failure(loop.time())
        self._observe(operation, loop.time() - start, reason)
        message = f"DynamoDB {operation} failed ({reason}): {error!r}"
        raise StoreError(message, reason=reason, operation=operation) from error

    def _failure(self, now: float) -> None:
        self._reachable = False
        self._failures += 1
        if self._failures >= self._reset_after:
            self._failures = 0
            self._open_until = now + self._cooldown
            self._stale = True  # the next call builds a fresh client (and connection pool)
            log.warning("DynamoDB failing repeatedly; new client, short-circuit for %.2fs", self._cooldown)

    def _observe(self, operation: str, seconds: float, reason: str | None) -> None:
        if self._observer is not None:
            self._observer(operation, seconds, reason)

    # -- operations --------------------------------------------------------------------------
    async def incr_if(self, key: str, cost: int, ceiling: int, expires_at: int) -> IncrResult:
        if cost > ceiling:
            # The attribute_not_exists branch would admit it on a fresh key: refuse without I/O.
            return IncrResult(False, None)
        table = self.table

        def update(client: Any) -> IncrResult:
            try:
                out = client.update_item(
                    TableName=table,
                    Key={"pk": {"S": key}},
                    UpdateExpression="ADD #c :cost SET #e = if_not_exists(#e, :exp)",
                    ConditionExpression="attribute_not_exists(pk) OR #c <= :max",
                    ExpressionAttributeNames={"#c": "count", "#e": "expires_at"},
                    ExpressionAttributeValues={
                        ":cost": {"N": str(cost)},
                        ":max": {"N": str(ceiling - cost)},
                        ":exp": {"N": str(expires_at)},
                    },
                    ReturnValues="UPDATED_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    item = exc.response.get("Item") or {}
                    count = item.get("count", {}).get("N")
                    return IncrResult(False, int(count) if count is not None else None)
                raise
            return IncrResult(True, int(out["Attributes"]["count"]["N"]))

        return await self._call("UpdateItem", update)

    async def get(self, key: str) -> int:
        table = self.table
        now = int(self._clock())

        def read(client: Any) -> int:
            out = client.get_item(
                TableName=table,
                Key={"pk": {"S": key}},
                ConsistentRead=True,
                ProjectionExpression="#c, #e",
                ExpressionAttributeNames={"#c": "count", "#e": "expires_at"},
            )
            item = out.get("Item")
            if not item:
                return 0
            # TTL deletion is lazy (up to days in AWS): treat an expired item as absent.
            if int(item.get("expires_at", {}).get("N", now + 1)) <= now:
                return 0
            return int(item.get("count", {}).get("N", 0))

        return await self._call("GetItem", read)

    async def warm_up(self, timeout: float = 10.0) -> None:
        """One probe outside the per-call deadline, at start: the first call resolves credentials
        (IRSA: an STS AssumeRoleWithWebIdentity call, not bounded by our timeouts) and opens a TLS
        connection, either of which can take longer than a decision's deadline."""
        table = self.table

        def probe(client: Any) -> None:
            client.get_item(TableName=table, Key={"pk": {"S": HEALTH_KEY}}, ProjectionExpression="pk")

        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(self._executor, self._run, probe), timeout)
        except Exception as exc:
            self._reachable = False
            log.warning("DynamoDB warm-up failed (decisions follow each rule's failure mode): %r", exc)
        else:
            self._reachable = True

    async def ping(self) -> None:
        table = self.table

        def probe(client: Any) -> None:
            client.get_item(TableName=table, Key={"pk": {"S": HEALTH_KEY}}, ProjectionExpression="pk")

        await self._call("Ping", probe)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        try:
            self._client.close()
        except Exception:  # pragma: no cover - best effort
            log.debug("closing the DynamoDB client failed", exc_info=True)


def create_table(table: str, *, client: Any | None = None, wait_seconds: float = 60.0) -> str:
    """Create the counters table (``pk`` string key, TTL on ``expires_at``); succeed if it exists.

    For tests and local runs only: in AWS the data layer creates the table. Returns a short status.
    Servers without TTL support (dynalite) get the table without TTL and a warning.
    """
    client = client or _session().client("dynamodb")
    status = "created"
    try:
        client.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
        status = "exists"
    deadline = time.monotonic() + wait_seconds
    while client.describe_table(TableName=table)["Table"]["TableStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {table} did not become ACTIVE within {wait_seconds}s")
        time.sleep(0.1)
    try:
        ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            client.update_time_to_live(
                TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
            )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code not in ("UnknownOperationException", "UnrecognizedClientException", "ValidationException"):
            raise
        status += " (TTL not supported by this server)"
    return status
