"""The service as processes against dynalite: the two-replica race, the fault test, create-table."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.limiter_service.limiter_testutil import REPO, LocalServer, ServiceProcess, free_port, service_env

pytestmark = [pytest.mark.dynamodb, pytest.mark.slow]
WINDOW = 31 * 24 * 3600  # the longest window: a 10 s test almost never straddles a boundary


def rules_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"rules-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(text)
    return path


def create_table_cli(server: LocalServer, table: str) -> subprocess.CompletedProcess[str]:
    env = service_env(LIMITER_TABLE=table, AWS_ENDPOINT_URL_DYNAMODB=server.endpoint)
    return subprocess.run(
        [sys.executable, "-m", "limiter_service", "create-table"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_create_table_command_is_idempotent(dynalite: LocalServer) -> None:
    table = f"cli-{uuid.uuid4().hex[:6]}"
    first, second = create_table_cli(dynalite, table), create_table_cli(dynalite, table)
    assert first.returncode == 0 and f"table {table}: created" in first.stdout, first.stderr
    assert second.returncode == 0 and f"table {table}: exists" in second.stdout, second.stderr
    desc = dynalite.client().describe_table(TableName=table)["Table"]
    assert desc["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_create_table_refuses_real_aws_without_an_endpoint() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "limiter_service", "create-table"],
        cwd=REPO,
        env=service_env(LIMITER_TABLE="never-created"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "refusing to create a table in AWS" in proc.stderr


RACE_RULES = f"""
rules:
  - name: exact
    match: {{path_prefix: "/x"}}
    key: ["header:x-api-key"]
    limit: 50
    window_seconds: {WINDOW}
    failure_mode: closed
  - name: leased
    match: {{path_prefix: "/leased/"}}
    key: ["header:x-api-key"]
    limit: 50
    window_seconds: {WINDOW}
    failure_mode: closed
    lease: 10
"""


def race(urls: list[str], send: Callable[[httpx.Client, str, int], bool], clients: int = 16, each: int = 10) -> int:
    admitted = 0
    lock = threading.Lock()
    start = threading.Barrier(clients)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        nonlocal admitted
        try:
            with httpx.Client(timeout=30) as client:
                start.wait()
                for j in range(each):
                    if send(client, urls[(i + j) % len(urls)], j):
                        with lock:
                            admitted += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return admitted


def test_sixteen_clients_through_two_replicas_admit_exactly_the_limit(
    dynalite: LocalServer, dynalite_table: str, service_factory: Any, tmp_path: Path
) -> None:
    env = service_env(
        LIMITER_RULES_FILE=str(rules_file(tmp_path, RACE_RULES)),
        LIMITER_STORE="dynamodb",
        LIMITER_TABLE=dynalite_table,
        LIMITER_STORE_TIMEOUT_MS="5000",  # atomicity is under test here, not the deadline
        AWS_ENDPOINT_URL_DYNAMODB=dynalite.endpoint,
    )
    a, b = service_factory(env), service_factory(env)
    urls = [a.url, b.url]
    key = f"race-{uuid.uuid4().hex}"

    def exact(client: httpx.Client, url: str, j: int) -> bool:
        if j % 2:  # half through the decision API, half through ext_authz: the same counter
            r = client.post(url + "/v1/check", json={"rule": "exact", "key": key})
            assert r.status_code == 200, r.text
            return bool(r.json()["allowed"])
        r = client.get(url + "/authz/x", headers={"x-api-key": key})
        assert r.status_code in (200, 429), r.text
        return r.status_code == 200

    admitted = race(urls, exact)
    assert admitted == 50

    def leased(client: httpx.Client, url: str, j: int) -> bool:
        r = client.post(url + "/authz/leased/x", headers={"x-api-key": key})
        assert r.status_code in (200, 429), r.text
        return r.status_code == 200

    # Leases: never over; under by at most (replicas) * (lease - 1) tokens stranded in leases.
    admitted = race(urls, leased, each=12)
    assert 50 - 2 * 9 <= admitted <= 50
    for svc in (a, b):
        metrics = httpx.get(svc.url + "/metrics").text
        assert "limiter_store_errors_total{" not in metrics  # no error decided anything


FAULT_RULES = f"""
rules:
  - {{name: fail-open, key: [client_ip], limit: 100000, window_seconds: {WINDOW}, failure_mode: open}}
  - {{name: fail-closed, key: [client_ip], limit: 100000, window_seconds: {WINDOW}, failure_mode: closed,
      algorithm: sliding_window}}
