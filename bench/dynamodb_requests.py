"""DynamoDB requests per decision, counted outside the service by a proxy in front of dynalite.

Cases: an exact fixed window (every decision allowed), a sliding window, a flood from one key
already over its limit, and leases of 10 and 100. Goals: 1.0 for allowed exact decisions, near 0
for the flood, at most 1/lease with leases.

    python bench/dynamodb_requests.py [--decisions 1000]

Starts dynalite (node_modules/.bin/dynalite), the counting proxy and one limiter process, all on
127.0.0.1, and stops them at the end.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
WINDOW = 31 * 24 * 3600
RULES = f"""
rules:
  - {{name: exact, key: [client_ip], limit: 1000000, window_seconds: {WINDOW}, failure_mode: closed}}
  - {{name: sliding, key: [client_ip], limit: 1000000, window_seconds: {WINDOW}, failure_mode: closed,
      algorithm: sliding_window}}
  - {{name: flood, key: [client_ip], limit: 10, window_seconds: {WINDOW}, failure_mode: closed}}
  - {{name: lease10, key: [client_ip], limit: 1000000, window_seconds: {WINDOW}, failure_mode: closed, lease: 10}}
  - {{name: lease100, key: [client_ip], limit: 1000000, window_seconds: {WINDOW}, failure_mode: closed, lease: 100}}
"""
AWS = {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=1000)
    args = parser.parse_args()
    n = args.decisions
    procs: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIMITER_", "AWS_"))}
    env.update(AWS, PYTHONPATH=str(REPO))
    try:
        dport, pport, lport = free_port(), free_port(), free_port()
        dyn = [
            str(REPO / "node_modules/.bin/dynalite"),
            "--host",
            "127.0.0.1",
            "--port",
            str(dport),
            "--createTableMs",
            "0",
        ]
        procs.append(subprocess.Popen(dyn, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        proxy = [sys.executable, "-m", "uvicorn", "bench.counting_proxy:app", "--host", "127.0.0.1",
                 "--port", str(pport), "--log-level", "warning", "--no-access-log"]  # fmt: skip
        procs.append(subprocess.Popen(proxy, cwd=REPO, env={**env, "UPSTREAM": f"http://127.0.0.1:{dport}"}))
        proxy_url = f"http://127.0.0.1:{pport}"
        wait_http(proxy_url + "/__counts")
        with tempfile.TemporaryDirectory() as tmp:
            rules = Path(tmp) / "rules.yaml"
            rules.write_text(RULES)
            svc_env = {**env, "LIMITER_RULES_FILE": str(rules), "LIMITER_STORE": "dynamodb", "LIMITER_TABLE": "bench",
                       "LIMITER_STORE_TIMEOUT_MS": "2000", "LIMITER_HEALTH_INTERVAL_S": "300",
                       "AWS_ENDPOINT_URL_DYNAMODB": proxy_url}  # fmt: skip
            subprocess.run([sys.executable, "-m", "limiter_service", "create-table"], cwd=REPO, env=svc_env, check=True)
            svc = [sys.executable, "-m", "limiter_service", "--port", str(lport)]
            procs.append(subprocess.Popen(svc, cwd=REPO, env=svc_env, stderr=subprocess.DEVNULL))
            url = f"http://127.0.0.1:{lport}"
            wait_http(url + "/healthz")
            head = ("case", "decisions", "allowed", "UpdateItem", "GetItem", "req/decision")
            print("{:10s} {:>9s} {:>8s} {:>10s} {:>8s} {:>12s}".format(*head))
            with httpx.Client(timeout=10) as client:
                for rule in ("exact", "sliding", "flood", "lease10", "lease100"):
                    key = f"{rule}-{uuid.uuid4().hex[:8]}"
                    if rule == "flood":  # the key is over its limit before the measured flood
                        for _ in range(11):
                            client.post(url + "/v1/check", json={"rule": rule, "key": key})
                    httpx.delete(proxy_url + "/__counts")
                    allowed = 0
                    for _ in range(n):
                        r = client.post(url + "/v1/check", json={"rule": rule, "key": key})
                        r.raise_for_status()
                        allowed += bool(r.json()["allowed"])
                    counts = httpx.get(proxy_url + "/__counts").json()
                    total = sum(counts.values())
                    print(
                        f"{rule:10s} {n:9d} {allowed:8d} {counts.get('UpdateItem', 0):10d} "
                        f"{counts.get('GetItem', 0):8d} {total / n:12.4f}",
                        flush=True,
                    )
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
