"""Typed dependencies for the routers.

Async on purpose: FastAPI runs a sync dependency in a worker thread, a hop that cost more than the
whole decision in the benchmark.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from limiter_service.limiter import Limiter
from limiter_service.metrics import Metrics
from limiter_service.settings import Settings


async def get_limiter(request: Request) -> Limiter:
    limiter: Limiter = request.app.state.limiter
    return limiter


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


LimiterDep = Annotated[Limiter, Depends(get_limiter)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
