"""Benchmark: ``rollout status`` over many rollouts with a long history.

Builds (``git fast-import``) a repository of ``--rollouts`` (default 200) rollouts, each
driven through ``--commits-per`` (default 100) runner commits — advances and rollbacks,
retries that start a new run — so the rollouts folder holds ~20,000 commits, then times, in
the same run:

- baseline: ``git log -n 1 -- rollouts`` (a git process over the same repository);
- ``rollout status`` (text), ``--format markdown`` (which reads the bounded history of
  each active rollout's current run for its timeline) and ``--format openmetrics``, each a
  real CLI process (interpreter start-up included).

Prints each time (best of N, wall and CPU) and the ratio to the baseline. With
``--before REV`` each command is also timed with the runner of that revision of this
checkout (``git archive``d to a temporary folder), interleaved, for a before/after ratio
measured in the same run on the same load.
Usage: python benchmarks/bench_status.py [--rollouts 200] [--commits-per 100] [--repeat 3]
       [--before REV]
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
STEPS = (0, 5, 10, 25, 50, 75, 100)
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def env(code: Path = PROJECT) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    e.update(GIT_AUTHOR_NAME="Bench Human", GIT_AUTHOR_EMAIL="bench@example.com",
             GIT_COMMITTER_NAME="Bench Human", GIT_COMMITTER_EMAIL="bench@example.com",
             GIT_CONFIG_NOSYSTEM="1", PYTHONPATH=str(code), ROLLOUT_ALLOW_FUTURE_NOW="1")
    return e


def iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def build(root: Path, rollouts: int, per: int) -> int:
    """The repository; returns the time of its last commit (the ``--now`` to judge by)."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=env())
    sys.path.insert(0, str(PROJECT))
    from runner.load import check_repository

    keys = [f"bench_flag_{i:03d}" for i in range(rollouts)]
    out: list[bytes] = []
    mark = 0

    def data(text: str) -> None:
        raw = text.encode()
        out.append(b"data %d\n" % len(raw) + raw + b"\n")

    def commit(author: str, stamp: int, message: str, files: dict[str, str]) -> None:
        nonlocal mark
        mark += 1
        out.append(b"commit refs/heads/main\nmark :%d\n" % mark)
        out.append(f"author {author} {stamp} +0000\ncommitter {author} {stamp} +0000\n".encode())
        data(message)
        if mark > 1:
            out.append(b"from :%d\n" % (mark - 1))
        for path, text in files.items():
            out.append(f"M 100644 inline {path}\n".encode())
            data(text)

    human = "Bench Human <bench@example.com>"
    bot = "rollout-runner[bot] <rollout-runner@users.noreply.github.com>"
    files = {"pyproject.toml": ('[tool.rollout]\nflags_dir = "flags"\nrollouts_dir = "rollouts"\n'
                               '[tool.rollout.metrics]\ntype = "file"\npath = "metrics.json"\n')}
    for k in keys:
        files[f"flags/{k}.yaml"] = (f"key: {k}\ndescription: Benchmark flag {k}\nowner: bench\n"
                                    f"risk: low\ndefault_variant: 'off'\n")
        files[f"rollouts/{k}.yaml"] = f"flag: {k}\nstrategy: safe\nwait: 5m\ngates:\n  error_rate: 1\n"
    # the plans' digests, as the loader computes them
    tmp = root.parent / "digests"
    for path, text in files.items():
        (tmp / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp / path).write_text(text)
    repo = check_repository(tmp).repository
    assert repo is not None
    digest = {k: repo.plans[k].digest for k in keys}
    commit(human, T0, "initial flags\n", files)
    stamp = T0
    step = dict.fromkeys(keys, -1)
    started = dict.fromkeys(keys, T0)
    for n in range(rollouts * per):
        k = keys[n % rollouts]
        stamp += 60 // max(1, rollouts // 60) or 1
        i = step[k]
        if i < 0 or i == len(STEPS) - 1:
            action, j, phase, started[k] = ("start" if i < 0 else "retry"), 1, "progressing", stamp
        elif n % 7 == 3:
            action, j, phase = "rollback", 0, "rolled_back"
        else:
            action, j, phase = "advance", i + 1, "progressing"
        if step[k] == 0:  # after a rollback: retry
            action, j, phase, started[k] = "retry", 1, "progressing", stamp
        before, after = STEPS[max(i, 0)], STEPS[j]
        state = (f'{{"consecutive_errors": 0, "consecutive_failures": 0, '
                 f'"consecutive_inconclusive": 0, "current_percentage": {after}, '
                 f'"failures": 0, "flag": "{k}", "last_evaluated_at": "{iso(stamp)}", '
                 f'"last_gates": [{{"detail": "", "dry_run": false, "evaluated_at": '
                 f'"{iso(stamp)}", "name": "error_rate", "threshold": "<= 1", '
                 f'"value": 0.42, "verdict": "pass"}}], "phase": "{phase}", "plan": "{k}", '
                 f'"plan_digest": "{digest[k]}", "reason": "gates passed", '
                 f'"started_at": "{iso(started[k])}", "step": {j}, '
                 f'"step_started_at": "{iso(stamp)}"}}\n')
        message = (f"rollout({k}): {before}% → {after}%\n\ngates passed\n\n"
                   f"Rollout-Flag: {k}\nRollout-Action: {action}\nRollout-From: {before}\n"
                   f"Rollout-To: {after}\nRollout-Phase: {phase}\nRollout-Plan: {k}\n"
                   f"Rollout-Plan-Digest: {digest[k]}\n"
                   f"Rollout-Gate: error_rate=0.42 pass (<= 1)\nRollout-Reason: gates passed\n")
        commit(bot, stamp, message, {f"rollouts/{k}.state.json": state})
        step[k] = j
    subprocess.run(["git", "fast-import", "--quiet", "--done"], cwd=root,
                   input=b"".join(out) + b"done\n", check=True, env=env())
    subprocess.run(["git", "checkout", "-q", "main"], cwd=root, check=True, env=env())
    return stamp


