"""Per-decision CPU cost of POST /v1/check in process (raw ASGI calls, no HTTP server, no sockets):
the limiter (memory store) against the bare endpoint and the slowapi endpoint of bench/apps.py.

A steadier figure than the HTTP benchmark on a shared machine: batches of the three apps alternate
(rotating the order), and each app's median batch is kept.

    python bench/asgi_overhead.py [--batches 30] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


async def call(app: ASGIApp, key: bytes) -> None:
    body = b'{"rule":"bench","key":"' + key + b'","cost":1}'
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/check", "raw_path": b"/v1/check", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"x-key", key)],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080), "state": {},
    }  # fmt: skip
    await app(scope, receive, send)
    assert status == [200], status


async def main_async(batches: int, batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text('rules:\n  - {name: bench, key: ["header:x-key"], limit: 1000000000, window_seconds: 60}\n')
        os.environ["LIMITER_RULES_FILE"] = str(rules)
        os.environ["LIMITER_STORE"] = "memory"
        from bench.apps import bare, slow
        from limiter_service.app import create_app

        limiter = create_app()
        apps: dict[str, Any] = {"limiter": limiter, "bare": bare, "slowapi": slow}
        keys = [f"user-{i}".encode() for i in range(1000)]
        timings: dict[str, list[float]] = {name: [] for name in apps}
        async with limiter.router.lifespan_context(limiter):
            for app in apps.values():  # warm-up
                for i in range(batch):
                    await call(app, keys[i % 1000])
            names = list(apps)
            for b in range(batches):
                for name in names[b % 3 :] + names[: b % 3]:
                    app = apps[name]
                    start = time.perf_counter()
                    for i in range(batch):
                        await call(app, keys[i % 1000])
                    timings[name].append((time.perf_counter() - start) / batch * 1e6)
    med = {name: statistics.median(t) for name, t in timings.items()}
    print(f"in-process ASGI, median of {batches} batches of {batch} decisions")
    for name, us in med.items():
        print(f"{name:8s} {us:7.1f} us/decision  {1e6 / us:8.0f} decisions/s on one core")
    print(f"limiter / bare    = {med['bare'] / med['limiter']:.2f}x throughput  (goal >= 0.8)")
    print(f"limiter / slowapi = {med['slowapi'] / med['limiter']:.2f}x throughput  (goal >= 1.0)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main_async(args.batches, args.batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