"""


def sample(metrics: str, series: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def decide(url: str, rule: str) -> dict[str, Any]:
    # The client's timeout bounds the answer: the store deadline is 50 ms, botocore's default 60 s.
    r = httpx.post(url + "/v1/check", json={"rule": rule, "key": f"k-{uuid.uuid4().hex}"}, timeout=5.0)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_store_outage_follows_failure_modes_and_recovers(
    dynalite_factory: type[LocalServer], service_factory: Any, tmp_path: Path
) -> None:
    server = dynalite_factory("dynalite", free_port()).start()
    table = "fault"
    assert create_table_cli(server, table).returncode == 0
    svc: ServiceProcess = service_factory(
        service_env(
            LIMITER_RULES_FILE=str(rules_file(tmp_path, FAULT_RULES)),
            LIMITER_STORE="dynamodb",
            LIMITER_TABLE=table,
            LIMITER_HEALTH_INTERVAL_S="0.5",
            LIMITER_STORE_TIMEOUT_MS="250",  # a loaded 2-core CI box; the default is 50
            AWS_ENDPOINT_URL_DYNAMODB=server.endpoint,
        )
    )
    deadline = time.monotonic() + 30
    while not decide(svc.url, "fail-closed")["allowed"]:  # allowed by a fail-closed rule: store-backed
        assert time.monotonic() < deadline, "the store never answered"
    assert decide(svc.url, "fail-open")["allowed"]

    server.stop()  # mid-run
    for _ in range(10):
        opened, closed = decide(svc.url, "fail-open"), decide(svc.url, "fail-closed")
        assert opened["allowed"] is True and opened["retry_after"] is None
        assert closed["allowed"] is False and closed["retry_after"] == 1.0
    ready = httpx.get(svc.url + "/readyz", timeout=5.0)
    assert ready.status_code == 200  # a fail-open rule can still decide: stay in the Service
    assert ready.json()["store"] == {"backend": "dynamodb", "reachable": False}
    metrics = httpx.get(svc.url + "/metrics", timeout=5.0).text
    assert "limiter_store_up 0.0" in metrics
    assert sample(metrics, 'limiter_decisions_total{outcome="error_allowed",rule="fail-open"}') >= 10
    assert sample(metrics, 'limiter_decisions_total{outcome="error_denied",rule="fail-closed"}') >= 10
    assert 'limiter_store_errors_total{operation="UpdateItem",reason="connection"}' in metrics
    denied = httpx.get(svc.url + "/authz/x", headers={"x-envoy-external-address": "192.0.2.1"}, timeout=5.0)
    assert denied.status_code == 429 and denied.headers["Retry-After"] == "1"

    server.start()  # same port, empty (dynalite keeps data in memory): recreate the table
    assert create_table_cli(server, table).returncode == 0
    deadline = time.monotonic() + 60
    while not decide(svc.url, "fail-closed")["allowed"]:
        assert time.monotonic() < deadline, "the service did not recover after the store came back"
        time.sleep(0.2)
    assert decide(svc.url, "fail-open")["allowed"]
    deadline = time.monotonic() + 60
    while httpx.get(svc.url + "/readyz", timeout=5.0).json()["store"]["reachable"] is not True:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert "limiter_store_up 1.0" in httpx.get(svc.url + "/metrics", timeout=5.0).text
