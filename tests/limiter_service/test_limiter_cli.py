"""The command line: several workers (uvicorn spawns them and re-imports the logging config by name)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.limiter_service.limiter_testutil import service_env


@pytest.mark.slow
def test_serves_with_several_workers_and_logs_json(service_factory: Any) -> None:
    svc = service_factory(service_env(), ("--workers", "2"))
    r = httpx.post(svc.url + "/v1/check", json={"rule": "default-per-client-ip", "key": "192.0.2.1"}, timeout=10)
    assert r.status_code == 200 and r.json()["allowed"] is True
    svc.stop()
    lines = [json.loads(line) for line in svc.log_path.read_text().splitlines() if line.startswith("{")]
    started = [entry for entry in lines if entry["msg"].startswith("Started server process")]
    assert len(started) == 2  # both workers came up (a broken log config kills spawned workers)
    assert "Traceback" not in svc.log_path.read_text()
