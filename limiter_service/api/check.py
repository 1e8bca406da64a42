"""POST /v1/check: the decision API for any caller."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, field_validator

from limiter_service.headers import ratelimit_headers
from limiter_service.limiter import MAX_KEY_BYTES, Limiter

router = APIRouter(tags=["decisions"])


def _json_integer(value: object) -> int:
    """A JSON integer: 3 or 3.0 (JSON Schema's "integer"), never "3", true or 3.5."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: Annotated[StrictStr, Field(min_length=1, max_length=64, description="rule name")]
    key: Annotated[
        StrictStr,
        Field(
            min_length=1, max_length=MAX_KEY_BYTES, description=f"the caller's key, 1 to {MAX_KEY_BYTES} UTF-8 bytes"
        ),
    ]
    cost: Annotated[
        int, Field(ge=1, description="units to take; at most the rule's limit"), BeforeValidator(_json_integer)
    ] = 1

    @field_validator("key")
    @classmethod
    def _key_bytes(cls, value: str) -> str:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError("key must be valid Unicode (no lone surrogates)") from None
        if size > MAX_KEY_BYTES:
            raise ValueError(f"key must be at most {MAX_KEY_BYTES} bytes in UTF-8, got {size}")
        return value

    @field_validator("rule")
    @classmethod
    def _rule_text(cls, value: str) -> str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("rule must be valid Unicode (no lone surrogates)") from None
        return value


class CheckResponse(BaseModel):
    allowed: bool
    limit: int
    remaining: int
    reset_after: float = Field(description="seconds until the window resets")
    retry_after: float | None = Field(description="seconds to wait when denied, else null")


class UnknownRuleResponse(BaseModel):
    error: str = Field(description="'unknown rule ...; known rules: ...'")
    known_rules: list[str] = Field(description="the names of the loaded rules")


class FieldError(BaseModel):
    field: str = Field(description="the offending field: rule, key, cost, or body")
    message: str
    type: str


class ValidationErrorResponse(BaseModel):
    error: str = Field(description="'invalid request: ' and the offending fields")
    detail: list[FieldError]


@router.post(
    "/v1/check",
    response_model=CheckResponse,
    responses={
        404: {"model": UnknownRuleResponse, "description": "unknown rule; lists the known ones"},
        422: {"model": ValidationErrorResponse, "description": "invalid body; names the field"},
    },
)
async def check(body: CheckRequest, request: Request) -> Response:
    """Take `cost` units from `key` under `rule` and say whether the request is allowed."""
    # The hot path reads the limiter off app.state instead of through LimiterDep: a sub-dependency
    # doubled FastAPI's dependency solving, which measured as most of this route's cost over a bare
    # endpoint (bench/asgi_overhead.py). The other routes use the typed dependencies.
    limiter: Limiter = request.app.state.limiter
    rule = limiter.rules.get(body.rule)
    if rule is None:
        known = sorted(limiter.rules)
        return Response(
            json.dumps({"error": f"unknown rule {body.rule!r}; known rules: {', '.join(known)}", "known_rules": known}),
            status_code=404,
            media_type="application/json",
        )
    if body.cost > rule.limit:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "cost"),
                    "msg": f"cost {body.cost} exceeds the limit {rule.limit} of rule {rule.name!r}",
                    "type": "value_error",
                }
            ]
        )
    result = await limiter.check(rule, body.key, body.cost)
    d = result.decision
    payload = {
        "allowed": result.enforced_allowed,
        "limit": d.limit,
        "remaining": d.remaining,
        "reset_after": round(d.reset_after, 3),
        "retry_after": None if result.enforced_allowed or d.retry_after is None else round(d.retry_after, 3),
    }
    return Response(json.dumps(payload), media_type="application/json", headers=ratelimit_headers([result]))
