"""Settings from ``LIMITER_*`` environment variables (pydantic-settings), behind a cached dependency.

The DynamoDB endpoint, region and credentials are not settings here: boto3 reads its standard
configuration (``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_REGION``, IRSA web identity, ...), so one image
runs against AWS and against a local server.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIMITER_", extra="ignore")

    rules_file: Path | None = Field(default=None, description="YAML rules file; unset = the default rule set")
    store: Literal["memory", "dynamodb"] = Field(default="memory", description="counter store")
    table: str = Field(default="limiter-counters", min_length=3, max_length=255, description="DynamoDB table")
    store_timeout_ms: int = Field(default=50, ge=1, le=10_000, description="deadline of a store call, retries included")
    store_max_attempts: int = Field(default=2, ge=1, le=5, description="attempts per store call within the deadline")
    store_threads: int = Field(default=32, ge=1, le=512, description="threads (and connections) for DynamoDB calls")
    local_cache_size: int = Field(default=100_000, ge=100, description="entries in each bounded local cache")
    memory_max_keys: int = Field(default=1_000_000, ge=100, description="counters kept by the memory store")
    health_interval_s: float = Field(default=5.0, gt=0, le=300, description="store reachability probe period")
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info")


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once (override this dependency in tests)."""
    return Settings()
