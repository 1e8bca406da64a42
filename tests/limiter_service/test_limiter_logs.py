"""Structured logs: one JSON object per line, the logging config uvicorn's workers load by name."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
import sys

import pytest

from limiter_service.logs import JsonFormatter, log_config


def _record(exc_info: object = None) -> logging.LogRecord:
    record = logging.LogRecord("limiter.test", logging.WARNING, __file__, 1, "store %s", ("down",), exc_info)
    record.created, record.msecs = 1_800_000_000.25, 250.0
    return record


def test_a_record_is_one_json_object_with_a_utc_millisecond_timestamp() -> None:
    line = JsonFormatter().format(_record())
    assert "\n" not in line
    assert json.loads(line) == {
        "ts": "2027-01-15T08:00:00.250Z",
        "level": "warning",
        "logger": "limiter.test",
        "msg": "store down",
    }


def test_an_exception_is_carried_in_the_same_object() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        entry = json.loads(JsonFormatter().format(_record(sys.exc_info())))
    assert entry["exc"].startswith("Traceback (most recent call last):")
    assert entry["exc"].endswith("ValueError: bad")


def test_the_config_formats_every_logger_as_json_and_keeps_existing_loggers(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    existing = logging.getLogger("limiter.before-config")  # e.g. created at import time
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logging.config.dictConfig(log_config("debug"))
        existing.debug("still here")
        logging.getLogger("uvicorn.access").info("GET / 200")  # access logs only from WARNING
        logging.getLogger("uvicorn.access").warning("slow")
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        root.handlers[:], root.level = saved[0], saved[1]
        existing.disabled = False
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["logger"], e["level"], e["msg"]) for e in lines] == [
        ("limiter.before-config", "debug", "still here"),
        ("uvicorn.access", "warning", "slow"),
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["ts"]) for e in lines)
