"""Decisions/s and CPU per decision of POST /v1/check with the DynamoDB store against the memory store, in
one run, and how the DynamoDB store behaves past its capacity.

The DynamoDB store talks to a built-in stub (bench/dynamodb_stub.py) that answers every request at once,
so only the limiter's own cost counts. Both limiters are single uvicorn workers on CPU 0, wrk and hey on
CPU 1 (when taskset exists and there are two CPUs); the stub is not pinned (pinned beside the load
generator, it answered late whenever other work shared that CPU, and the DynamoDB slices measured its
queueing rather than the limiter) and runs at a higher priority where allowed.

1. Ratio: short alternating slices (``wrk -t1 -c8``, 1,000 keys, order rotated), the median slice per
   store; CPU per decision = the server process's CPU time (utime + stime) / decisions in that slice.
2. Overload: open-loop load from ``hey`` (many workers, each at ``--worker-rate`` requests/s) at
   multiples of the DynamoDB store's measured capacity, once with shedding as configured
   (``LIMITER_STORE_MAX_PENDING`` default) and once with shedding off; for each level the answered rate,
   p99 and the share of answers given by the failure mode (``limiter_decisions_total`` outcomes, read
   from /metrics): ``shed_*`` (this replica's own overload: too many calls in progress, or a deadline
   that its stalled event loop ran late) and ``error_*`` (store timeouts, errors and the open breaker).

    python bench/dynamodb_throughput.py [--duration 3] [--rounds 7] [--connections 8] [--no-overload]
                                        [--store-timeout-ms 50] [--levels 0.5 0.8 1 1.25 1.5 2 3]

Needs ``wrk`` and ``hey`` (apt-get install -y wrk hey). Everything listens on 127.0.0.1 and is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `bench` importable
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench.limiter_throughput import PIN_SERVER, PIN_WRK, RULES, free_port, run_wrk, wait_port  # noqa: E402

AWS = {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
FAILURE_OUTCOMES = ("error_allowed", "error_denied", "shed_allowed", "shed_denied")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _prioritise() -> None:
    with contextlib.suppress(OSError):  # not allowed for this user: keep the default priority
        os.nice(-10)


def outcomes(url: str) -> dict[str, float]:
    """limiter_decisions_total by outcome, summed over rules."""
    totals: dict[str, float] = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        m = re.match(r'limiter_decisions_total\{.*outcome="([a-z_]+)".*\} ([0-9.e+]+)', line)
        if m:
            totals[m.group(1)] = totals.get(m.group(1), 0.0) + float(m.group(2))
    return totals


def start_limiter(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [*PIN_SERVER, sys.executable, "-m", "uvicorn", "limiter_service.app:create_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning",
           "--no-access-log"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, f"http://127.0.0.1:{port}"


def run_hey(url: str, workers: int, rate: float, duration: int) -> dict[str, float]:
    body = '{"rule":"bench","key":"hey","cost":1}'
    cmd = [*PIN_WRK, "hey", "-z", f"{duration}s", "-c", str(workers), "-q", f"{rate:g}", "-t", "5",
           "-m", "POST", "-T", "application/json", "-d", body, url + "/v1/check"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99% in ([\d.]+) secs", out)
    ok = sum(int(n) for n in re.findall(r"\[200\]\s+(\d+) responses", out))
    return {"rps": rps, "p99_ms": float(p99.group(1)) * 1000 if p99 else float("nan"), "ok": ok}


Servers = dict[str, tuple[subprocess.Popen[bytes], str]]


def ratio_slices(servers: Servers, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    results: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    names = list(servers)
    for slice_no in range(args.rounds):
        order = names[slice_no % 2 :] + names[: slice_no % 2]
        for name in order:
            proc, url = servers[name]
            port = int(url.rsplit(":", 1)[1])
            before = cpu_seconds(proc.pid)
            r = run_wrk(port, args.duration, args.connections)
            cpu = cpu_seconds(proc.pid) - before
            r["cpu_us"] = cpu / max(1.0, r["rps"] * args.duration) * 1e6
            results[name].append(r)
            print(f"slice {slice_no + 1:2d} {name:8s} {r['rps']:7.0f} decisions/s  {r['cpu_us']:5.0f} us CPU/decision  "
                  f"p99 {r['p99_ms']:6.2f} ms  non-2xx {int(r['non2xx'])}", flush=True)  # fmt: skip
    return {
        name: {f: statistics.median(r[f] for r in rs) for f in ("rps", "cpu_us", "p50_ms", "p99_ms")}
        for name, rs in results.items()
    }


def overload(url: str, capacity: float, args: argparse.Namespace, label: str) -> None:
    print(f"\noverload, {label}: hey open loop, {args.worker_rate:g} req/s per worker, {args.duration}s per level")
    print(f"{'load':>6s} {'offered/s':>10s} {'answered/s':>10s} {'p99 ms':>8s} {'failure mode':>13s} {'(shed':>7s} "
          f"{'error)':>7s}")  # fmt: skip
    for multiple in args.levels:
        workers = max(1, round(multiple * capacity / args.worker_rate))
        before = outcomes(url)
        r = run_hey(url, workers, args.worker_rate, args.duration)
        after = outcomes(url)
        total = max(1.0, sum(after.values()) - sum(before.values()))
        delta = {o: after.get(o, 0.0) - before.get(o, 0.0) for o in FAILURE_OUTCOMES}
        shed = (delta["shed_allowed"] + delta["shed_denied"]) / total
        error = (delta["error_allowed"] + delta["error_denied"]) / total
        print(f"{multiple:5.2f}x {workers * args.worker_rate:10.0f} {r['rps']:10.0f} {r['p99_ms']:8.1f} "
              f"{shed + error:13.1%} {shed:7.1%} {error:7.1%}", flush=True)  # fmt: skip
        time.sleep(1.0)  # let the breaker close and the backlog drain between levels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=3, help="seconds per slice or load level")
    parser.add_argument("--rounds", type=int, default=7, help="alternating slices per store")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections for the ratio")
    parser.add_argument("--worker-rate", type=float, default=20.0, help="hey requests/s per worker (overload)")
    parser.add_argument("--levels", type=float, nargs="+", default=[0.5, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0])
    parser.add_argument("--no-overload", action="store_true", help="measure the ratio only")
    parser.add_argument(
        "--store-timeout-ms",
        type=int,
        default=50,
        help="LIMITER_STORE_TIMEOUT_MS of the DynamoDB limiters (default 50)",
    )
    args = parser.parse_args()
    for tool in ("wrk", "hey"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            print(f"{tool} not found: apt-get install -y wrk hey", file=sys.stderr)
            return 2
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rules = Path(tmp) / "rules.yaml"
            rules.write_text(RULES)
            base = {k: v for k, v in os.environ.items() if not k.startswith(("LIMITER_", "AWS_"))}
            base.update(AWS, PYTHONPATH=str(REPO), LIMITER_RULES_FILE=str(rules), LIMITER_HEALTH_INTERVAL_S="300")
            stub_port = free_port()
            stub = [sys.executable, "-m", "bench.dynamodb_stub", "--port", str(stub_port)]
            # The stub stands for DynamoDB, which does not share the limiter's machine: run it ahead of
            # the load generator (higher priority where allowed), so its own queueing is not counted.
            procs.append(subprocess.Popen(stub, cwd=REPO, env=base, preexec_fn=_prioritise))
            wait_port(stub_port)
            ddb = {**base, "LIMITER_STORE": "dynamodb", "LIMITER_TABLE": "bench",
                   "LIMITER_STORE_TIMEOUT_MS": str(args.store_timeout_ms),
                   "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{stub_port}"}  # fmt: skip
            servers: Servers = {}
            for name, env in (("memory", {**base, "LIMITER_STORE": "memory"}), ("dynamodb", ddb)):
                servers[name] = start_limiter(env)
                procs.append(servers[name][0])
            for _, url in servers.values():
                run_wrk(int(url.rsplit(":", 1)[1]), 2, args.connections)  # warm-up
            med = ratio_slices(servers, args)
            load = f"wrk -t1 -c{args.connections} -d{args.duration}s"
            print(f"\nmedian of {args.rounds} slices per store, {load}, 1 uvicorn worker, stub answering at once")
            print(f"{'store':8s} {'decisions/s':>12s} {'CPU/decision':>13s} {'p50 ms':>7s} {'p99 ms':>7s}")
            for name, m in med.items():
                print(f"{name:8s} {m['rps']:12.0f} {m['cpu_us']:10.0f} us {m['p50_ms']:7.2f} {m['p99_ms']:7.2f}")
            ratio = med["dynamodb"]["rps"] / med["memory"]["rps"]
            cpu_ratio = med["memory"]["cpu_us"] / med["dynamodb"]["cpu_us"]
            print(f"dynamodb / memory decisions/s = {ratio:.2f}x (goal >= 0.5, stretch 0.7)")
            print(f"memory / dynamodb CPU per decision = {cpu_ratio:.2f}x (decisions per CPU-second: memory "
                  f"{1e6 / med['memory']['cpu_us']:.0f}, dynamodb {1e6 / med['dynamodb']['cpu_us']:.0f}; the wall "
                  "ratio above follows it when the machine is quiet)")  # fmt: skip
            if args.no_overload:
                return 0
            capacity = med["dynamodb"]["rps"]
            deadline = f"store deadline {args.store_timeout_ms} ms"
            overload(
                servers["dynamodb"][1],
                capacity,
                args,
                f"{deadline}, shedding on (LIMITER_STORE_MAX_PENDING=128, the default)",
            )
            off, off_url = start_limiter({**ddb, "LIMITER_STORE_MAX_PENDING": "10000"})
            procs.append(off)
            run_wrk(int(off_url.rsplit(":", 1)[1]), 2, args.connections)
            overload(off_url, capacity, args, f"{deadline}, shedding off (LIMITER_STORE_MAX_PENDING=10000)")
            print(
                f"\nload = offered requests/s as a multiple of the DynamoDB store's capacity ({capacity:.0f}/s above)"
            )
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
