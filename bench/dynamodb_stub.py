"""A DynamoDB-API stub that answers at once, so that a benchmark counts only the limiter's own cost.

Speaks what the limiter's store sends (JSON 1.0 over HTTP/1.1 keep-alive, ``X-Amz-Target``):
``UpdateItem`` with the store's conditional ADD (``count <= :max``, ``ReturnValuesOnConditionCheckFailure``
honoured), ``GetItem``; every answer carries ``x-amz-crc32`` as DynamoDB's does. Counters live in a
dict; signatures are not checked. Faults on demand, for tests: every Nth answer a throttling error,
a 500, a corrupted CRC, or late.

    python -m bench.dynamodb_stub --port P [--throttle-every N [--throttle-code C]] [--error-every N]
                                           [--corrupt-every N]
                                           [--slow-every N --slow-ms MS] [--tls-cert CERT --tls-key KEY]

Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import zlib
from typing import Any

PREFIX = "com.amazonaws.dynamodb.v20120810#"


class Faults:
    def __init__(
        self,
        throttle_every: int = 0,
        error_every: int = 0,
        corrupt_every: int = 0,
        slow_every: int = 0,
        slow_ms: int = 0,
        throttle_code: str = "ThrottlingException",
    ) -> None:
        self.throttle_every = throttle_every
        self.throttle_code = throttle_code
        self.error_every = error_every
        self.corrupt_every = corrupt_every
        self.slow_every = slow_every
        self.slow_ms = slow_ms
        self.requests = 0


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"__type": PREFIX + code, "message": message, **extra}


def answer(target: str, body: dict[str, Any], counters: dict[str, int]) -> tuple[int, dict[str, Any]]:
    operation = target.rpartition(".")[2]
    key = body.get("Key", {}).get("pk", {}).get("S", "")
    if operation == "UpdateItem":
        values = body["ExpressionAttributeValues"]
        cost, ceiling = int(values[":cost"]["N"]), int(values[":max"]["N"])
        current = counters.get(key)
        if current is not None and current > ceiling:
            item = {"pk": {"S": key}, "count": {"N": str(current)}}
            extra = {"Item": item} if body.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else {}
            return 400, _error("ConditionalCheckFailedException", "The conditional request failed", **extra)
        counters[key] = (current or 0) + cost
        return 200, {"Attributes": {"count": {"N": str(counters[key])}}}
    if operation == "GetItem":
        if key in counters:
            return 200, {"Item": {"pk": {"S": key}, "count": {"N": str(counters[key])}}}
        return 200, {}
    return 400, _error("UnknownOperationException", f"the stub does not implement {operation}")


class StubProtocol(asyncio.Protocol):
    def __init__(self, counters: dict[str, int], faults: Faults) -> None:
        self.counters = counters
        self.faults = faults
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # asyncio's or uvloop's TCP transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.respond(headers.get("x-amz-target", ""), body)

    def respond(self, target: str, raw: bytes) -> None:
        f = self.faults
        f.requests += 1
        if f.throttle_every and f.requests % f.throttle_every == 0:
            status, payload = 400, _error(f.throttle_code, "Rate of requests exceeds the allowed throughput")
        elif f.error_every and f.requests % f.error_every == 0:
            status, payload = 500, _error("InternalServerError", "Internal server error")
        else:
            status, payload = answer(target, json.loads(raw), self.counters)
        out = json.dumps(payload).encode()
        crc = zlib.crc32(out)
        if f.corrupt_every and f.requests % f.corrupt_every == 0:
            crc ^= 1
        reason = {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}[status]
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-amz-json-1.0\r\n"
            f"Content-Length: {len(out)}\r\nx-amz-crc32: {crc}\r\nx-amzn-RequestId: stub\r\n\r\n"
        )
        if f.slow_every and f.requests % f.slow_every == 0:
            asyncio.get_running_loop().call_later(f.slow_ms / 1000, self.transport.write, head.encode() + out)
        else:
            self.transport.write(head.encode() + out)


async def serve(port: int, faults: Faults, tls: ssl.SSLContext | None = None) -> None:
    counters: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: StubProtocol(counters, faults), "127.0.0.1", port, ssl=tls)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--throttle-every", type=int, default=0, help="every Nth answer is a ThrottlingException")
    parser.add_argument(
        "--throttle-code", default="ThrottlingException", help="the error type of those answers (HTTP 400)"
    )
    parser.add_argument("--error-every", type=int, default=0, help="every Nth answer is a 500 InternalServerError")
    parser.add_argument("--corrupt-every", type=int, default=0, help="every Nth answer has a wrong x-amz-crc32")
    parser.add_argument("--slow-every", type=int, default=0, help="every Nth answer comes --slow-ms late")
    parser.add_argument("--slow-ms", type=int, default=0)
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM) ...")
    parser.add_argument("--tls-key", help="... and this key (PEM)")
    args = parser.parse_args()
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the stock loop is fast enough for the tests
        pass
    asyncio.run(
        serve(
            args.port,
            Faults(
                args.throttle_every,
                args.error_every,
                args.corrupt_every,
                args.slow_every,
                args.slow_ms,
                args.throttle_code,
            ),
            tls,
        )
    )


if __name__ == "__main__":
    main()
