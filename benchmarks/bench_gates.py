"""Benchmark: gate evaluation of many rollouts whose sources answer in 100 ms.

Runs the same rollouts twice in one run — concurrently (``max_workers``, default 8) and one
after another (``max_workers=1``) — and prints the ratio. Two sources:

- ``command``: ``sh -c 'sleep 0.1; printf <json>'`` (a real process per rollout);
- ``http``: a local HTTP server answering the Prometheus query API after 100 ms (one gate,
  so one query, per rollout).

    python benchmarks/bench_gates.py                 # 200 rollouts, both sources (~1 min)
    python benchmarks/bench_gates.py --rollouts 50 --source http
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.gates import GateRequest, assess_all
from runner.model import Gate, MetricsConfig, RolloutPlan, Step, Strategy, Verdict

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
DELAY = 0.1
ANSWER = {"error_rate": 0.2, "p95_latency_ms": 150, "request_count": 5000}
GATES = (Gate("error_rate", max=1.0), Gate("p95_latency_ms", max=500.0), Gate("request_count", min=100.0))


@contextmanager
def slow_prometheus() -> Iterator[str]:
    body = json.dumps({"status": "success", "data": {
        "resultType": "vector", "result": [{"metric": {}, "value": [NOW.timestamp(), "0.2"]}]}}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(DELAY)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def requests_for(source: MetricsConfig, gates: tuple[Gate, ...], n: int) -> list[GateRequest]:
    out = []
    for i in range(n):
        plan = RolloutPlan(name=f"flag_{i}", flag=f"flag_{i}", strategy=Strategy.SAFE,
                           steps=(Step(0), Step(5), Step(10)), wait=300.0, gates=gates, metrics=source)
        out.append(GateRequest(plan.flag, plan, 1, 5.0))
    return out


def measure(requests: list[GateRequest], root: Path, workers: int) -> float:
    start = time.perf_counter()
    out = assess_all(requests, root=root, now=NOW, env={}, max_workers=workers)
    elapsed = time.perf_counter() - start
    bad = [f for f, results in out.items() if any(r.verdict is not Verdict.PASS for r in results)]
    if bad:
        raise SystemExit(f"unexpected verdicts for {bad[:3]}: {out[bad[0]]}")
    return elapsed


def report(name: str, requests: list[GateRequest], root: Path, workers: int) -> None:
    concurrent = measure(requests, root, workers)
    sequential = measure(requests, root, 1)
    n = len(requests)
    print(f"{name:8s} {n} rollouts, source answers in {DELAY * 1000:.0f} ms")
    print(f"  one after another : {sequential:7.2f} s  ({sequential / n * 1000:6.1f} ms/rollout)")
    print(f"  {workers} at a time      : {concurrent:7.2f} s  ({concurrent / n * 1000:6.1f} ms/rollout)")
    print(f"  ratio (sequential / concurrent): {sequential / concurrent:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rollouts", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--source", choices=("command", "http", "both"), default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.source in ("command", "both"):
            source = MetricsConfig(type="command", command=(
                "sh", "-c", f"sleep {DELAY}; printf '%s' '{json.dumps(ANSWER)}'"))
            report("command", requests_for(source, GATES, args.rollouts), root, args.workers)
        if args.source in ("http", "both"):
            with slow_prometheus() as url:
                source = MetricsConfig(type="prometheus", url=url,
                                       queries=MappingProxyType({"error_rate": 'q{flag="{{ flag }}"}'}))
                report("http", requests_for(source, (GATES[0],), args.rollouts), root, args.workers)


if __name__ == "__main__":
    main()
