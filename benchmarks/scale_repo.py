"""Build a large GitOps repository from `rollout init`'s own flag and plan, and time commands on it.

A repository of ``n`` flags is ``rollout init --metrics file``'s example flag and safe plan
copied ``n`` times (``flag_00000`` …), each with its own file metrics
(``metrics/<flag>.json``, healthy values), committed at once. The first ``moving`` plans wait
``5m`` between steps, the others ``24h`` (so a run ``wait`` after the start moves exactly
``moving`` rollouts); the last ``pending`` plans have a ``start_at`` far in the future (they
never get a runner commit: the case that used to make every run walk the whole history).

Every command runs as its own ``python -m runner`` process with ``PYTHONPATH`` set to the
checkout under test (``runner_path``), so the same generator times any version:

    from benchmarks.scale_repo import build, run_cli
    root = build(Path(tmp) / "repo", 1000, moving=100)
    took = run_cli(root, "advance", now=T0)               # starts every rollout

    python benchmarks/scale_repo.py --n 1000 2500 5000 [--runner /path/to/checkout]

prints, per N, the CPU seconds (children's user + system) and wall seconds of: the first
advance (starts every rollout: N commits), an advance moving ``moving`` rollouts, and an
advance that changes nothing; and the growth exponent fitted over the N given.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
#: The moment the repositories' runs act at (well in the past: no --now guard applies).
T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
HEALTHY = {"error_rate": 0.2, "p95_latency_ms": 120, "request_count": 500}
IDENTITY = {"GIT_AUTHOR_NAME": "Bench Human", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "Bench Human", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def environment(runner_path: Path | None = None) -> dict[str, str]:
    """The process environment of a command: no leaked ``GIT_*``, a fixed identity, the
    checkout under test first on ``PYTHONPATH``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "ROLLOUT_"))}
    env.update(IDENTITY, GIT_CONFIG_NOSYSTEM="1", PYTHONPATH=str(runner_path or PROJECT))
    return env


def flag_key(i: int) -> str:
    return f"flag_{i:05d}"


def build(root: Path, n: int, *, moving: int | None = None, pending: int = 0,
          runner_path: Path | None = None, pyproject_extra: str = "") -> Path:
    """A repository of ``n`` flags at ``root`` (module docstring); one commit. ``moving``
    (default ``n``) plans wait 5m, the rest 24h; the last ``pending`` have a future
    ``start_at``. ``pyproject_extra`` is appended to ``[tool.rollout]`` (e.g.
    ``state_layout = "fanout"``)."""
    moving = n if moving is None else moving
    env = environment(runner_path)
    subprocess.run([sys.executable, "-m", "runner", "init", "--metrics", "file", str(root)],
                   check=True, capture_output=True, env=env)
    flag_text = (root / "flags" / "new_checkout.yaml").read_text()
    plan_text = (root / "rollouts" / "new_checkout.yaml").read_text()
    (root / "flags" / "new_checkout.yaml").unlink()
    (root / "rollouts" / "new_checkout.yaml").unlink()
    if pyproject_extra:
        py = root / "pyproject.toml"
        py.write_text(py.read_text().replace("[tool.rollout]\n",
                                             f"[tool.rollout]\n{pyproject_extra.strip()}\n", 1))
    (root / "metrics").mkdir(exist_ok=True)
    healthy = json.dumps(HEALTHY)
    for i in range(n):
        key = flag_key(i)
        (root / "flags" / f"{key}.yaml").write_text(
            re.sub(r"(?m)^key: .*$", f"key: {key}", flag_text).replace("new_checkout", key))
        plan = re.sub(r"(?m)^flag: .*$", f"flag: {key}", plan_text).replace("new_checkout", key)
        if i >= moving:
            plan = re.sub(r"(?m)^wait: .*$", "wait: 24h", plan)
        if i >= n - pending:
            plan += "start_at: '2099-01-01T00:00:00Z'\n"
        (root / "rollouts" / f"{key}.yaml").write_text(plan)
        (root / "metrics" / f"{key}.json").write_text(healthy)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-q", "-m", f"{n} flags"], check=True,
                   env=env)
    return root


@dataclass(frozen=True)
class Took:
    cpu: float  # children's user + system seconds
    wall: float
    output: str


def run_cli(root: Path, *args: str, now: datetime | None = None,
            runner_path: Path | None = None, check: bool = True) -> Took:
    """One ``python -m runner COMMAND --repo root [--now now] ARGS…``, timed."""
    command = [sys.executable, "-m", "runner", args[0], "--repo", str(root),
               *(["--now", now.isoformat()] if now is not None else []), *args[1:]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True,
                          env=environment(runner_path))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and done.returncode not in (0, 4):
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Took(cpu, wall, done.stdout + done.stderr)


def exponent(ns: Sequence[int], seconds: Sequence[float]) -> float:
    """The least-squares slope of log(seconds) on log(n): the growth exponent."""
    xs = [math.log(n) for n in ns]
    ys = [math.log(max(s, 1e-6)) for s in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def measure(n: int, *, moving: int, pending: int, runner_path: Path | None,
            pyproject_extra: str) -> dict[str, Took]:
    with tempfile.TemporaryDirectory() as tmp:
        root = build(Path(tmp) / "repo", n, moving=moving, pending=pending,
                     runner_path=runner_path, pyproject_extra=pyproject_extra)
        out = {"start all": run_cli(root, "advance", now=T0, runner_path=runner_path),
               "move": run_cli(root, "advance", now=T0 + timedelta(minutes=6),
                               runner_path=runner_path),
               "nothing": run_cli(root, "advance", now=T0 + timedelta(minutes=7),
                                  runner_path=runner_path)}
        shutil.rmtree(root, ignore_errors=True)
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 2500, 5000])
    ap.add_argument("--moving", type=float, default=1.0,
                    help="the share of rollouts the second run moves (default: all)")
    ap.add_argument("--pending", type=int, default=1,
                    help="plans with a future start_at (default 1)")
    ap.add_argument("--runner", type=Path, default=None,
                    help="the checkout to time (default: this one)")
    ap.add_argument("--extra", default="", help="lines added to [tool.rollout]")
    args = ap.parse_args()
    rows: dict[str, list[float]] = {}
    for n in args.n:
        got = measure(n, moving=round(n * args.moving), pending=args.pending,
                      runner_path=args.runner, pyproject_extra=args.extra)
        for what, took in got.items():
            rows.setdefault(what, []).append(took.cpu)
            print(f"N={n:6d} {what:10s} cpu {took.cpu:7.2f} s  wall {took.wall:7.2f} s",
                  flush=True)
    if len(args.n) > 1:
        for what, secs in rows.items():
            print(f"exponent {what:10s} {exponent(args.n, secs):.2f}")


if __name__ == "__main__":
    main()
