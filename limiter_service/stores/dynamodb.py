"""DynamoDB store: conditional UpdateItem counters in one table (partition key ``pk``, TTL ``expires_at``).

The client keeps botocore for what it does well and replaces only the parts that cost. CPU per
UpdateItem on one core against a local stub that answers at once (8 calls in flight, uvloop; the
first two rows were measured before this client, with the same stub):

==================================================  ========  ===================================
client                                              CPU/call  note
==================================================  ========  ===================================
boto3 update_item in a thread pool (the old store)  784 µs    limiter CPU: 0.17x the memory store
aiodynamo over aiohttp                              ~260 µs   its credential chain has no IRSA
botocore SigV4Auth + aiohttp ClientSession          259 µs    signing 82 µs, aiohttp ~110 µs
own SigV4 (checked against botocore's) + aiohttp    164 µs    limiter CPU: 0.46x
own SigV4 + keep-alive pool with httptools          75 µs     limiter CPU: 0.59-0.63x
... + UpdateItem body from a template (this)        61-66 µs  limiter CPU: 0.64-0.68x (README)
==================================================  ========  ===================================

- **Credentials**: botocore's standard chain (environment, IRSA web identity, EKS Pod Identity and
  container credentials, profiles, instance metadata) with its refreshable credentials. They are frozen
  for signing and refreshed off the event loop: a background thread asks botocore every
  ``CREDENTIAL_CHECK_SECONDS`` and botocore refreshes 15 minutes before expiry, so no decision waits on
  STS. The first resolution happens in :meth:`DynamoDBStore.warm_up`, outside any deadline.
- **Region and endpoint**: region from ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` (or the profile); the
  endpoint from botocore's resolver (``AWS_ENDPOINT_URL_DYNAMODB``, FIPS and dual-stack settings
  included), read once from a botocore client that is then closed.
- **Signing**: :mod:`limiter_service.stores.sigv4`, SigV4 for the one request shape sent here with
  the signing key cached per day; botocore's general signer derived the key on every call (82 µs).
  A test compares every signature with botocore's ``SigV4Auth``.
- **Transport**: :mod:`limiter_service.stores.http`, keep-alive HTTP/1.1 connections opened by asyncio
  (TLS verified against botocore's CA bundle, ``AWS_CA_BUNDLE`` honoured), responses parsed by
  httptools. aiohttp's general client cost ~110 µs per request, more than this whole call; no thread
  hop either.
- **Answers**: the JSON 1.0 protocol, parsed with ``json``; the error code is ``__type`` after ``#``
  (as botocore's parser reads it). A failed condition carries the old item
  (``ReturnValuesOnConditionCheckFailure=ALL_OLD``). Every response's ``x-amz-crc32`` header is
  checked against the body (botocore checks it for DynamoDB too); a mismatch is retried.

Deadlines: one ``asyncio.timeout`` bounds each call, retries included (``timeout``), and each attempt
gets at most ``timeout / max_attempts`` unless it is the last. Throttling, 5xx, connection errors and
integrity failures are retried at once while time is left. A timed-out UpdateItem may still have been
applied: that can only under-admit, never over-admit.

Overload: at most ``max_pending`` calls are in progress per process. A call beyond that is refused
at once with ``StoreError(reason="overloaded")`` and no I/O, before its deadline can burn. A timeout
whose timer ran more than ``STALL_FRACTION`` of its budget late (the event loop was saturated, or the
process was not scheduled) is ``StoreError(reason="stalled")``; answers that arrived during the stall
are still used (see :func:`_expire`).
Neither is a store failure: the breaker does not count them and reachability is unchanged. Without
this, a saturated or starved process makes every call overrun its deadline, the breaker opens, and all
answers for the next ``breaker_cooldown`` become the failure mode.

Recovery: no state is permanent. After ``reset_after_failures`` consecutive failures the HTTP session
(and its connection pool) is replaced; a short circuit breaker answers ``StoreError("circuit open")``
for ``breaker_cooldown`` seconds after such a run so that an outage does not cost every request a
full timeout, then lets calls through again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
import zlib
from collections.abc import Callable
from typing import Any

import botocore.session  # type: ignore[import-untyped,unused-ignore]
from botocore.credentials import ReadOnlyCredentials  # type: ignore[import-untyped,unused-ignore]
from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped,unused-ignore]
from botocore.httpsession import where as default_ca_bundle  # type: ignore[import-untyped,unused-ignore]

from limiter_service.stores.base import IncrResult, Store, StoreError
from limiter_service.stores.http import HttpPool
from limiter_service.stores.sigv4 import DynamoDBSigner, canonical_host

log = logging.getLogger(__name__)

TARGET_PREFIX = "DynamoDB_20120810."
HEALTH_KEY = "health#probe"
#: A timeout whose timer ran this much (times the attempt's budget) late is this process's stall.
STALL_FRACTION = 0.25
#: How often the background task asks botocore whether the credentials need refreshing.
CREDENTIAL_CHECK_SECONDS = 30.0
# botocore/retries/standard.py: ThrottledRetryableChecker and TransientRetryableChecker.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
    }
)
TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "InternalServerError"}
)
AUTH_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "IncompleteSignatureException",
    }
)

#: The fixed members of every UpdateItem request (see DynamoDBStore._update_body).
UPDATE_FIXED = json.dumps(
    {
        "UpdateExpression": "ADD #c :cost SET #e = if_not_exists(#e, :exp)",
        "ConditionExpression": "attribute_not_exists(pk) OR #c <= :max",
        "ExpressionAttributeNames": {"#c": "count", "#e": "expires_at"},
        "ReturnValues": "UPDATED_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    },
    separators=(",", ":"),
)[1:-1]

#: Called after every backend call: (operation, seconds, error reason or None).
Observer = Callable[[str, float, str | None], None]


class DynamoDBError(Exception):
    """An error answer from DynamoDB: ``code`` is the short error type (``ThrottlingException``)."""

    def __init__(self, code: str, message: str, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.code = code
        self.status = status
        self.body = body


class IntegrityError(Exception):
    """The body does not match its ``x-amz-crc32`` header (corrupted in transit)."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, IntegrityError):
        return "integrity"
    if isinstance(exc, DynamoDBError):
        if exc.code in THROTTLING_CODES:
            return "throttled"
        if exc.code == "ResourceNotFoundException":
            return "no_table"
        if exc.code in AUTH_CODES:
            return "auth"
        return "server_error" if exc.status >= 500 else "client_error"
    if isinstance(exc, OSError):  # refused, reset, TLS, DNS, a malformed answer (ResponseError)
        return "connection"
    if isinstance(exc, BotoCoreError):
        return "config"
    return "error"


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, DynamoDBError):
        return exc.code in THROTTLING_CODES or exc.code in TRANSIENT_CODES or exc.status >= 500
    return isinstance(exc, TimeoutError | IntegrityError | OSError)


