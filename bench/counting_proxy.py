"""A counting HTTP proxy for a DynamoDB-API server: counts requests by X-Amz-Target, outside the service.

    python -m uvicorn bench.counting_proxy:app --port P   (env UPSTREAM=http://127.0.0.1:Q)

GET /__counts returns {"UpdateItem": n, "GetItem": m, ...}; DELETE /__counts resets them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:8000")
counts: Counter[str] = Counter()
client: httpx.AsyncClient | None = None


async def forward(request: Request) -> Response:
    target = request.headers.get("x-amz-target", "none").rsplit(".", 1)[-1]
    counts[target] += 1
    body = await request.body()
    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
    assert client is not None
    upstream = await client.post(UPSTREAM + "/", content=body, headers=headers)
    drop = ("content-length", "transfer-encoding", "connection", "content-encoding")
    out = {k: v for k, v in upstream.headers.items() if k.lower() not in drop}
    return Response(upstream.content, status_code=upstream.status_code, headers=out)


async def get_counts(request: Request) -> Response:
    if request.method == "DELETE":
        counts.clear()
    return JSONResponse(dict(counts))


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global client
    client = httpx.AsyncClient(timeout=30)
    yield
    await client.aclose()


app = Starlette(
    routes=[Route("/__counts", get_counts, methods=["GET", "DELETE"]), Route("/", forward, methods=["POST"])],
    lifespan=lifespan,
)
