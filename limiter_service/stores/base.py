"""The storage interface: atomic I/O on counters, no arithmetic about windows."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


class StoreError(Exception):
    """Any backend failure (timeout, connection, throttling, missing table), wrapped.

    ``reason`` is a short, low-cardinality label for metrics (``timeout``, ``connection``, ...).
    """

    def __init__(self, message: str, *, reason: str = "error", operation: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.operation = operation


@dataclass(frozen=True, slots=True)
class IncrResult:
    """The outcome of :meth:`Store.incr_if`.

    ``applied``: the cost was added. ``count``: the counter after the add when applied; when not
    applied, the current counter if the backend reported it, else ``None``.
    """

    applied: bool
    count: int | None


class Store(ABC):
    """Atomic counters keyed by a string, each with an expiry (epoch seconds)."""

    name: str = "store"

    @abstractmethod
    async def incr_if(self, key: str, cost: int, ceiling: int, expires_at: int) -> IncrResult:
        """Atomically add ``cost`` to the counter iff ``counter + cost <= ceiling``.

        A missing counter counts as 0; an add creates it with ``expires_at``. Callers never pass
        ``cost > ceiling`` (the DynamoDB condition's ``attribute_not_exists`` branch would admit it),
        but every store refuses it anyway without doing I/O.
        """

    @abstractmethod
    async def get(self, key: str) -> int:
        """The counter's current value (0 if missing or expired)."""

    async def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Resolve credentials and open a connection ahead of traffic; never raises."""

    async def ping(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`StoreError` if the backend is unreachable."""

    @property
    def reachable(self) -> bool:
        """Whether the last call (or probe) succeeded."""
        return True

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads."""
