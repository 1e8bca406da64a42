"""A small HTTP/1.1 keep-alive client for one endpoint: POST only, responses parsed by httptools.

Why not aiohttp's client: it measured ~110 µs of CPU per request here (a general client: cookies, URL
objects, redirects, multipart, tracing), more than half of a whole store call, and the limiter makes one
call per decision. This client does only what the store needs: pooled keep-alive connections opened
by asyncio (TLS through ``ssl`` with certificate and host name verification), the request written in
one go, the response parsed by httptools (the C parser uvicorn uses), in ~40 µs.

A connection whose request failed is closed. One whose request was cancelled (its deadline passed)
is set aside until the late answer arrives and is discarded, then reused: a late answer is never read
as the next request's, and a burst of timeouts does not cost a burst of new (TLS) connections exactly
when the process is busiest. One that gets no answer within ``IDLE_SECONDS`` is closed.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

import httptools

#: Idle connections older than this are closed rather than reused (servers drop idle connections
#: after a while), so a request rarely meets a connection the server has just closed.
IDLE_SECONDS = 30.0


class ResponseError(ConnectionError):
    """The connection broke or the server's bytes were not HTTP."""


class _Connection(asyncio.Protocol):
    def __init__(self, pool: HttpPool) -> None:
        self.pool = pool
        self.draining = 0.0  # when a cancelled request's answer started being awaited (0: not draining)
        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes | None, bytes]] | None = None
        self.crc: bytes | None = None
        self.chunks: list[bytes] = []
        self.closed = False
        self.keep_alive = True
        self.last_used = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ResponseError(f"malformed HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._draining.discard(self)
        self._fail(ResponseError(f"connection closed by the server: {exc!r}" if exc else "connection closed"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-amz-crc32":
            self.crc = value

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), self.crc, b"".join(self.chunks)))
        elif waiter is None:
            if self.draining and self.keep_alive:  # the late answer to a cancelled request: discard it
                self.draining = 0.0
                self.pool._drained(self)
            else:  # an answer nobody asked for: the connection can no longer be trusted
                self.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def request(self, data: bytes) -> tuple[int, bytes | None, bytes]:
        """Send one request; returns (status, x-amz-crc32 header or None, body)."""
        self.crc = None
        self.chunks = []
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HttpPool:
    """Keep-alive connections to one ``http(s)://host[:port]`` endpoint.

    There is no cap on connections in use: the caller bounds the requests in progress (the store's
    ``max_pending``); at most ``max_idle`` connections are kept between requests.
    """

    def __init__(self, url: str, host_header: str, ssl_context: ssl.SSLContext | None, max_idle: int) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL, got {url!r}")
        self.hostname = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl_context if parts.scheme == "https" else None
        self.path = parts.path or "/"
        self.host_header = host_header
        self.max_idle = max_idle
        self._idle: list[_Connection] = []
        self._draining: set[_Connection] = set()
        self.opened = 0  # connections opened so far (tests check reuse)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: _Connection(self),
            self.hostname,
            self.port,
            ssl=self.ssl,
            server_hostname=self.hostname if self.ssl else None,
        )
        self.opened += 1
        return conn

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.last_used < IDLE_SECONDS:
                return conn
            conn.close()
        return None

    async def post(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes | None, bytes]:
        """POST ``body``; returns (status, x-amz-crc32 or None, response body). Raises OSError or
        ResponseError (a ConnectionError) on a broken connection; cancellation closes the connection."""
        head = [f"POST {self.path} HTTP/1.1\r\nHost: {self.host_header}\r\nContent-Length: {len(body)}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        head.append("\r\n")
        data = "".join(head).encode("latin-1") + body
        conn = self._take_idle() or await self._connect()
        reusable = False
        try:
            result = await conn.request(data)
            reusable = conn.keep_alive and not conn.closed
            return result
        except asyncio.CancelledError:
            if not conn.closed and len(self._draining) < self.max_idle:
                conn.waiter = None  # the answer, when it comes, is discarded (on_message_complete)
                conn.draining = time.monotonic()
                self._draining.add(conn)
            else:
                conn.close()
            raise
        except BaseException:
            conn.close()
            raise
        finally:
            if reusable:
                self._release(conn)
            elif not conn.draining:
                conn.close()

    def _release(self, conn: _Connection) -> None:
        if len(self._idle) < self.max_idle and not conn.closed:
            conn.last_used = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()

    def _drained(self, conn: _Connection) -> None:
        self._draining.discard(conn)
        self._release(conn)
        # Connections whose late answer never came are closed rather than kept forever.
        now = time.monotonic()
        for stuck in [c for c in self._draining if now - c.draining > IDLE_SECONDS]:
            self._draining.discard(stuck)
            stuck.close()

    def close(self) -> None:
        for conn in [*self._idle, *self._draining]:
            conn.close()
        self._idle.clear()
        self._draining.clear()
