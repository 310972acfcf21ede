"""Benchmark: ``rollout history`` against the plain ``git log`` that reads the same commits.

Builds a repository of 20,000 commits with ``git fast-import`` (runner commits with the
trailers of TRAILERS.md on 40 rollouts, human flag edits, and real ``git revert``s at the
tip), then times, in the same run:

- baseline: ``git log --raw --format=%H%n%B -- flags rollouts`` (every message and changed
  file of the same commits, printed and discarded);
- ``rollout history --format json`` (all flags) and ``rollout history FLAG``, each a real
  CLI process (interpreter start-up included).

Prints each time (best of N) and the ratio to the baseline; the target is within 2x.
Usage: python benchmarks/bench_history.py [--commits 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
FLAGS = 40
DIGEST = "sha256:" + "cd" * 32
STEPS = (0, 5, 10, 25, 50, 75, 100)


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    e.update(GIT_AUTHOR_NAME="Bench Human", GIT_AUTHOR_EMAIL="bench@example.com",
             GIT_COMMITTER_NAME="Bench Human", GIT_COMMITTER_EMAIL="bench@example.com",
             PYTHONPATH=str(PROJECT))
    return e


def flag_yaml(key: str, pct: int) -> str:
    return (f"key: {key}\ndescription: Benchmark flag {key}\nowner: bench\nrisk: low\n"
            f"default_variant: off\npercentage: {pct}\n")


def plan_yaml(key: str) -> str:
    return f"flag: {key}\nstrategy: safe\nwait: 5m\ngates:\n  error_rate: 1\n"


def state_json(key: str, pct: int, step: int) -> str:
    return (f'{{"current_percentage": {pct}, "flag": "{key}", "phase": "progressing", '
            f'"plan": "{key}", "plan_digest": "{DIGEST}", "step": {step}}}\n')


def build(root: Path, commits: int) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=env())
    keys = [f"bench_flag_{i:02d}" for i in range(FLAGS)]
    out: list[bytes] = []

    def data(text: str) -> None:
        raw = text.encode()
        out.append(b"data %d\n" % len(raw) + raw + b"\n")

    t0 = 1_700_000_000
    mark = 0

    def commit(author: str, message: str, files: dict[str, str]) -> None:
        nonlocal mark
        mark += 1
        out.append(b"commit refs/heads/main\nmark :%d\n" % mark)
        stamp = f"{t0 + mark * 60} +0000"
        out.append(f"author {author} {stamp}\ncommitter {author} {stamp}\n".encode())
        data(message)
        if mark > 1:
            out.append(b"from :%d\n" % (mark - 1))
        for path, text in files.items():
            out.append(f"M 100644 inline {path}\n".encode())
            data(text)

    human = "Bench Human <bench@example.com>"
    bot = "rollout-runner[bot] <rollout-runner@users.noreply.github.com>"
    initial = {"pyproject.toml": '[tool.rollout]\nflags_dir = "flags"\nrollouts_dir = "rollouts"\n'}
    for k in keys:
        initial[f"flags/{k}.yaml"] = flag_yaml(k, 0)
        initial[f"rollouts/{k}.yaml"] = plan_yaml(k)
    commit(human, "initial flags\n", initial)
    step = dict.fromkeys(keys, 0)
    n = 1
    while n < commits:
        k = keys[n % FLAGS]
        if n % 50 == 0:  # a person edits a flag file now and then
            commit(human, f"tune {k}\n", {f"flags/{k}.yaml": flag_yaml(k, n % 100)})
        elif n % 97 == 0:  # and some commits touch nothing the runner cares about
            commit(human, "docs\n", {"README.md": f"rev {n}\n"})
        else:
            i = step[k]
            j = (i + 1) % len(STEPS)
            before, after = STEPS[i], STEPS[j]
            action = "advance" if j else "rollback"
            subject = (f"rollout({k}): {before}% → {after}%" if j
                       else f"rollout({k}): rollback {before}% → 0%")
            gates = "\n".join(f"Rollout-Gate: {g}" for g in (
                "error_rate=0.42 pass (<= 1)", "p95_latency_ms=310 pass (<= 500)",
                "request_count=1200 pass (>= 100)"))
            message = (f"{subject}\n\nerror_rate = 0.42 (threshold <= 1, window 5m): pass\n\n"
                       f"Rollout-Flag: {k}\nRollout-Action: {action}\nRollout-From: {before}\n"
                       f"Rollout-To: {after}\nRollout-Phase: progressing\nRollout-Plan: {k}\n"
                       f"Rollout-Plan-Digest: {DIGEST}\n{gates}\nRollout-Reason: gates passed\n")
            commit(bot, message, {f"rollouts/{k}.state.json": state_json(k, after, j)})
            step[k] = j
        n += 1
    stream = b"".join(out) + b"done\n"
    subprocess.run(["git", "fast-import", "--quiet", "--done"], cwd=root, input=stream,
                   check=True, env=env())
    subprocess.run(["git", "checkout", "-q", "main"], cwd=root, check=True, env=env())
    # a few real reverts of runner commits at the tip
    for back in ("HEAD~3", "HEAD~6"):
        subprocess.run(["git", "revert", "--no-edit", back], cwd=root, check=True, env=env(),
                       capture_output=True)


def best(cmd: list[str], cwd: Path, repeat: int) -> tuple[float, float]:
    """Best wall time and best CPU time (user + system, the process and its git children)
    of ``repeat`` runs. CPU time is the steadier number on a machine shared with others."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()}")
    return min(walls), min(cpus)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        root = Path(tmp) / "repo"
        t = time.perf_counter()
        build(root, args.commits)
        count = subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=root, env=env(),
                               capture_output=True, text=True, check=True).stdout.strip()
        print(f"repository: {count} commits built in {time.perf_counter() - t:.1f}s")
        plain = ["git", "log", "--no-renames", "--raw", "--no-abbrev", "--format=%H%n%B",
                 "--", "flags", "rollouts"]
        plain_flag = ["git", "log", "--no-renames", "--raw", "--no-abbrev", "--format=%H%n%B",
                      "--", "flags/bench_flag_07.yaml", "flags/bench_flag_07.yml", "rollouts"]
        rollout = [sys.executable, "-m", "runner", "history"]
        runs = [
            ("plain git log (same commits)", plain, None),
            ("rollout history (text)", rollout, "plain"),
            ("rollout history --format json", [*rollout, "--format", "json"], "plain"),
            ("plain git log, one flag's paths", plain_flag, None),
            ("rollout history bench_flag_07", [*rollout, "bench_flag_07"], "flag"),
        ]
        baselines: dict[str, tuple[float, float]] = {}
        worst = 0.0
        for name, cmd, against in runs:
            wall, cpu = best(cmd, root, args.repeat)
            if against is None:
                baselines["plain" if "one flag" not in name else "flag"] = (wall, cpu)
                print(f"{name:<34} {wall * 1000:7.0f} ms wall {cpu * 1000:7.0f} ms cpu")
                continue
            bw, bc = baselines[against]
            worst = max(worst, wall / bw)
            print(f"{name:<34} {wall * 1000:7.0f} ms wall {cpu * 1000:7.0f} ms cpu   "
                  f"ratio {wall / bw:.2f}x wall, {cpu / bc:.2f}x cpu")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"worst wall ratio {worst:.2f}x (target: within 2x); load average {load:.2f} "
              f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
