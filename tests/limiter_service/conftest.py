"""Fixtures for the limiter's tests: local DynamoDB-API servers and service processes.

Every server listens on 127.0.0.1 on a free port and is stopped in the fixture's teardown, also when
the test fails. Helpers live in limiter_testutil.py.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from limiter_service.clock import FakeClock
from limiter_service.stores.base import Store
from limiter_service.stores.memory import MemoryStore
from tests.limiter_service.limiter_testutil import AWS_ENV, LocalServer, ServiceProcess, dynamodb_store, make_table


@pytest.fixture(scope="session")
def aws_env() -> Iterator[dict[str, str]]:
    """Fake credentials and a region for every boto3 client in this process (never real AWS)."""
    mp = pytest.MonkeyPatch()
    for name, value in AWS_ENV.items():
        mp.setenv(name, value)
    mp.delenv("AWS_PROFILE", raising=False)
    yield dict(AWS_ENV)
    mp.undo()


@pytest.fixture(scope="session")
def dynalite(aws_env: dict[str, str]) -> Iterator[LocalServer]:
    server = LocalServer("dynalite").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_server(aws_env: dict[str, str]) -> Iterator[LocalServer]:
    server = LocalServer("moto").start()
    yield server
    server.stop()


@pytest.fixture()
def dynalite_factory(aws_env: dict[str, str]) -> Iterator[type[LocalServer]]:
    """Servers a test may stop and restart itself (the fault test); all stopped at teardown."""
    started: list[LocalServer] = []

    class Tracked(LocalServer):
        def start(self) -> LocalServer:
            started.append(self)
            return super().start()

    yield Tracked
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def dynalite_table(dynalite: LocalServer) -> str:
    return make_table(dynalite)


@pytest.fixture()
def service_factory(tmp_path: Path) -> Iterator[Any]:
    services: list[ServiceProcess] = []

    def start(env: dict[str, str], args: tuple[str, ...] = ()) -> ServiceProcess:
        svc = ServiceProcess(env, tmp_path / f"service-{len(services)}.log", args)
        services.append(svc)
        svc.wait_ready()
        return svc

    yield start
    for svc in services:
        svc.stop()


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.dynamodb)])
async def store(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Store]:
    """Every store, for the same cases (alisaifee/limits ALL_STORAGES); closed on the test's event loop,
    where its connections live."""
    if request.param == "memory":
        s: Store = MemoryStore(clock=clock)
    else:
        server: LocalServer = request.getfixturevalue("dynalite")
        s = dynamodb_store(server.endpoint, request.getfixturevalue("dynalite_table"), clock)
    yield s
    await s.aclose()


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(time.time())
