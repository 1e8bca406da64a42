"""HTTP API in-process: /v1/check and every error case, /authz allow and deny, health, readiness, metrics."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from limiter_service.app import create_app
from limiter_service.clock import FakeClock
from limiter_service.metrics import Metrics
from limiter_service.settings import Settings, get_settings
from limiter_service.stores.base import IncrResult, Store, StoreError
from tests.limiter_service.limiter_testutil import TestClient

RULES = """
rules:
  - name: per-key
    match: {hosts: ["api.example.com"], path_prefix: "/api/", methods: ["GET", "POST"]}
    key: ["header:x-api-key"]
    limit: 2
    window_seconds: 60
  - name: per-ip
    key: [client_ip]
    limit: 3
    window_seconds: 60
    algorithm: sliding_window
  - name: shadowed
    match: {path_prefix: "/shadow/"}
    key: [client_ip]
    limit: 1
    window_seconds: 60
    shadow: true
"""
# Struct. field lists of draft-ietf-httpapi-ratelimit-headers-11.
POLICY_ITEM = r'"[A-Za-z0-9._-]+";q=\d+;w=\d+'
LIMIT_ITEM = r'"[A-Za-z0-9._-]+";r=\d+;t=\d+'


def sf_list(item: str) -> re.Pattern[str]:
    return re.compile(rf"^{item}(, {item})*$")


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0 + 15)  # 15 s into a 60 s window


def build(tmp_path: Path, rules: str = RULES, strip: tuple[str, ...] = (), **kwargs: Any) -> FastAPI:
    path = tmp_path / "rules.yaml"
    path.write_text(rules)
    app = create_app(**kwargs)
    app.dependency_overrides[get_settings] = lambda: Settings(
        rules_file=path, store="memory", strip_path_prefixes=strip
    )
    return app


@pytest.fixture()
def client(tmp_path: Path, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(build(tmp_path, clock=clock), raise_server_exceptions=False) as c:
        yield c


def check(client: TestClient, **body: Any) -> Any:
    return client.post("/v1/check", json=body)


def test_check_answers_the_decision_with_ratelimit_headers(client: TestClient) -> None:
    r = check(client, rule="per-key", key="alice")
    assert r.status_code == 200
    assert r.json() == {"allowed": True, "limit": 2, "remaining": 1, "reset_after": 45.0, "retry_after": None}
    assert r.headers["RateLimit-Policy"] == '"per-key";q=2;w=60'
    assert r.headers["RateLimit"] == '"per-key";r=1;t=45'
    assert check(client, rule="per-key", key="alice", cost=1).json()["remaining"] == 0
    denied = check(client, rule="per-key", key="alice")
    assert denied.status_code == 200
    assert denied.json() == {"allowed": False, "limit": 2, "remaining": 0, "reset_after": 45.0, "retry_after": 45.0}
    assert check(client, rule="per-key", key="bob").json()["allowed"]


def test_unknown_rule_is_404_listing_the_known_ones(client: TestClient) -> None:
    r = check(client, rule="nope", key="k")
    assert r.status_code == 404
    assert r.json() == {
        "error": "unknown rule 'nope'; known rules: per-ip, per-key, shadowed",
        "known_rules": ["per-ip", "per-key", "shadowed"],
    }


def without_key(client: TestClient) -> dict[tuple[str, str], float]:
    """limiter_requests_without_key_total by (rule, missing), from /metrics."""
    found = re.findall(
        r'^limiter_requests_without_key_total\{missing="([^"]*)",rule="([^"]*)"\} ([0-9.]+)$',
        client.get("/metrics").text,
        re.MULTILINE,
    )
    return {(rule, missing): float(value) for missing, rule, value in found}


def test_requests_a_rule_matches_but_cannot_key_are_counted_and_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert without_key(client) == {}
    caplog.set_level("DEBUG", logger="limiter_service.limiter")
    # The mesh sent no client address (e.g. a wrong numTrustedProxies) and no API key: both rules match
    # GET api.example.com/api/..., neither can key it, so neither limits it.
    r = client.get("/authz/api/items", headers={"host": "api.example.com"})
    assert r.status_code == 200
    assert without_key(client) == {("per-key", "header:x-api-key"): 1.0, ("per-ip", "client_ip"): 1.0}
    assert "rule per-ip matches the request but it carries no client_ip" in caplog.text
    # With the address: per-ip applies; the counter for per-key alone grows.
    authz(client)
    assert without_key(client) == {("per-key", "header:x-api-key"): 2.0, ("per-ip", "client_ip"): 1.0}
    # A rule that does not match the request is not counted (DELETE is not in per-key's methods).
    client.request(
        "DELETE", "/authz/api/items", headers={"host": "api.example.com", "x-envoy-external-address": "192.0.2.9"}
    )
    assert without_key(client) == {("per-key", "header:x-api-key"): 2.0, ("per-ip", "client_ip"): 1.0}


def test_docs_are_off_unless_enabled_and_openapi_is_always_served(tmp_path: Path) -> None:
    with TestClient(build(tmp_path)) as off:
        assert off.get("/docs").status_code == 404 and off.get("/redoc").status_code == 404
        assert off.get("/openapi.json").json()["info"]["title"] == "Rate limiter"
    path = tmp_path / "on.yaml"
    path.write_text(RULES)
    with TestClient(create_app(Settings(rules_file=path, docs=True))) as on:
        assert on.get("/docs").status_code == 200 and "swagger" in on.get("/docs").text.lower()


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"{", "body"),
        (b"[]", "body"),
        (b'"x"', "body"),
        (b'{"key": "k"}', "rule"),
        (b'{"rule": "per-key"}', "key"),
        (b'{"rule": "per-key", "key": ""}', "key"),
        (b'{"rule": "per-key", "key": "' + b"a" * 513 + b'"}', "key"),
        ('{"rule": "per-key", "key": "' + "\u20ac" * 171 + '"}', "key"),  # 513 bytes in UTF-8
        (b'{"rule": "per-key", "key": "\\ud800"}', "key"),  # a lone surrogate cannot be stored
        (b'{"rule": "per-key", "key": 5}', "key"),
        (b'{"rule": "per-key", "key": "k", "cost": 0}', "cost"),
        (b'{"rule": "per-key", "key": "k", "cost": -1}', "cost"),
        (b'{"rule": "per-key", "key": "k", "cost": 3}', "cost"),  # above the rule's limit of 2
        (b'{"rule": "per-key", "key": "k", "cost": 100000000000000000000000000000}', "cost"),
        (b'{"rule": "per-key", "key": "k", "cost": "1"}', "cost"),
        (b'{"rule": "per-key", "key": "k", "cost": 1.5}', "cost"),
        (b'{"rule": "per-key", "key": "k", "cost": null}', "cost"),
        (b'{"rule": "", "key": "k"}', "rule"),
        (b'{"rule": "per-key", "key": "k", "extra": 1}', "extra"),
    ],
)
def test_bad_input_is_422_naming_the_field(client: TestClient, content: bytes | str, field: str) -> None:
    r = client.post("/v1/check", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    body = r.json()
    assert field in [d["field"] for d in body["detail"]]
    assert field in body["error"]


def test_key_of_exactly_512_bytes_is_accepted(client: TestClient) -> None:
    assert check(client, rule="per-ip", key="\u20ac" * 170 + "ab").status_code == 200


def test_wrong_method_and_content_type_are_client_errors(client: TestClient) -> None:
    assert client.get("/v1/check").status_code == 405
    r = client.post("/v1/check", content=b"rule=x", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422


# -- ext_authz ---------------------------------------------------------------------------------
def authz(client: TestClient, method: str = "GET", path: str = "/api/items?x=1", **headers: str) -> Any:
    base = {"host": "api.example.com", "x-envoy-external-address": "203.0.113.7"}
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    return client.request(method, "/authz" + path, headers=base)


def test_authz_allows_with_headers_then_denies_with_429(client: TestClient) -> None:
    first = authz(client, x_api_key="k1")
    assert first.status_code == 200
    assert sf_list(POLICY_ITEM).match(first.headers["RateLimit-Policy"])
    assert sf_list(LIMIT_ITEM).match(first.headers["RateLimit"])
    assert first.headers["RateLimit-Policy"] == '"per-key";q=2;w=60, "per-ip";q=3;w=60'
    assert first.headers["RateLimit"] == '"per-key";r=1;t=45, "per-ip";r=2;t=45'
    assert "retry-after" not in first.headers
    assert authz(client, "POST", x_api_key="k1").status_code == 200
    denied = authz(client, x_api_key="k1")
    assert denied.status_code == 429
    assert denied.headers["Retry-After"] == "45"
    assert denied.headers["content-type"] == "application/json"
    assert denied.json() == {"error": "rate_limited", "rules": ["per-key"], "retry_after": 45}
    assert denied.headers["RateLimit"].startswith('"per-key";r=0;t=45')


def test_authz_keys_on_the_envoy_external_address_not_x_forwarded_for(client: TestClient) -> None:
    for i in range(3):
        assert authz(client, "GET", "/other", x_forwarded_for=f"198.51.100.{i}").status_code == 200
    r = authz(client, "GET", "/other", x_forwarded_for="198.51.100.99")
    assert r.status_code == 429 and r.json()["rules"] == ["per-ip"]
    assert authz(client, "GET", "/other", x_envoy_external_address="203.0.113.8").status_code == 200


def test_authz_rules_apply_only_when_they_match_and_have_their_key(client: TestClient) -> None:
    no_ip = {"host": "api.example.com"}
    # No x-api-key and no client address: no rule applies, so the request is allowed, without fields.
    r = client.get("/authz/api/items", headers=no_ip)
    assert r.status_code == 200 and "ratelimit" not in r.headers
    # Any method reaches the endpoint (Envoy forwards the original one); DELETE does not match per-key.
    r = client.request("DELETE", "/authz/api/items", headers={**no_ip, "x-api-key": "k"})
    assert r.status_code == 200 and "ratelimit" not in r.headers
    r = client.request("PROPFIND", "/authz", headers={"x-envoy-external-address": "192.0.2.1"})
    assert r.status_code == 200 and r.headers["RateLimit-Policy"] == '"per-ip";q=3;w=60'


def test_authz_shadow_rule_never_denies(client: TestClient) -> None:
    results = [authz(client, "GET", "/shadow/x", x_envoy_external_address="192.0.2.9") for _ in range(3)]
    assert [r.status_code for r in results] == [200, 200, 200]
    metrics = client.get("/metrics").text
    assert 'limiter_decisions_total{outcome="shadow_denied",rule="shadowed"} 2.0' in metrics


def test_check_with_a_shadow_rule_past_its_limit_answers_allowed_with_no_retry_after(client: TestClient) -> None:
    """A shadow rule is measured, never enforced: /v1/check says allowed and gives the caller no wait."""
    first, second = (check(client, rule="shadowed", key="k").json() for _ in range(2))
    assert first == {
        "allowed": True,
        "limit": 1,
        "remaining": 0,
        "reset_after": first["reset_after"],
        "retry_after": None,
    }
    assert (second["allowed"], second["remaining"], second["retry_after"]) == (True, 0, None)


# -- operations --------------------------------------------------------------------------------
def test_health_ready_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "rules_loaded": 3, "store": {"backend": "memory", "reachable": True}}
    check(client, rule="per-key", key="m")
    text = client.get("/metrics").text
    for name in (
        'limiter_decisions_total{outcome="allowed",rule="per-key"} 1.0',
        "limiter_store_latency_seconds",
        "limiter_store_errors_total",
        "limiter_local_cache_hits_total",
        "limiter_store_up 1.0",
        "limiter_rules_loaded 3.0",
    ):
        assert name in text


class DownStore(Store):
    name = "down"

    async def incr_if(self, key: str, cost: int, ceiling: int, expires_at: int) -> IncrResult:
        raise StoreError("down", reason="connection", operation="UpdateItem")

    async def get(self, key: str) -> int:
        raise StoreError("down", reason="connection", operation="GetItem")

    @property
    def reachable(self) -> bool:
        return False


CLOSED_ONLY = """
rules:
  - {name: closed, key: [client_ip], limit: 5, window_seconds: 60, failure_mode: closed}