def best(cmd: list[str], cwd: Path, repeat: int, code: Path = PROJECT) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env(code), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()[:2000]}")
    return min(walls), min(cpus)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rollouts", type=int, default=200)
    ap.add_argument("--commits-per", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--formats", default="text,markdown,openmetrics")
    ap.add_argument("--before", metavar="REV", help="also time the runner of REV")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        root = Path(tmp) / "repo"
        old = None
        if args.before:
            old = Path(tmp) / "before"
            old.mkdir()
            archive = subprocess.run(["git", "archive", args.before, "runner", "schemas"],
                                     cwd=PROJECT, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        t = time.perf_counter()
        last = build(root, args.rollouts, args.commits_per)
        count = subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=root, env=env(),
                               capture_output=True, text=True, check=True).stdout.strip()
        print(f"repository: {args.rollouts} rollouts, {count} commits, built in "
              f"{time.perf_counter() - t:.1f}s")
        base_wall, base_cpu = best(["git", "log", "-n", "1", "--", "rollouts"], root,
                                   args.repeat)
        print(f"{'git log -n 1 -- rollouts':<34} {base_wall * 1000:7.0f} ms wall "
              f"{base_cpu * 1000:7.0f} ms cpu")
        for fmt in args.formats.split(","):
            cmd = [sys.executable, "-m", "runner", "status", "--format", fmt,
                   "--now", iso(last + 60)]
            oc = None
            if old is not None:
                try:
                    ow, oc = best(cmd, root, args.repeat, old)
                except SystemExit:
                    print(f"{'  before: --format ' + fmt:<34} (not a format of {args.before})")
                else:
                    print(f"{'  before: --format ' + fmt:<34} {ow * 1000:7.0f} ms wall "
                          f"{oc * 1000:7.0f} ms cpu")
            wall, cpu = best(cmd, root, args.repeat)
            line = (f"{'rollout status --format ' + fmt:<34} {wall * 1000:7.0f} ms wall "
                    f"{cpu * 1000:7.0f} ms cpu   ratio {wall / base_wall:.1f}x wall")
            if oc:
                line += f", {cpu / oc:.2f}x the CPU time before"
            print(line)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"load average {load:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
