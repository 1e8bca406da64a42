"""The service's settings (bounds, path prefixes, the cached dependency) and its store metrics."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from limiter_service.metrics import Metrics
from limiter_service.settings import Settings, get_settings

# field -> (lowest accepted, highest accepted); None: no bound on that side
BOUNDS: dict[str, tuple[Any, Any]] = {
    "store_timeout_ms": (1, 10_000),
    "store_max_attempts": (1, 5),
    "store_connections": (1, 10_000),
    "store_max_pending": (1, 10_000),
    "local_cache_size": (100, None),
    "memory_max_keys": (100, None),
    "health_interval_s": (None, 300),
}


@pytest.mark.parametrize("name", BOUNDS)
def test_numeric_settings_accept_their_bounds_and_refuse_one_beyond(name: str) -> None:
    lo, hi = BOUNDS[name]
    for value in (lo, hi):
        if value is not None:
            assert getattr(Settings(**{name: value}), name) == value
    for value in (lo - 1 if lo is not None else None, hi + 1 if hi is not None else None):
        if value is not None:
            with pytest.raises(ValidationError, match=name):
                Settings(**{name: value})


def test_health_interval_must_be_positive() -> None:
    assert Settings(health_interval_s=0.01).health_interval_s == 0.01
    for value in (0, -1):
        with pytest.raises(ValidationError, match="health_interval_s"):
            Settings(health_interval_s=value)


def test_settings_come_from_limiter_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIMITER_STORE", "dynamodb")
    monkeypatch.setenv("LIMITER_STORE_TIMEOUT_MS", "80")
    monkeypatch.setenv("LIMITER_STRIP_PATH_PREFIXES", '["/apigw"]')
    settings = Settings()
    assert (settings.store, settings.store_timeout_ms, settings.strip_path_prefixes) == ("dynamodb", 80, ("/apigw",))


@pytest.mark.parametrize("prefix", ["/a", "/apigw", "/stage/v1"])
def test_path_prefixes_that_are_segments_pass(prefix: str) -> None:
    assert Settings(strip_path_prefixes=(prefix,)).strip_path_prefixes == (prefix,)


@pytest.mark.parametrize("prefix", ["/", "", "apigw", "/apigw/"])
def test_path_prefixes_that_are_not_segments_are_refused(prefix: str) -> None:
    with pytest.raises(ValidationError, match="must be a path segment like '/apigw'"):
        Settings(strip_path_prefixes=("/ok", prefix))


def test_settings_are_read_once_per_process() -> None:
    get_settings.cache_clear()
    try:
        assert get_settings() is get_settings()
    finally:
        get_settings.cache_clear()


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_store_up_follows_the_last_store_call() -> None:
    metrics = Metrics()
    assert _value(metrics, "limiter_store_up") == 1
    metrics.observe_store("update", 0.002, "timeout")
    assert _value(metrics, "limiter_store_up") == 0
    metrics.observe_store("update", 0.003, None)
    assert _value(metrics, "limiter_store_up") == 1
    metrics.observe_store("update", 0.001, "circuit_open")
    assert _value(metrics, "limiter_store_up") == 0
    metrics.set_store_up(1)
    assert _value(metrics, "limiter_store_up") == 1


def test_this_processs_overload_says_nothing_about_the_store() -> None:
    metrics = Metrics()
    for reason in ("overloaded", "stalled"):
        metrics.observe_store("update", 0.05, reason)
        assert _value(metrics, "limiter_store_errors_total", operation="update", reason=reason) == 1
    assert _value(metrics, "limiter_store_up") == 1
    assert _value(metrics, "limiter_store_latency_seconds_count", operation="update") is None


def test_latency_is_observed_for_calls_that_reached_the_store_only() -> None:
    metrics = Metrics()
    metrics.observe_store("get", 0.004, None)
    metrics.observe_store("get", 0.006, None)
    metrics.observe_store("get", 0.05, "throttled")  # reached the store: its latency counts
    metrics.observe_store("get", 0.0, "circuit_open")  # never sent: no latency
    assert _value(metrics, "limiter_store_latency_seconds_count", operation="get") == 3
    assert _value(metrics, "limiter_store_latency_seconds_sum", operation="get") == pytest.approx(0.06)
    errors = {
        r: _value(metrics, "limiter_store_errors_total", operation="get", reason=r)
        for r in ("throttled", "circuit_open")
    }
    assert errors == {"throttled": 1, "circuit_open": 1}


def test_the_readme_documents_every_setting_with_its_default() -> None:
    """limiter_service/README.md is where operators read what an unset variable means."""
    import json
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "limiter_service" / "README.md").read_text()
    documented = dict(re.findall(r"^\| `LIMITER_(\w+)` \| `?([^`|]+?)`? \|", text, re.M))

    def shown(value: Any) -> str:
        if value is None:
            return "unset"
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return json.dumps(value) if isinstance(value, list | tuple) else str(value)

    in_code = {name.upper(): shown(field.default) for name, field in Settings.model_fields.items()}
    assert documented == in_code


def test_the_table_name_follows_dynamodbs_rule() -> None:
    # DynamoDB table names are 3 to 255 characters (CreateTable TableName).
    assert Settings(table="abc").table == "abc"
    assert Settings(table="t" * 255).table == "t" * 255
    for bad in ("ab", "t" * 256):
        with pytest.raises(ValidationError, match="table"):
            Settings(table=bad)