"""


def down(settings: Settings, clock: Any, metrics: Metrics) -> Store:
    return DownStore()


def test_readiness_with_the_store_down_depends_on_failure_modes(tmp_path: Path) -> None:
    with TestClient(build(tmp_path, store_factory=down)) as c:
        r = c.get("/readyz")  # fail-open rules still decide: stay ready, report the store
        assert r.status_code == 200
        assert r.json()["store"] == {"backend": "down", "reachable": False}
        assert "limiter_store_up 0.0" in c.get("/metrics").text
        assert authz(c, x_api_key="k").status_code == 200  # open: allowed
    with TestClient(build(tmp_path, CLOSED_ONLY, store_factory=down)) as c:
        r = c.get("/readyz")  # every rule fails closed and the store is down: cannot decide
        assert r.status_code == 503 and r.json()["ready"] is False
        denied = authz(c)
        assert denied.status_code == 429 and denied.headers["Retry-After"] == "1"
    with TestClient(build(tmp_path, "rules: []\n")) as c:
        assert c.get("/readyz").status_code == 503  # no rules loaded


def test_authz_matches_rules_on_the_path_without_the_api_gateway_stage(tmp_path: Path, clock: FakeClock) -> None:
    with TestClient(build(tmp_path, strip=("/apigw",), clock=clock), raise_server_exceptions=False) as c:
        assert authz(c, "GET", "/apigw/api/items", x_api_key="k").status_code == 200
        assert authz(c, "GET", "/api/items", x_api_key="k").status_code == 200
        denied = authz(c, "GET", "/apigw/api/items?q=1", x_api_key="k")
        assert denied.status_code == 429 and denied.json()["rules"] == ["per-key"]
        # a segment that merely starts like the prefix is not stripped, so /api/ rules do not match it
        other = authz(c, "GET", "/apigwx/api/items", x_api_key="k", x_envoy_external_address="192.0.2.77")
        assert other.status_code == 200 and '"per-key"' not in other.headers.get("RateLimit-Policy", "")


def test_strip_prefixes_must_be_path_segments() -> None:
    with pytest.raises(ValueError, match="must be a path segment"):
        Settings(strip_path_prefixes=("apigw/",))


def test_a_body_that_cannot_be_parsed_is_a_422_about_the_body(client: TestClient) -> None:
    r = client.post("/v1/check", content=b'{"rule": "\xff"}', headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid request: body"
    assert [d["field"] for d in r.json()["detail"]] == ["body"]


def test_an_unexpected_error_is_a_500_without_details(tmp_path: Path) -> None:
    app = build(tmp_path)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert (r.status_code, r.json()) == (500, {"error": "internal error"})


class FlakyStore(DownStore):
    """Unreachable, and its probe fails with a StoreError every time."""

    name = "flaky"

    def __init__(self) -> None:
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        raise StoreError("no route", reason="connection", operation="DescribeTable")


class RecoveringStore(FlakyStore):
    """Unreachable at warm-up and for its first two probes, reachable from the third."""

    name = "recovering"

    async def ping(self) -> None:
        self.pings += 1
        if self.pings < 3:
            raise StoreError("no route", reason="connection", operation="DescribeTable")

    @property
    def reachable(self) -> bool:
        return self.pings >= 3


def _store_up(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("limiter_store_up")


def test_the_probe_reports_reachability_and_survives_failed_pings(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    from limiter_service.app import _probe
    from limiter_service.stores.memory import MemoryStore

    async def scenario() -> None:
        metrics = Metrics()
        flaky = FlakyStore()
        task = asyncio.create_task(_probe(flaky, metrics, 0.001))
        await asyncio.sleep(0.05)
        assert not task.done(), "a failed ping must not end the probe"
        assert flaky.pings >= 3 and _store_up(metrics) == 0
        task.cancel()
        metrics.set_store_up(0)
        task = asyncio.create_task(_probe(MemoryStore(), metrics, 60))
        await asyncio.sleep(0.01)
        assert _store_up(metrics) == 1  # reachable after the warm-up, before the first interval
        task.cancel()
        # A store that comes back is reported up again by the probe, not only at the next warm-up.
        recovering = RecoveringStore()
        task = asyncio.create_task(_probe(recovering, metrics, 0.001))
        await asyncio.sleep(0.0005)
        assert _store_up(metrics) == 0
        for _ in range(200):
            if recovering.pings >= 4:
                break
            await asyncio.sleep(0.005)
        assert recovering.pings >= 4 and _store_up(metrics) == 1
        task.cancel()

    with caplog.at_level(logging.WARNING, logger="limiter_service"):
        asyncio.run(scenario())
    # An expected store failure is a warning naming it, not a crash of the probe.
    messages = {(r.levelname, r.getMessage()) for r in caplog.records if r.name == "limiter_service"}
    assert messages == {("WARNING", "store probe failed: no route")}


class CrashingStore(FlakyStore):
    """Its probe fails with a bug, not a StoreError."""

    async def ping(self) -> None:
        self.pings += 1
        raise RuntimeError("bug in the store")


def test_a_probe_that_crashes_is_logged_and_the_probe_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    from limiter_service.app import _probe

    async def scenario() -> int:
        store = CrashingStore()
        task = asyncio.create_task(_probe(store, Metrics(), 0.001))
        await asyncio.sleep(0.05)
        assert not task.done(), "the probe must outlive a bug in one ping"
        task.cancel()
        return store.pings

    with caplog.at_level(logging.ERROR, logger="limiter_service"):
        pings = asyncio.run(scenario())
    crashes = [r for r in caplog.records if r.getMessage() == "store probe crashed"]
    assert pings >= 3 and len(crashes) == pings and crashes[0].exc_info is not None


@pytest.mark.parametrize("field", ["key", "rule"])
def test_a_lone_surrogate_is_a_422_naming_its_field(client: TestClient, field: str) -> None:
    body = {"rule": "per-key", "key": "k", field: "\ud800"}
    r = client.post("/v1/check", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["detail"]] == [field]


def test_retry_after_and_reset_after_are_rounded_to_milliseconds(tmp_path: Path) -> None:
    clock = FakeClock(1_800_000_000.0 + 15.1234)  # 15.1234 s into a 60 s window
    with TestClient(build(tmp_path, clock=clock), raise_server_exceptions=False) as c:
        for _ in range(3):
            assert check(c, rule="per-ip", key="k").status_code == 200
        denied = check(c, rule="per-ip", key="k").json()
    # sliding window, limit 3: one more fits once this window's 3 weigh 2, 20 s into the next one
    assert denied == {"allowed": False, "limit": 3, "remaining": 0, "reset_after": 64.877, "retry_after": 64.877}


def test_the_openapi_document_lists_each_routes_answers_and_hides_authz(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/authz")]  # Envoy's endpoint, any method: not an API
    check_answers = paths["/v1/check"]["post"]["responses"]
    assert sorted(check_answers) == ["200", "404", "422"]
    assert check_answers["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UnknownRuleResponse"
    }
    assert sorted(paths["/readyz"]["get"]["responses"]) == ["200", "503"]


def test_authz_matches_on_the_raw_path_as_envoy_sent_it(client: TestClient) -> None:
    plain = authz(client, "GET", "/api/items", x_api_key="k")
    encoded = authz(client, "GET", "/api%2Fitems", x_api_key="k")  # not under /api/ until decoded
    assert '"per-key"' in plain.headers["RateLimit-Policy"]
    assert '"per-key"' not in encoded.headers["RateLimit-Policy"]


def test_authz_survives_an_encoded_slash_right_after_its_prefix(client: TestClient) -> None:
    # Starlette routes on the decoded path (/authz/api/items); the raw one reads /authz%2Fapi%2Fitems.
    r = authz(client, "GET", "%2Fapi%2Fitems", x_api_key="k")
    assert r.status_code == 200
    assert '"per-key"' not in r.headers["RateLimit-Policy"]


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    """A denied client told `Retry-After: 0` would retry at once, into the same denial (RFC 9110 10.2.3:
    delay-seconds, a non-negative integer; we floor it at 1)."""
    from limiter_service.headers import retry_after

    assert [retry_after(s) for s in (0.0, 0.2, 1.0, 1.01, 59.5)] == ["1", "1", "1", "2", "60"]
