"""Health, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from limiter_service.api.deps import LimiterDep, MetricsDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "this replica cannot decide"}})
async def readyz(limiter: LimiterDep, metrics: MetricsDep, response: Response) -> dict[str, object]:
    """Readiness: reports the store's reachability, but fails only when this replica cannot decide.

    "Ready" is not "store reachable": a store outage alone must not make every replica unready at
    once (that would turn fail-open rules into a total outage). So the
    body and ``limiter_store_up`` report reachability, and the status is 503 only when no rules are
    loaded, or when the store is unreachable and every rule fails closed.
    """
    reachable = limiter.store.reachable
    metrics.set_store_up(1 if reachable else 0)
    rules_loaded = len(limiter.rules)
    ready = rules_loaded > 0 and (reachable or not limiter.all_fail_closed)
    if not ready:
        response.status_code = 503
    return {
        "ready": ready,
        "rules_loaded": rules_loaded,
        "store": {"backend": limiter.store.name, "reachable": reachable},
    }


@router.get("/metrics", response_class=Response)
async def metrics_endpoint(metrics: MetricsDep) -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
