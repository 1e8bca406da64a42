"""/authz/{path}: the Envoy ext_authz HTTP endpoint (Istio ``envoyExtAuthzHttp``, ``pathPrefix: /authz``).

Envoy sends the original method, ``/authz`` + the original path and query, the Host (authority) and
the headers the provider lists (``x-envoy-external-address``, ``x-forwarded-for``, ``x-api-key``...).
200 allows; 429 denies (Envoy passes status, body and the listed headers to the client). Never 5xx for
a decision: a 5xx counts as an ext_authz error and triggers Envoy's own failOpen/statusOnError.

A plain Starlette route (any method, including extension methods), so it is not in the OpenAPI schema.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from limiter_service.headers import ratelimit_headers, retry_after
from limiter_service.limiter import Limiter

PREFIX = "/authz"


async def authz(request: Request) -> Response:
    """Decide an original request forwarded by Envoy."""
    limiter: Limiter = request.app.state.limiter
    raw_path = request.scope.get("raw_path") or request.url.path.encode("latin-1", "replace")
    path = raw_path.decode("latin-1")[len(PREFIX) :] or "/"
    if not path.startswith("/"):
        path = "/" + path
    path = strip_prefix(path.split("?", 1)[0], request.app.state.settings.strip_path_prefixes)
    headers = request.headers
    host = headers.get("host", "")
    client_ip = headers.get("x-envoy-external-address")
    decisions = await limiter.check_request(request.method, path, host, headers, client_ip)
    out = ratelimit_headers(decisions)
    denied = [d for d in decisions if not d.enforced_allowed]
    if not denied:
        return Response(status_code=200, headers=out)
    wait = max((d.decision.retry_after or d.decision.reset_after) for d in denied)
    out["Retry-After"] = retry_after(wait)
    body = {
        "error": "rate_limited",
        "rules": [d.rule.name for d in denied],
        "retry_after": int(out["Retry-After"]),
    }
    return Response(json.dumps(body), status_code=429, media_type="application/json", headers=out)


def strip_prefix(path: str, prefixes: tuple[str, ...]) -> str:
    """Remove the first configured prefix that stands as a whole leading segment: /apigw/x -> /x, never /apigwx."""
    for prefix in prefixes:
        if path == prefix:
            return "/"
        if path.startswith(prefix + "/"):
            return path[len(prefix) :]
    return path


class _AnyMethod:
    """ASGI wrapper: Starlette gives a plain function route ``methods=["GET"]``; an app takes all."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await authz(Request(scope, receive))
        await response(scope, receive, send)


routes: list[BaseRoute] = [
    Route(PREFIX, _AnyMethod(), methods=None, include_in_schema=False),
    Route(PREFIX + "/{path:path}", _AnyMethod(), methods=None, include_in_schema=False),
]
