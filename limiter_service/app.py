"""The FastAPI application: lifespan (store, limiter, probe), routers, error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from limiter_service import __version__
from limiter_service.api import authz, check, health
from limiter_service.clock import Clock, system_clock
from limiter_service.limiter import Limiter
from limiter_service.metrics import Metrics
from limiter_service.rules import Rule, default_rules, load_rules_file
from limiter_service.settings import Settings, get_settings
from limiter_service.stores import Store, StoreError, create_store

log = logging.getLogger("limiter_service")


def load_rules(settings: Settings) -> list[Rule]:
    """The configured rules file, or the default rule set; raises RuleError naming rule and field."""
    if settings.rules_file is None:
        return default_rules()
    return load_rules_file(settings.rules_file)


async def _probe(store: Store, metrics: Metrics, interval: float) -> None:
    """Warm the store up, then keep its reachability fresh while no traffic flows."""
    await store.warm_up()
    metrics.set_store_up(1 if store.reachable else 0)
    while True:
        await asyncio.sleep(interval)
        try:
            await store.ping()
        except StoreError as exc:
            log.warning("store probe failed: %s", exc)
        except Exception:  # never let the probe die (a bug in one ping is logged, the next runs)
            log.exception("store probe crashed")
        metrics.set_store_up(1 if store.reachable else 0)


def _field(err: dict[str, object]) -> str:
    """The field a validation error is about: ``cost``, ``key``... or ``body`` for the whole body."""
    loc = err.get("loc") or ()
    if err.get("type") == "json_invalid" or not isinstance(loc, (list, tuple)):
        return "body"
    parts = [str(p) for p in loc[1:]] if loc and loc[0] == "body" else [str(p) for p in loc]
    return ".".join(parts) or "body"


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = system_clock,
    store_factory: Callable[[Settings, Clock, Metrics], Store] | None = None,
    rules: Sequence[Rule] | None = None,
) -> FastAPI:
    """Build the app. Settings come from ``get_settings`` (or its dependency override) at startup."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or app.dependency_overrides.get(get_settings, get_settings)()
        metrics = Metrics()
        loaded = list(rules) if rules is not None else load_rules(s)
        if store_factory is not None:
            store = store_factory(s, clock, metrics)
        else:
            store = create_store(s, clock, observer=metrics.observe_store)
        app.state.settings = s
        app.state.metrics = metrics
        app.state.limiter = Limiter(loaded, store, clock, metrics, s.local_cache_size)
        probe = asyncio.create_task(_probe(store, metrics, s.health_interval_s))
        log.info("limiter ready: %d rules, store %s", len(loaded), store.name)
        try:
            yield
        finally:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
            await store.aclose()

    # /docs and /redoc fetch their JavaScript from a CDN: off unless LIMITER_DOCS=true (a pod has no
    # business reaching a CDN, and offline they would render blank). /openapi.json needs nothing.
    docs = (settings or get_settings()).docs
    app = FastAPI(
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        title="Rate limiter",
        version=__version__,
        description="Rate-limit decisions (POST /v1/check) and the Envoy ext_authz endpoint (/authz/...).",
        lifespan=lifespan,
    )
    # Routers keep the modules apart; their routes are added flat (no prefixes or router-level
    # dependencies to apply), because an included router costs another dispatch layer per request in
    # this FastAPI version, measurable next to a decision.
    app.router.routes.extend(check.router.routes)
    app.router.routes.extend(health.router.routes)
    app.router.routes.extend(authz.routes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(err), "message": str(err.get("msg", "invalid")), "type": str(err.get("type", "invalid"))}
            for err in exc.errors()
        ]
        fields = ", ".join(e["field"] for e in errors)
        return JSONResponse(status_code=422, content={"error": f"invalid request: {fields}", "detail": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (e.g. not UTF-8): a malformed body
            detail = [{"field": "body", "message": str(exc.detail), "type": "body_unparsable"}]
            return JSONResponse(status_code=422, content={"error": "invalid request: body", "detail": detail})
        return JSONResponse(status_code=exc.status_code, content={"error": exc.detail}, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - last resort
        log.exception("unexpected error")
        return JSONResponse(status_code=500, content={"error": "internal error"})

    return app
