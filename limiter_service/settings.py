"""Settings from ``LIMITER_*`` environment variables (pydantic-settings), behind a cached dependency.

The DynamoDB endpoint, region and credentials are not settings here: botocore reads its standard
configuration (``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_REGION``, IRSA web identity, ...), so one image
runs against AWS and against a local server.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from limiter_service.stores.memory import DEFAULT_MAX_KEYS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIMITER_", extra="ignore")

    rules_file: Path | None = Field(default=None, description="YAML rules file; unset = the default rule set")
    store: Literal["memory", "dynamodb"] = Field(default="memory", description="counter store")
    table: str = Field(default="limiter-counters", min_length=3, max_length=255, description="DynamoDB table")
    store_timeout_ms: int = Field(default=50, ge=1, le=10_000, description="deadline of a store call, retries included")
    store_max_attempts: int = Field(default=2, ge=1, le=5, description="attempts per store call within the deadline")
    store_connections: int = Field(
        default=128,
        ge=1,
        le=10_000,
        description="idle keep-alive connections to DynamoDB kept between calls (a burst up to "
        "store_max_pending then reuses connections instead of opening and closing them)",
    )
    store_max_pending: int = Field(
        default=128,
        ge=1,
        le=10_000,
        description="DynamoDB calls in progress at once per process; beyond it a decision is shed at once "
        "(answered by its rule's failure mode, counted as shed) instead of waiting past its deadline",
    )
    local_cache_size: int = Field(default=100_000, ge=100, description="entries in each bounded local cache")
    memory_max_keys: int = Field(default=DEFAULT_MAX_KEYS, ge=100, description="counters kept by the memory store")
    health_interval_s: float = Field(default=5.0, gt=0, le=300, description="store reachability probe period")
    docs: bool = Field(
        default=False,
        description="serve /docs and /redoc (their pages load Swagger UI and ReDoc from a CDN, so they are off by "
        "default; /openapi.json is always served)",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info")
    strip_path_prefixes: tuple[str, ...] = Field(
        default=(),
        description="path segments removed from the front of an original path before rules match, as a JSON "
        'list (e.g. ["/apigw"]: the stage segment API Gateway private integrations put before the path)',
    )

    @field_validator("strip_path_prefixes")
    @classmethod
    def _prefixes_are_segments(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in value:
            if not prefix.startswith("/") or prefix.endswith("/") or len(prefix) < 2:
                raise ValueError(f"{prefix!r} must be a path segment like '/apigw'")
        return value


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once (override this dependency in tests)."""
    return Settings()
