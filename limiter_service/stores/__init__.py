"""Stores: atomic counter I/O behind one ABC, and the factory that picks one from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from limiter_service.stores.base import IncrResult, Store, StoreError
from limiter_service.stores.memory import MemoryStore

if TYPE_CHECKING:
    from limiter_service.clock import Clock
    from limiter_service.settings import Settings
    from limiter_service.stores.dynamodb import Observer

__all__ = ["IncrResult", "MemoryStore", "Store", "StoreError", "create_store"]


def create_store(settings: Settings, clock: Clock, observer: Observer | None = None) -> Store:
    """Build the store named by ``LIMITER_STORE`` (botocore and aiohttp are imported only for ``dynamodb``)."""
    if settings.store == "memory":
        return MemoryStore(clock=clock, max_keys=settings.memory_max_keys)
    from limiter_service.stores.dynamodb import DynamoDBStore

    return DynamoDBStore(
        settings.table,
        timeout_ms=settings.store_timeout_ms,
        max_attempts=settings.store_max_attempts,
        max_connections=settings.store_connections,
        max_pending=settings.store_max_pending,
        observer=observer,
        clock=clock,
    )
