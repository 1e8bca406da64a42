"""Prometheus metrics, in a registry per app instance (so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.decisions = Counter(
            "limiter_decisions",
            "Decisions by rule and outcome (allowed, denied, shadow_denied, error_allowed, error_denied).",
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
        self.store_up = Gauge("limiter_store_up", "1 if the last store call or probe succeeded.", registry=r)
        self.rules_loaded = Gauge("limiter_rules_loaded", "Number of rules loaded.", registry=r)
        self.store_up.set(1)

    def observe_store(self, operation: str, seconds: float, reason: str | None) -> None:
        """Observer hook for stores: latency of every call, errors by reason."""
        if reason is None:
            self.store_latency.labels(operation).observe(seconds)
            self.store_up.set(1)
        else:
            if reason != "circuit_open":
                self.store_latency.labels(operation).observe(seconds)
            self.store_errors.labels(operation, reason).inc()
            self.store_up.set(0)
