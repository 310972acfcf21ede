"""Benchmark: every command of a run on repositories of 1,000 / 5,000 / 10,000 rolling flags.

Builds, per N, a repository of ``rollout init``'s own flag and plan copied N times (each flag
with its rollout and its own metrics file, ``metrics/{{ flag }}.json``), all imported in one
commit, then runs each command as a real CLI process and measures its CPU seconds (user +
system, the process and its git children: ``os.wait4``) and peak memory (the largest
resident set of the process tree):

- ``validate``, ``status``;
- ``advance-start``: one ``rollout advance`` starting every rollout (N commits);
- ``advance``: the next one, every rollout moving a step after reading its gates (N commits);
- ``publish``: ``rollout publish --to dir:…`` into a new folder (both files written, the
  flagd export checked against flagd's schema);
- ``history``: ``rollout history --format json`` over the 2N+1 commits;
- ``git-log``: the baseline measured in the same run, ``git log --raw --format=%H%n%B --
  flags rollouts`` (every message and changed file of the same commits).

It prints a table per N, then each command's growth exponent (the slope of log CPU against
log N, least squares: 1 is linear, 2 quadratic; the target is <= 1.15) and ``history``'s ratio
to ``git-log``. At the largest N it also runs the next step of every rollout once as one
``advance`` and once as 4 ``advance --shard I/4`` runs (each in its own clone of the same
repository), and prints each shard's share of the single run's CPU (about a quarter each, plus
what every run pays whatever its share: start-up, loading the repository) and whether both
reach the same states.

``--compare DIR`` also times the read-only commands (validate, status, publish, history) with
the code of another checkout (``PYTHONPATH=DIR``) on the same repository: the before/after
ratio of a change, in the same run.

    python benchmarks/bench_scale.py --quick                 # 200 / 500 / 1,000: a few minutes
    python benchmarks/bench_scale.py                          # 1,000 / 5,000 / 10,000: long
    python benchmarks/bench_scale.py --sizes 1000,5000 --compare /path/to/main --only publish,history
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
INIT = PROJECT / "runner" / "templates" / "init"
T0, T1, T2 = "2026-01-15T12:00:00Z", "2026-01-15T12:06:00Z", "2026-01-15T12:12:00Z"
METRICS = {"error_rate": 0.2, "p95_latency_ms": 120, "request_count": 500}
COMMANDS = ("validate", "status", "advance-start", "advance", "publish", "history", "git-log")
READ_ONLY = ("validate", "status", "publish", "history")
SHARDS = 4


@dataclass
class Run:
    cpu: float  # seconds, user + system, the process tree
    wall: float
    peak_mb: float  # the largest resident set in the process tree


def env(code: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    e.update(PYTHONPATH=str(code), ROLLOUT_ALLOW_FUTURE_NOW="1", GIT_CONFIG_NOSYSTEM="1",
             GIT_AUTHOR_NAME="Bench Human", GIT_AUTHOR_EMAIL="bench@example.com",
             GIT_COMMITTER_NAME="Bench Human", GIT_COMMITTER_EMAIL="bench@example.com")
    return e


def measure(argv: list[str], cwd: Path, code: Path = PROJECT) -> Run:
    """One process, its CPU and peak memory from ``wait4`` (its own and its children's)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env(code), stdout=subprocess.DEVNULL,
                                stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n"
                             f"{err.read().decode(errors='replace')[-2000:]}")
    return Run(usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024)


def rollout(*args: str) -> list[str]:
    return [sys.executable, "-m", "runner", *args]


def build_scale_repository(root: Path, n: int) -> None:
    """``rollout init``'s flag and plan N times, each with its metrics file, in one commit."""
    flag, plan = ((INIT / name).read_text(encoding="utf-8") for name in ("flag.yaml", "rollout.yaml"))
    for folder in ("flags", "rollouts", "metrics", "schemas"):
        (root / folder).mkdir(parents=True)
    shutil.copy(INIT / "pyproject-file.toml", root / "pyproject.toml")
    for schema in (PROJECT / "schemas").glob("*.json"):
        shutil.copy(schema, root / "schemas" / schema.name)
    metrics = json.dumps(METRICS)
    for i in range(n):
        key = f"flag_{i:05d}"
        (root / "flags" / f"{key}.yaml").write_text(flag.replace("new_checkout", key))
        (root / "rollouts" / f"{key}.yaml").write_text(plan.replace("new_checkout", key))
        (root / "metrics" / f"{key}.json").write_text(metrics)
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                 ["git", "commit", "-q", "-m", f"import {n} flags"]):
        subprocess.run(argv, cwd=root, env=env(PROJECT), check=True, capture_output=True)


def command(name: str, root: Path, out: Path) -> list[str]:
    return {
        "validate": rollout("validate"),
        "status": rollout("status"),
        "advance-start": rollout("advance", "--now", T0),
        "advance": rollout("advance", "--now", T1),
        "publish": rollout("publish", "--to", f"dir:{out}"),
        "history": rollout("history", "--format", "json"),
        "git-log": ["git", "log", "--raw", "--format=%H%n%B", "--", "flags", "rollouts"],
    }[name]


