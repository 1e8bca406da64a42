"""Helpers for the limiter's tests: local DynamoDB-API servers, service processes, store wrappers.

Every server listens on 127.0.0.1 on a free port; the fixtures in conftest.py stop them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from limiter_service.clock import Clock
from limiter_service.stores.base import IncrResult, Store
from limiter_service.stores.dynamodb import DynamoDBStore

REPO = Path(__file__).resolve().parents[2]
DYNALITE = REPO / "node_modules" / ".bin" / "dynalite"
AWS_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


def stop_process(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


class LocalServer:
    """A DynamoDB-API server process (dynalite or moto) that can be stopped and restarted on its port."""

    def __init__(self, kind: str, port: int | None = None) -> None:
        self.kind = kind
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalServer:
        if self.kind == "dynalite":
            if not DYNALITE.exists():
                pytest.fail(f"dynalite not installed at {DYNALITE}: run `npm ci` at the repo root")
            cmd = [str(DYNALITE), "--host", "127.0.0.1", "--port", str(self.port), "--createTableMs", "0"]
        else:
            moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
            if moto is None:
                pytest.fail("moto_server not installed: pip install 'moto[server]'")
            cmd = [moto, "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def client(self) -> Any:
        return self.client_for(self.endpoint)

    @staticmethod
    def client_for(endpoint: str) -> Any:
        """A boto3 client on a local endpoint: an independent reader of what the store wrote."""
        import boto3

        return boto3.session.Session(region_name="us-east-1").client(
            "dynamodb",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def service_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIMITER_", "AWS_"))}
    env.update(AWS_ENV)
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


class ServiceProcess:
    """`python -m limiter_service` as a child process on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path, args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("wb")
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "limiter_service", "--host", "127.0.0.1", "--port", str(self.port), *args],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"service did not answer /healthz within {timeout}s: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


def make_table(server: LocalServer) -> str:
    from limiter_service.stores.dynamodb import create_table

    name = f"counters-{uuid.uuid4().hex[:8]}"
    create_table(name, client=server.client())
    return name


def dynamodb_store(endpoint: str, table: str, clock: Clock, **kwargs: Any) -> DynamoDBStore:
    """A store on a local endpoint; credentials and region come from the environment (``aws_env``)."""
    kwargs.setdefault("timeout_ms", 5000)
    kwargs.setdefault("max_attempts", 2)
    return DynamoDBStore(table, clock=clock, endpoint_url=endpoint, **kwargs)


class CountingStore(Store):
    """Wraps a store and counts the calls that reach it (to assert 'no store call' paths)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.name = inner.name
        self.incr_calls = 0
        self.get_calls = 0

    @property
    def calls(self) -> int:
        return self.incr_calls + self.get_calls

    async def incr_if(self, key: str, cost: int, ceiling: int, expires_at: int) -> IncrResult:
        self.incr_calls += 1
        return await self.inner.incr_if(key, cost, ceiling, expires_at)

    async def get(self, key: str) -> int:
        self.get_calls += 1
        return await self.inner.get(key)

    @property
    def reachable(self) -> bool:
        return self.inner.reachable

    async def aclose(self) -> None:
        await self.inner.aclose()


with warnings.catch_warnings():
    # Starlette 1.x warns once, at import, when its TestClient runs on httpx rather than httpx2;
    # the client behaves the same. Installing httpx2 in the test environment would remove this.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient as TestClient
