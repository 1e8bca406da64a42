"""Comparison apps for bench/limiter_throughput.py: a bare endpoint and the same one behind slowapi.

Both take the same body as the limiter's POST /v1/check and return the same JSON, so the three
servers differ only in what decides the answer.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from pydantic import BaseModel
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded


class Body(BaseModel):
    rule: str
    key: str
    cost: int = 1


ANSWER = {"allowed": True, "limit": 1_000_000_000, "remaining": 999_999_999, "reset_after": 30.0, "retry_after": None}

bare = FastAPI()


@bare.post("/v1/check")
async def bare_check(body: Body):  # type: ignore[no-untyped-def]  # no response model: plain JSON
    """The same JSON, no limiting at all."""
    return ANSWER


def _key(request: Request) -> str:
    return request.headers.get("x-key", "")


limiter = Limiter(key_func=_key, storage_uri="memory://")
slow = FastAPI()
slow.state.limiter = limiter
slow.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]


@slow.post("/v1/check")
@limiter.limit("1000000000/minute")
async def slow_check(request: Request, body: Body):  # type: ignore[no-untyped-def]
    """The same JSON behind slowapi's in-memory fixed window, keyed like the limiter's body key."""
    return ANSWER