def run_size(n: int, work: Path, only: set[str], compare: Path | None
             ) -> tuple[dict[str, Run], dict[str, Run], Path]:
    root = work / f"n{n}"
    t = time.perf_counter()
    build_scale_repository(root, n)
    print(f"\nN = {n:,}: repository built in {time.perf_counter() - t:.1f}s")
    ours: dict[str, Run] = {}
    theirs: dict[str, Run] = {}
    for i, name in enumerate(COMMANDS):
        mutates = name.startswith("advance")
        if not mutates and name not in only:
            continue
        out = work / f"public-{n}-{i}"
        ours[name] = measure(command(name, root, out), root)
        if compare is not None and name in READ_ONLY:
            theirs[name] = measure(command(name, root, work / f"before-{n}-{i}"), root, compare)
    print(f"{'command':<14} {'CPU s':>8} {'wall s':>8} {'peak MB':>8}"
          + (f" {'before s':>9} {'after/before':>12}" if theirs else ""))
    for name, r in ours.items():
        line = f"{name:<14} {r.cpu:8.2f} {r.wall:8.2f} {r.peak_mb:8.0f}"
        if name in theirs:
            line += f" {theirs[name].cpu:9.2f} {r.cpu / theirs[name].cpu:12.2f}"
        print(line, flush=True)
    if "history" in ours and "git-log" in ours:
        print(f"history / git log: {ours['history'].cpu / ours['git-log'].cpu:.2f}x CPU "
              f"(target: <= 2x)")
    return ours, theirs, root


def exponent(points: list[tuple[int, float]]) -> float:
    """The least-squares slope of log(cpu) on log(n)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(max(c, 1e-6)) for _, c in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return (sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
            / sum((x - mx) ** 2 for x in xs))


def shards(root: Path, work: Path, n: int) -> None:
    """The next step of every rollout: one run against 4 shard runs, in two clones."""
    single, sharded = work / "single", work / "sharded"
    for clone in (single, sharded):
        subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True,
                       capture_output=True, env=env(PROJECT))
    whole = measure(rollout("advance", "--now", T2), single)
    parts = [measure(rollout("advance", "--shard", f"{i}/{SHARDS}", "--now", T2), sharded)
             for i in range(SHARDS)]

    def states(clone: Path) -> str:
        return subprocess.run(["git", "rev-parse", "HEAD:rollouts"], cwd=clone, check=True,
                              capture_output=True, text=True).stdout.strip()

    print(f"\nN = {n:,}, every rollout's next step: one advance {whole.cpu:.2f}s CPU, "
          f"{whole.peak_mb:.0f} MB")
    for i, p in enumerate(parts):
        print(f"  shard {i}/{SHARDS}: {p.cpu:7.2f}s CPU ({p.cpu / whole.cpu:5.1%} of one run), "
              f"{p.peak_mb:.0f} MB")
    total = sum(p.cpu for p in parts)
    print(f"  4 shards together: {total:.2f}s CPU ({total / whole.cpu:.2f}x one run); the "
          f"slowest shard {max(p.cpu for p in parts) / whole.cpu:.1%} of one run; same states: "
          f"{'yes' if states(single) == states(sharded) else 'NO'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 200, 500, 1,000")
    ap.add_argument("--sizes", help="comma-separated N (default 1000,5000,10000)")
    ap.add_argument("--only", help=f"comma-separated commands of {', '.join(COMMANDS)} "
                    "(the advance runs always run: they make the history)")
    ap.add_argument("--compare", type=Path, metavar="DIR",
                    help="also time the read-only commands with the code in DIR")
    ap.add_argument("--no-shards", action="store_true", help="skip the 4-shard comparison")
    ap.add_argument("--keep", action="store_true", help="keep the repositories")
    args = ap.parse_args()
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [200, 500, 1000] if args.quick else [1000, 5000, 10000])
    only = set(args.only.split(",")) if args.only else set(COMMANDS)
    print(f"bench_scale: N = {', '.join(f'{n:,}' for n in sizes)}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results: list[tuple[int, dict[str, Run], dict[str, Run]]] = []
    try:
        root = work
        for n in sizes:
            ours, theirs, root = run_size(n, work, only, args.compare)
            results.append((n, ours, theirs))
        if len(sizes) > 1:
            print("\ngrowth exponent of CPU seconds (log-log least squares; 1 linear, "
                  "target <= 1.15)")
            for name in COMMANDS:
                pts = [(n, o[name].cpu) for n, o, _ in results if name in o]
                before = [(n, t[name].cpu) for n, _, t in results if name in t]
                if len(pts) == len(sizes):
                    line = f"  {name:<14} {exponent(pts):5.2f}"
                    if len(before) == len(sizes):
                        line += f"   before: {exponent(before):5.2f}"
                    print(line)
        if not args.no_shards:
            shards(root, work, sizes[-1])
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
