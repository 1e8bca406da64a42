"""Typed dependencies for the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from limiter_service.limiter import Limiter
from limiter_service.metrics import Metrics
from limiter_service.settings import Settings


def get_limiter(request: Request) -> Limiter:
    limiter: Limiter = request.app.state.limiter
    return limiter


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


LimiterDep = Annotated[Limiter, Depends(get_limiter)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
