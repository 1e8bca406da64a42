"""Decisions/s and p50/p99 latency of POST /v1/check (memory store) against a bare FastAPI endpoint
returning the same JSON and the same endpoint behind slowapi (in-memory storage).

Same server settings for all three (uvicorn, one worker, uvloop/httptools as installed, no access
log), same load (wrk, 1 thread, 32 connections, 1,000 keys), in one run, alternating the servers
in short alternating slices (rotating the order) and keeping each server's median slice. All traffic to 127.0.0.1.

    python bench/limiter_throughput.py [--duration 3] [--rounds 15] [--connections 32]

Needs `wrk` (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RULES = """
rules:
  - name: bench
    key: ["header:x-key"]
    limit: 1000000000
    window_seconds: 60
"""
TARGETS = {
    "limiter": ["limiter_service.app:create_app", "--factory"],
    "bare": ["bench.apps:bare"],
    "slowapi": ["bench.apps:slow"],
}


# Server on CPU 0, wrk on CPU 1 (when taskset exists and there are two CPUs): less interference between them.
_PIN = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
PIN_SERVER = ["taskset", "-c", "0"] if _PIN else []
PIN_WRK = ["taskset", "-c", "1"] if _PIN else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(port)


def parse_wrk(out: str) -> dict[str, float]:
    def seconds(value: str, unit: str) -> float:
        return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"\s50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    assert p50 and p99, out
    return {
        "rps": rps,
        "p50_ms": seconds(*p50.groups()) * 1000,
        "p99_ms": seconds(*p99.groups()) * 1000,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def run_wrk(port: int, duration: float, connections: int) -> dict[str, float]:
    cmd = [
        *PIN_WRK, "wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--latency", "--timeout", "5s",
        "-s", str(REPO / "bench" / "check.lua"), f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    return parse_wrk(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=3, help="seconds per slice")
    parser.add_argument("--rounds", type=int, default=15, help="alternating slices per server")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(RULES)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIMITER_")}
        env.update(LIMITER_RULES_FILE=str(rules), LIMITER_STORE="memory", PYTHONPATH=str(REPO))
        results: dict[str, list[dict[str, float]]] = {name: [] for name in TARGETS}
        servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        try:
            # All three servers up at once (idle ones cost nothing); short alternating slices spread the
            # machine's noise evenly over them.
            for name, target in TARGETS.items():
                port = free_port()
                servers[name] = (
                    subprocess.Popen(
                        [*PIN_SERVER, sys.executable, "-m", "uvicorn", *target, "--host", "127.0.0.1",
                         "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log"],
                        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    ),
                    port,
                )  # fmt: skip
            for _, port in servers.values():
                wait_port(port)
                run_wrk(port, 2, args.connections)  # warm-up
            names = list(TARGETS)
            for slice_no in range(args.rounds):
                order = names[slice_no % 3 :] + names[: slice_no % 3]  # rotate: no server always goes last
                for name in order:
                    r = run_wrk(servers[name][1], args.duration, args.connections)
                    results[name].append(r)
                    print(
                        f"slice {slice_no + 1:2d} {name:8s} {r['rps']:7.0f} decisions/s  p50 {r['p50_ms']:6.2f} ms  "
                        f"p99 {r['p99_ms']:6.2f} ms  non-2xx {int(r['non2xx'])}",
                        flush=True,
                    )
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(10)

    def median(name: str, field: str) -> float:
        return statistics.median(r[field] for r in results[name])

    pinned = ", server on CPU 0 and wrk on CPU 1" if _PIN else ""
    load = f"wrk -t1 -c{args.connections} -d{args.duration}s"
    print(f"\nmedian of {args.rounds} slices per server, {load} each, 1 uvicorn worker{pinned}")
    print(f"{'server':8s} {'decisions/s':>12s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for name in TARGETS:
        print(f"{name:8s} {median(name, 'rps'):12.0f} {median(name, 'p50_ms'):8.2f} {median(name, 'p99_ms'):8.2f}")
    lim = median("limiter", "rps")
    print(f"limiter / bare    = {lim / median('bare', 'rps'):.2f}x  (goal >= 0.8)")
    print(f"limiter / slowapi = {lim / median('slowapi', 'rps'):.2f}x  (goal >= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
