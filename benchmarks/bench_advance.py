"""Benchmark: one `rollout advance` over many rollouts.

1. ``--rollouts`` (default 1,000) active rollouts with file metrics: one advance that moves
   every one of them a step (one commit each). Prints the time per rollout, the share spent
   in git, and — as the baseline measured in the same run — the per-rollout cost of
   committing the same kind of transition with porcelain (write, ``git add``, ``git commit``)
   on ``--baseline`` rollouts.
2. The same with two environments (staging, production): the run in which every rollout
   completes in staging and starts in production (a commit per rollout per environment),
   per rollout per environment, with the porcelain ratio of part 1.
3. ``--slow`` (default 200) rollouts whose metric source (a ``command``) answers in 100 ms:
   one advance with the default concurrency against one with ``max_workers=1``, as a ratio.

    python benchmarks/bench_advance.py                       # ~1 minute
    python benchmarks/bench_advance.py --rollouts 200 --slow 50
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.reconcile import last_change, runs
from runner.reconcile.runs import Options, advance, gates_evaluator

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
METRICS = {"error_rate": 0.2, "p95_latency_ms": 120, "request_count": 500}
GIT_ENV = {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
           "GIT_CONFIG_NOSYSTEM": "1"}


def sh(cwd: Path, *args: str) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def make_repo(root: Path, n: int, metrics: dict[str, Any], environments: bool = False) -> Path:
    (root / "flags").mkdir(parents=True)
    (root / "rollouts").mkdir()
    (root / "logs").mkdir()
    (root / "logs" / "metrics.json").write_text(json.dumps(METRICS))
    section = "\n".join(f"{k} = {json.dumps(v)}" for k, v in metrics.items())
    envs = ("\n[tool.rollout.environments.staging]\n[tool.rollout.environments.production]\n"
            if environments else "")
    (root / "pyproject.toml").write_text(f"[tool.rollout.metrics]\n{section}\n{envs}")
    for i in range(n):
        key = f"feature_{i:04d}"
        (root / "flags" / f"{key}.yaml").write_text(
            f"key: {key}\ndescription: Benchmark flag {i}.\nowner: bench\nrisk: low\n")
        (root / "rollouts" / f"{key}.yaml").write_text(
            f"flag: {key}\nstrategy: custom\nsteps: [0, 50, 100]\nwait: 5m\n"
            "gates:\n  error_rate: 1.0\n  p95_latency_ms: 500\n  request_count: 100\n")
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "benchmark flags")
    return root


class GitClock:
    """Wall time spent waiting for git child processes (and the history reader)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    @contextmanager
    def installed(self):
        real_run, real_last = subprocess.run, last_change.last_changes

        def run(args, *a, **kw):
            if not (isinstance(args, list | tuple) and args and args[0] == "git"):
                return real_run(args, *a, **kw)
            start = time.perf_counter()
            try:
                return real_run(args, *a, **kw)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        def last(*a, **kw):
            start = time.perf_counter()
            try:
                return real_last(*a, **kw)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        subprocess.run, runs.last_change.last_changes = run, last
        try:
            yield self
        finally:
            subprocess.run, runs.last_change.last_changes = real_run, real_last


def run_once(root: Path, minutes: float, workers: int = 8) -> tuple[float, runs.Report]:
    start = time.perf_counter()
    rep = advance(Options(root=root, now=T0 + timedelta(minutes=minutes)),
                  gates_evaluator(root, dict(os.environ), max_workers=workers))
    return time.perf_counter() - start, rep


def porcelain_baseline(root: Path, n: int) -> float:
    """Seconds per rollout to commit a state change the usual way: write, add, commit."""
    states = sorted((root / "rollouts").glob("*.state.json"))[:n]
    start = time.perf_counter()
    for i, path in enumerate(states):
        path.write_text(path.read_text().replace('"reason": "', f'"reason": "baseline {i} '))
        sh(root, "git", "add", str(path.relative_to(root)))
        sh(root, "git", "commit", "-q", "-m", f"baseline {i}")
    return (time.perf_counter() - start) / max(len(states), 1)


def bench_file(n: int, baseline_n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_repo(Path(tmp) / "repo", n, {"type": "file", "path": "logs/metrics.json"})
        run_once(root, 0)  # start every rollout (not measured)
        clock = GitClock()
        with clock.installed():
            took, rep = run_once(root, 5)
        moved = sum(1 for d in rep.decisions if d.action and d.action.value == "advance")
        assert moved == n, f"expected {n} advances, got {moved}"
        per = took / n
        print(f"advance over {n} active rollouts (file metrics): {took:.2f} s, "
              f"{per * 1000:.2f} ms per rollout, {len(rep.commits)} commits")
        print(f"  time in git: {clock.seconds:.2f} s ({100 * clock.seconds / took:.0f} %) "
              f"in {clock.calls} git calls")
        base = porcelain_baseline(root, baseline_n)
        print(f"  baseline, porcelain write+add+commit per transition ({baseline_n} of them): "
              f"{base * 1000:.2f} ms per rollout")
        print(f"  ratio porcelain commit alone / whole runner per rollout: {base / per:.1f}x")


def bench_environments(n: int, baseline_n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_repo(Path(tmp) / "repo", n, {"type": "file", "path": "logs/metrics.json"},
                         environments=True)
        run_once(root, 0)  # staging: start, then 50 %
        run_once(root, 5)
        clock = GitClock()
        with clock.installed():
            took, rep = run_once(root, 10)  # staging completes, production starts
        assert len(rep.commits) == 2 * n, f"expected {2 * n} commits, got {len(rep.commits)}"
        per = took / (2 * n)
        print(f"advance over {n} rollouts in 2 environments (staging completes, production "
              f"starts): {took:.2f} s, {per * 1000:.2f} ms per rollout per environment, "
              f"{len(rep.commits)} commits")
        print(f"  time in git: {clock.seconds:.2f} s ({100 * clock.seconds / took:.0f} %) "
              f"in {clock.calls} git calls")
        base = porcelain_baseline(root, baseline_n)
        print(f"  ratio porcelain commit alone / whole runner per rollout per environment: "
              f"{base / per:.1f}x")


def bench_slow(n: int) -> None:
    answer = json.dumps(METRICS)
    metrics = {"type": "command", "command": ["sh", "-c", f"sleep 0.1; printf '%s' '{answer}'"],
               "timeout": "5s"}
    times = {}
    for workers in (8, 1):
        with tempfile.TemporaryDirectory() as tmp:
            root = make_repo(Path(tmp) / "repo", n, metrics)
            run_once(root, 0, workers)  # start: no evaluation
            took, rep = run_once(root, 5, workers)
            moved = sum(1 for d in rep.decisions if d.action and d.action.value == "advance")
            assert moved == n, f"expected {n} advances, got {moved}"
            times[workers] = took
    print(f"advance over {n} rollouts whose source answers in 100 ms: concurrent (8 workers) "
          f"{times[8]:.2f} s, one after another {times[1]:.2f} s: "
          f"{times[1] / times[8]:.1f}x faster")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rollouts", type=int, default=1000)
    ap.add_argument("--baseline", type=int, default=100)
    ap.add_argument("--slow", type=int, default=200)
    args = ap.parse_args()
    if args.rollouts:
        bench_file(args.rollouts, min(args.baseline, args.rollouts))
        bench_environments(args.rollouts, min(args.baseline, args.rollouts))
    if args.slow:
        bench_slow(args.slow)


if __name__ == "__main__":
    main()