def _expire(scope: asyncio.Timeout) -> None:
    """An attempt's deadline, expired through ``call_soon``: when this process stalled (saturated, or not
    scheduled), answers that arrived meanwhile were read in the same loop pass and queued their wake-ups
    before this timer ran; expiring after those lets them complete. (``asyncio.timeout(budget)`` cancels
    at once and threw such answers away, on asyncio and uvloop alike.)"""
    scope.reschedule(asyncio.get_running_loop().time())


def region_from_environment(session: botocore.session.Session) -> str | None:
    """``AWS_DEFAULT_REGION`` or ``AWS_REGION`` (the Kubernetes layer sets the latter; botocore reads
    only the former and the profile), else the profile's region."""
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    return region or session.get_config_variable("region")


class DynamoDBStore(Store):
    """Counters as items ``{pk: S, count: N, expires_at: N}`` in the counters table."""

    name = "dynamodb"

    def __init__(
        self,
        table: str,
        *,
        timeout_ms: int = 50,
        max_attempts: int = 2,
        max_connections: int = 128,
        max_pending: int = 128,
        reset_after_failures: int = 5,
        breaker_cooldown: float = 0.5,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.time,
        session: botocore.session.Session | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.table = table
        self._table_json = json.dumps(table)
        self.timeout = timeout_ms / 1000.0
        self.max_attempts = max(1, max_attempts)
        self._attempt_timeout = self.timeout / self.max_attempts
        self._max_connections = max_connections
        self._max_pending = max_pending
        self._reset_after = max(1, reset_after_failures)  # like max_attempts: at least one
        self._cooldown = breaker_cooldown
        self._observer = observer
        self._clock = clock
        self._botocore = session or botocore.session.get_session()
        try:
            region = region_from_environment(self._botocore)
            if not region:
                raise StoreError("no AWS region: set AWS_REGION", reason="config")
            self.region: str = region
            self.endpoint_url = endpoint_url or self._resolve_endpoint()
            self._credentials_source = self._botocore.get_credentials()
        except BotoCoreError as exc:
            raise StoreError(f"cannot configure the DynamoDB client: {exc}", reason="config") from exc
        if self._credentials_source is None:
            raise StoreError("no AWS credentials found by botocore's credential chain", reason="config")
        self._signer: DynamoDBSigner | None = None  # built from frozen credentials, off the event loop
        self._credentials_checked = 0.0
        self._credentials_task: asyncio.Task[None] | None = None
        self._http: HttpPool | None = None
        self._stale = False
        self._failures = 0
        self._open_until = 0.0
        self._reachable = True
        self._pending = 0
        self.calls = 0  # backend requests sent (attempts), for tests and benchmarks

    # -- configuration -----------------------------------------------------------------------
    def _resolve_endpoint(self) -> str:
        client = self._botocore.create_client("dynamodb", region_name=self.region)
        try:
            return str(client.meta.endpoint_url)
        finally:
            client.close()

    def _ssl_context(self) -> ssl.SSLContext | None:
        """Certificate and host name verification against botocore's CA bundle (or AWS_CA_BUNDLE)."""
        if not self.endpoint_url.startswith("https:"):
            return None
        bundle = self._botocore.get_config_variable("ca_bundle") or default_ca_bundle()
        return ssl.create_default_context(cafile=bundle)

    def _new_http(self) -> HttpPool:
        return HttpPool(
            self.endpoint_url, canonical_host(self.endpoint_url), self._ssl_context(), max_idle=self._max_connections
        )

    def _freeze_credentials(self) -> DynamoDBSigner:
        """Runs in a thread: botocore may call STS or the Pod Identity agent here."""
        frozen: ReadOnlyCredentials = self._credentials_source.get_frozen_credentials()
        return DynamoDBSigner(frozen, self.region, self.endpoint_url)

    async def _refresh_credentials(self) -> None:
        try:
            self._signer = await asyncio.to_thread(self._freeze_credentials)
        except Exception as exc:  # keep signing with the old ones; AWS says when they stop working
            log.warning("refreshing AWS credentials failed (the current ones stay in use): %r", exc)
        finally:
            self._credentials_task = None

    def _signer_now(self) -> DynamoDBSigner | None:
        """The current signer; starts a background refresh check every CREDENTIAL_CHECK_SECONDS."""
        now = time.monotonic()
        if now - self._credentials_checked >= CREDENTIAL_CHECK_SECONDS and self._credentials_task is None:
            self._credentials_checked = now
            self._credentials_task = asyncio.get_running_loop().create_task(self._refresh_credentials())
        return self._signer

    @property
    def reachable(self) -> bool:
        return self._reachable

    # -- one request -------------------------------------------------------------------------
    async def _send(self, operation: str, body: bytes, signer: DynamoDBSigner) -> dict[str, Any]:
        if self._stale or self._http is None:
            old, self._http, self._stale = self._http, self._new_http(), False
            if old is not None:
                old.close()
        headers = signer.headers(TARGET_PREFIX + operation, body)
        headers["Accept-Encoding"] = "identity"  # the CRC32 covers exactly the bytes received
        status, crc, raw = await self._http.post(headers, body)
        if crc is not None and int(crc) != zlib.crc32(raw):
            raise IntegrityError(f"{operation}: x-amz-crc32 {crc.decode()} does not match the body ({zlib.crc32(raw)})")
        try:
            data: dict[str, Any] = json.loads(raw) if raw else {}
        except ValueError as exc:
            if status >= 500:
                raise DynamoDBError("InternalFailure", raw[:200].decode("utf-8", "replace"), status, {}) from exc
            raise
        if status >= 300:
            code = str(data.get("__type", "")).rpartition("#")[2] or f"HTTP{status}"
            message = str(data.get("message") or data.get("Message") or "")
            raise DynamoDBError(code, message, status, data)
        return data

    # -- the call wrapper --------------------------------------------------------------------
    async def _call(self, operation: str, payload: dict[str, Any] | bytes) -> tuple[bool, dict[str, Any]]:
        """One DynamoDB request within the deadline: ``(True, answer)``, or ``(False, error body)`` for a
        failed condition (an answer, not a failure: it carries the old item). Raises StoreError."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        if start < self._open_until:
            self._observe(operation, 0.0, "circuit_open")
            raise StoreError(
                "DynamoDB circuit open after repeated failures", reason="circuit_open", operation=operation
            )
        if self._pending >= self._max_pending:
            self._observe(operation, 0.0, "overloaded")
            raise StoreError(
                f"{self._pending} DynamoDB calls already in progress (the limit): shed",
                reason="overloaded",
                operation=operation,
            )
        body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        deadline = start + self.timeout
        last: BaseException | None = None
        stalled = False
        self._pending += 1
        try:
            signer = self._signer_now()
            if signer is None:  # not warmed up (tests, or warm-up failed): resolve within the deadline
                try:
                    async with asyncio.timeout(self.timeout):
                        signer = self._signer = await asyncio.to_thread(self._freeze_credentials)
                except Exception as exc:
                    last = exc
            for attempt in range(self.max_attempts if signer is not None else 0):
                assert signer is not None
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                budget = remaining if attempt == self.max_attempts - 1 else min(remaining, self._attempt_timeout)
                attempt_end = loop.time() + budget
                self.calls += 1
                try:
                    async with asyncio.timeout(None) as scope:
                        timer = loop.call_at(attempt_end, _expire, scope)
                        try:
                            result = await self._send(operation, body, signer)
                        finally:
                            timer.cancel()
                except TimeoutError as exc:
                    last = exc
                    # The timer ran late: this process was too busy (or not scheduled) to run it on time,
                    # so the answer may well have been waiting. Our stall, not a store failure.
                    stalled = loop.time() - attempt_end > budget * STALL_FRACTION
                except DynamoDBError as exc:
                    if exc.code == "ConditionalCheckFailedException":
                        self._success(operation, loop.time() - start)
                        return False, exc.body
                    last = exc
                    if not _retryable(exc):
                        break
                except Exception as exc:
                    last = exc
                    if not _retryable(exc):
                        break
                else:
                    self._success(operation, loop.time() - start)
                    return True, result
        finally:
            self._pending -= 1
        error = last if last is not None else TimeoutError()
        if stalled and isinstance(error, TimeoutError):
            self._observe(operation, loop.time() - start, "stalled")
            raise StoreError(
                f"DynamoDB {operation}: this process stalled past the deadline (overloaded or starved of CPU)",
                reason="stalled",
                operation=operation,
            ) from error
        reason = _reason(error)
        self._failure(loop.time())
        self._observe(operation, loop.time() - start, reason)
        message = f"DynamoDB {operation} failed ({reason}): {error!r}"
        raise StoreError(message, reason=reason, operation=operation) from error

    def _success(self, operation: str, seconds: float) -> None:
        self._failures = 0
        self._reachable = True
        self._observe(operation, seconds, None)

    def _failure(self, now: float) -> None:
        self._reachable = False
        self._failures += 1
        if self._failures >= self._reset_after:
            self._failures = 0
            self._open_until = now + self._cooldown
            self._stale = True  # the next call opens a fresh HTTP session (and connection pool)
            log.warning("DynamoDB failing repeatedly; new connections, short-circuit for %.2fs", self._cooldown)

    def _observe(self, operation: str, seconds: float, reason: str | None) -> None:
        if self._observer is not None:
            self._observer(operation, seconds, reason)

    # -- operations --------------------------------------------------------------------------
    def _update_body(self, key: str, cost: int, most: int, expires_at: int) -> bytes:
        """The UpdateItem request: the conditional ADD, as JSON. Built from a template around the
        JSON-encoded key (json.dumps of the whole document measured ~25 µs a decision; a test checks
        that the two give the same document)."""
        return (
            f'{{"TableName":{self._table_json},"Key":{{"pk":{{"S":{json.dumps(key)}}}}},{UPDATE_FIXED},'
            f'"ExpressionAttributeValues":{{":cost":{{"N":"{cost}"}},":max":{{"N":"{most}"}},'
            f'":exp":{{"N":"{expires_at}"}}}}}}'
        ).encode()

    async def incr_if(self, key: str, cost: int, ceiling: int, expires_at: int) -> IncrResult:
        if cost > ceiling:
            # The attribute_not_exists branch would admit it on a fresh key: refuse without I/O.
            return IncrResult(False, None)
        applied, out = await self._call("UpdateItem", self._update_body(key, cost, ceiling - cost, expires_at))
        if not applied:
            count = (out.get("Item") or {}).get("count", {}).get("N")
            return IncrResult(False, int(count) if count is not None else None)
        return IncrResult(True, int(out["Attributes"]["count"]["N"]))

    async def get(self, key: str) -> int:
        now = int(self._clock())
        _, out = await self._call(
            "GetItem",
            {
                "TableName": self.table,
                "Key": {"pk": {"S": key}},
                "ConsistentRead": True,
                "ProjectionExpression": "#c, #e",
                "ExpressionAttributeNames": {"#c": "count", "#e": "expires_at"},
            },
        )
        item = out.get("Item")
        if not item:
            return 0
        # TTL deletion is lazy (up to days in AWS): treat an expired item as absent.
        if int(item.get("expires_at", {}).get("N", now + 1)) <= now:
            return 0
        return int(item.get("count", {}).get("N", 0))

    def _probe_payload(self) -> dict[str, Any]:
        return {"TableName": self.table, "Key": {"pk": {"S": HEALTH_KEY}}, "ProjectionExpression": "pk"}

    async def warm_up(self, timeout: float = 10.0) -> None:
        """Resolve credentials (IRSA: an STS AssumeRoleWithWebIdentity call) and open a connection,
        outside the per-call deadline: either can take longer than a decision's deadline."""
        try:
            async with asyncio.timeout(timeout):
                self._signer = await asyncio.to_thread(self._freeze_credentials)
                self._credentials_checked = time.monotonic()
                await self._send("GetItem", json.dumps(self._probe_payload()).encode(), self._signer)
        except Exception as exc:
            self._reachable = False
            log.warning("DynamoDB warm-up failed (decisions follow each rule's failure mode): %r", exc)
        else:
            self._reachable = True

    async def ping(self) -> None:
        if self._signer is None:  # warm-up failed to resolve credentials: try again, off the loop
            await self._refresh_credentials()
        await self._call("GetItem", self._probe_payload())

    async def aclose(self) -> None:
        task = self._credentials_task
        if task is not None:
            task.cancel()
        if self._http is not None:
            self._http.close()
            self._http = None


def create_table(table: str, *, client: Any | None = None, wait_seconds: float = 60.0) -> str:
    """Create the counters table (``pk`` string key, TTL on ``expires_at``); succeed if it exists.

    For tests and local runs only: in AWS the data layer creates the table. Returns a short status.
    Servers without TTL support (dynalite) get the table without TTL and a warning. Uses boto3 (not on
    the request path).
    """
    import boto3  # type: ignore[import-untyped,unused-ignore]
    from botocore.exceptions import ClientError  # type: ignore[import-untyped,unused-ignore]

    if client is None:
        session = boto3.session.Session()
        client = session.client("dynamodb", region_name=region_from_environment(session._session))
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
