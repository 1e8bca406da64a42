"""Prometheus metrics, in a registry per app instance (so tests can build many apps)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.decisions = Counter(
            "limiter_decisions",
            "Decisions by rule and outcome (allowed, denied, shadow_denied, error_allowed, error_denied, "
            "shed_allowed, shed_denied).",
            ["rule", "outcome"],
            registry=r,
        )
        self.store_latency = Histogram(
            "limiter_store_latency_seconds",
            "Latency of store calls, retries included.",
            ["operation"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.store_errors = Counter(
            "limiter_store_errors",
            "Failed store calls by operation and reason.",
            ["operation", "reason"],
            registry=r,
        )
        self.local_hits = Counter(
            "limiter_local_cache_hits",
            "Decisions answered without a store call: over_limit (cached denial) or lease (local tokens).",
            ["rule", "kind"],
            registry=r,
        )
        self.requests_without_key = Counter(
            "limiter_requests_without_key",
            "Requests to /authz that a rule matches but that lack its key parts (listed in 'missing'), so that "
            "rule does not limit them; e.g. no client address because the mesh's trusted-proxy count is wrong.",
            ["rule", "missing"],
            registry=r,
        )
        self.store_up = Gauge("limiter_store_up", "1 if the last store call or probe succeeded.", registry=r)
        self.rules_loaded = Gauge("limiter_rules_loaded", "Number of rules loaded.", registry=r)
        self.store_up.set(1)
        self._up = 1
        self._latency_children: dict[str, Any] = {}

    def _latency(self, operation: str) -> Any:
        """The labelled histogram, cached: ``labels()`` costs a lock and a validation per call."""
        child = self._latency_children.get(operation)
        if child is None:
            child = self._latency_children[operation] = self.store_latency.labels(operation)
        return child

    def set_store_up(self, up: int) -> None:
        """Set limiter_store_up (only on a change: a gauge set takes a lock)."""
        if up != self._up:
            self._up = up
            self.store_up.set(up)

    def observe_store(self, operation: str, seconds: float, reason: str | None) -> None:
        """Observer hook for stores: latency of every call, errors by reason."""
        if reason is None:
            self._latency(operation).observe(seconds)
            self.set_store_up(1)
        elif reason in ("overloaded", "stalled"):  # this process's overload: says nothing about the store
            self.store_errors.labels(operation, reason).inc()
        else:
            if reason != "circuit_open":
                self._latency(operation).observe(seconds)
            self.store_errors.labels(operation, reason).inc()
            self.set_store_up(0)
