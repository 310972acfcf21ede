"""Benchmark: issue 19's proof, every command of a run on repositories of 1,000 / 5,000 / 10,000
rolling flags.

The repository (:func:`build`): ``rollout init --metrics file``'s flag and plan copied N times
(``flag_00000`` …), each with its own healthy metrics file (``metrics/<flag>.json``), all in
one commit, in the **fanout state layout** (``[tool.rollout] state_layout = "fanout"``). The
gate is the plain ``error_rate: 1.0`` (the template's ``confidence`` gate needs per-step
counts a flat metrics file does not have: nothing would move). One plan in ten waits ``5m``
between steps, the others ``10m``, so the runs at T0, T0+6m and T0+12m are:

- ``advance-start``: one ``rollout advance`` starting every rollout (N commits);
- ``advance-publish``: ``advance --publish dir:…`` moving the tenth that waits 5m (N/10
  commits, then both files published; at N = 10,000 this is the "1,000 rollouts moving,
  under 60 s" case, whose wall seconds are printed too);
- ``advance-all``: every rollout moving a step after reading its gates (N commits);

then, on the 2.1N+1 commits (21,001 at 10,000), ``validate``, ``status``, ``publish --to
dir:…`` (a new folder: both files written, the flagd export checked against flagd's schema),
``history --format json``, the baseline ``git-log`` (``git log --raw --format=%H%n%B`` on the
same folders: every message and changed file of the same commits) and ``client-load``
(``FlagClient.from_file`` of the whole published ``flags.json``, a process of its own).

Each command is a real process; measured are its CPU seconds (user + system, the process and
its git children: ``os.wait4``) and peak memory (the largest resident set in the tree). Then
each command's growth exponent (least-squares slope of log CPU on log N; 1 linear, the
target <= 1.15) and ``history``'s ratio to ``git-log`` (target <= 2x).

In contrast, the **flat layout** (the default) at the sizes it is affordable (``--flat-max``,
default 5,000): ``advance-start``, ``advance-all`` and ``rollout migrate-state``. A flat runner
commit rewrites the ``rollouts/`` tree of 2N entries (git trees are flat objects), so a run
moving every rollout stays quadratic there by git's design; ``rollout migrate-state`` is the fix.

At the largest N: every rollout's next step as one ``advance`` and as 4 ``advance --shard I/4``
runs (each in its own clone of the same repository), each shard's CPU, the fixed part every
run pays whatever its share (a run with nothing due: start-up, loading and validating the
repository, the bounded history walk; and one committing a single rollout: fast-import, the
index update, syncfs on top) and each shard's share of the rollout work beyond it;
whether both reach the same states and commit count. Last, the delivery side at that N
(``benchmarks/bench_delivery.py --only-scale``: a client of one 20-flag set, load time and
bytes per change and per unchanged poll through nginx).

``--compare DIR`` also times the read-only commands with the code of another checkout
(``PYTHONPATH=DIR``) on the same repository: a change's before/after in the same run.
``--only-target`` runs only the 60-second check (build, start, the measured run).

    python benchmarks/bench_scale.py --quick          # 200 / 500 / 1,000: a few minutes
    python benchmarks/bench_scale.py                   # 1,000 / 5,000 / 10,000: ~25 min CPU
    python benchmarks/bench_scale.py --only-target     # 10,000 flags, 1,000 moving, --publish
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
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
#: The moments the runs act at (well in the past: no --now guard applies).
T0, T1, T2, T3, T4 = ("2026-01-15T12:00:00+00:00", "2026-01-15T12:06:00+00:00",
                      "2026-01-15T12:12:00+00:00", "2026-01-15T12:24:00+00:00",
                      "2026-01-15T12:34:00+00:00")
HEALTHY = {"error_rate": 0.2, "p95_latency_ms": 120, "request_count": 500}
IDENTITY = {"GIT_AUTHOR_NAME": "Bench Human", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "Bench Human", "GIT_COMMITTER_EMAIL": "bench@example.com"}
FANOUT_EXTRA = 'state_layout = "fanout"'
#: One plan in MOVING_EVERY waits 5m (moved by ``advance-publish``), the others 10m.
MOVING_EVERY = 10
COMMANDS = ("advance-start", "advance-publish", "advance-all", "validate", "status", "publish",
            "history", "git-log", "client-load")
READ_ONLY = ("validate", "status", "publish", "history")
FLAT_COMMANDS = ("advance-start", "advance-all", "migrate-state")
SHARDS = 4
TARGET_EXPONENT, TARGET_SECONDS, TARGET_HISTORY = 1.15, 60.0, 2.0
CLIENT_LOAD = ("import sys, time\nfrom runner import FlagClient\nt = time.process_time()\n"
               "FlagClient.from_file(sys.argv[1], env={}, reload_interval=3600).close()\n"
               "print(time.process_time() - t)\n")


# --- the repository ------------------------------------------------------------------------

def environment(code: Path = PROJECT) -> dict[str, str]:
    """A command's environment: no leaked ``GIT_*``/``ROLLOUT_*``, a fixed identity, the
    checkout under test first on ``PYTHONPATH``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "ROLLOUT_"))}
    env.update(IDENTITY, GIT_CONFIG_NOSYSTEM="1", PYTHONPATH=str(code))
    return env


def flag_key(i: int) -> str:
    return f"flag_{i:05d}"


def build(root: Path, n: int, *, fanout: bool = True) -> Path:
    """A repository of ``n`` flags at ``root`` (module docstring), one commit."""
    env = environment()
    subprocess.run([sys.executable, "-m", "runner", "init", "--metrics", "file", str(root)],
                   check=True, capture_output=True, env=env)
    flag_text = (root / "flags" / "new_checkout.yaml").read_text()
    plan_text = (root / "rollouts" / "new_checkout.yaml").read_text()
    (root / "flags" / "new_checkout.yaml").unlink()
    (root / "rollouts" / "new_checkout.yaml").unlink()
    plan_text, gates = re.subn(r"(?m)^  error_rate: \{.*\}$", "  error_rate: 1.0", plan_text)
    assert gates == 1, "rollout init's plan no longer has the error_rate gate this expects"
    if fanout:
        py = root / "pyproject.toml"
        py.write_text(py.read_text().replace("[tool.rollout]\n",
                                             f"[tool.rollout]\n{FANOUT_EXTRA}\n", 1))
    (root / "metrics").mkdir(exist_ok=True)
    healthy = json.dumps(HEALTHY)
    for i in range(n):
        key = flag_key(i)
        (root / "flags" / f"{key}.yaml").write_text(
            re.sub(r"(?m)^key: .*$", f"key: {key}", flag_text).replace("new_checkout", key))
        plan = re.sub(r"(?m)^flag: .*$", f"flag: {key}", plan_text).replace("new_checkout", key)
        if i % MOVING_EVERY:
            plan = re.sub(r"(?m)^wait: .*$", "wait: 10m", plan)
        (root / "rollouts" / f"{key}.yaml").write_text(plan)
        (root / "metrics" / f"{key}.json").write_text(healthy)
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                 ["git", "commit", "-q", "-m", f"{n} flags"]):
        subprocess.run(argv, cwd=root, env=env, check=True, capture_output=True)
    return root


def commits(root: Path) -> int:
    return int(subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=root, check=True,
                              capture_output=True, text=True).stdout)


# --- measuring -----------------------------------------------------------------------------

@dataclass
class Run:
    cpu: float  # seconds, user + system, the process tree
    wall: float
    peak_mb: float  # the largest resident set in the process tree
    stdout: str = ""


def measure(argv: list[str], cwd: Path, code: Path = PROJECT, *, ok: tuple[int, ...] = (0,),
            keep_output: bool = False) -> Run:
    """One process, its CPU and peak memory from ``wait4`` (its own and its children's).

    Linux counts in a child's peak the parent's resident set at the fork (``exec`` keeps the
    old address space's high-water mark), so this process must stay small: it never reads a
    command's output unless ``keep_output`` (its own peak is printed as the floor)."""
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=environment(code),
                                stdout=out if keep_output else subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        code_ = os.waitstatus_to_exitcode(status)
        if code_ not in ok:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv)} exited {code_}:\n"
                             f"{err.read().decode(errors='replace')[-2000:]}")
        out.seek(0)
        text = out.read().decode(errors="replace")
    return Run(usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, text)


def own_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rollout(*args: str) -> list[str]:
    return [sys.executable, "-m", "runner", *args]


def command(name: str, root: Path, work: Path, tag: str) -> list[str]:
    return {
        "advance-start": rollout("advance", "--now", T0),
        "advance-publish": rollout("advance", "--now", T1, "--publish",
                                   f"dir:{work / f'served-{tag}'}"),
        "advance-all": rollout("advance", "--now", T2),
        "validate": rollout("validate"),
        "status": rollout("status"),
        "publish": rollout("publish", "--to", f"dir:{work / f'public-{tag}'}"),
        "history": rollout("history", "--format", "json"),
        "git-log": ["git", "log", "--raw", "--format=%H%n%B", "--", "flags", "rollouts",
                    "rollouts-state"],
        "client-load": [sys.executable, "-c", CLIENT_LOAD,
                        str(work / f"public-{tag}" / "flags.json")],
        "migrate-state": rollout("migrate-state"),
    }[name]


def exponent(points: list[tuple[int, float]]) -> float:
    """The least-squares slope of log(cpu) on log(n)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(max(c, 1e-6)) for _, c in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return (sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
            / sum((x - mx) ** 2 for x in xs))


def table(title: str, rows: dict[str, Run], before: dict[str, Run] | None = None) -> None:
    print(title)
    print(f"  {'command':<16} {'CPU s':>8} {'wall s':>8} {'peak MB':>8}"
          + (f" {'before s':>9} {'after/before':>12}" if before else ""))
    for name, r in rows.items():
        line = f"  {name:<16} {r.cpu:8.2f} {r.wall:8.2f} {r.peak_mb:8.0f}"
        if before and name in before:
            line += f" {before[name].cpu:9.2f} {r.cpu / before[name].cpu:12.2f}"
        print(line, flush=True)


# --- the runs ------------------------------------------------------------------------------

def run_fanout(n: int, work: Path, compare: Path | None
               ) -> tuple[dict[str, Run], dict[str, Run], Path]:
    root = work / f"fanout-{n}"
    t = time.perf_counter()
    build(root, n)
    print(f"\nN = {n:,}, fanout layout: repository built in {time.perf_counter() - t:.0f}s",
          flush=True)
    ours: dict[str, Run] = {}
    theirs: dict[str, Run] = {}
    for name in COMMANDS:
        ours[name] = measure(command(name, root, work, f"{n}"), root,
                             keep_output=name == "client-load")
        if compare is not None and name in READ_ONLY:
            theirs[name] = measure(command(name, root, work, f"{n}-before"), root, compare)
    table(f"  ({commits(root):,} commits at the end)", ours, theirs)
    ratio = ours["history"].cpu / ours["git-log"].cpu
    print(f"  history / git log: {ratio:.2f}x CPU on {commits(root):,} commits "
          f"(target <= {TARGET_HISTORY:g}x)")
    load = ours["client-load"].stdout.split()
    if load:
        print(f"  client-load: of its {ours['client-load'].cpu:.2f}s, FlagClient.from_file "
              f"itself {float(load[0]):.2f}s (the rest: Python start-up and imports)")
    publishing = ours["advance-publish"]
    print(f"  advance --publish moving {n // MOVING_EVERY:,} of {n:,}: {publishing.wall:.1f}s "
          f"wall, {publishing.cpu:.1f}s CPU (target < {TARGET_SECONDS:g}s at 10,000 flags; "
          f"load average {os.getloadavg()[0]:.2f})", flush=True)
    return ours, theirs, root


def run_flat(n: int, work: Path) -> dict[str, Run]:
    root = work / f"flat-{n}"
    build(root, n, fanout=False)
    got = {name: measure(command(name, root, work, f"flat-{n}"), root)
           for name in FLAT_COMMANDS}
    table(f"\nN = {n:,}, flat layout (the default), for contrast", got)
    shutil.rmtree(root, ignore_errors=True)
    return got


def shards(root: Path, work: Path, n: int) -> None:
    """Every rollout's next step: one run against 4 shard runs, in two clones."""
    single, sharded = work / "single", work / "sharded"
    for clone in (single, sharded):
        subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True,
                       capture_output=True, env=environment())
    whole = measure(rollout("advance", "--now", T3), single)
    parts = [measure(rollout("advance", "--shard", f"{i}/{SHARDS}", "--now", T3), sharded)
             for i in range(SHARDS)]

    def states(clone: Path) -> str:
        return subprocess.run(["git", "rev-parse", "HEAD:rollouts-state"], cwd=clone,
                              check=True, capture_output=True, text=True).stdout.strip()

    same = states(single) == states(sharded) and commits(single) == commits(sharded)
    count = commits(single)
    idle = measure(rollout("advance", "--shard", f"0/{SHARDS}", "--now", T3), sharded)
    fixed = measure(rollout("advance", flag_key(0), "--now", T4), sharded)

    work_whole = whole.cpu - fixed.cpu
    print(f"\nN = {n:,}, every rollout's next step: one advance {whole.cpu:.2f}s CPU "
          f"({whole.wall:.1f}s wall), {whole.peak_mb:.0f} MB. What every run pays whatever its "
          f"share: with nothing due {idle.cpu:.2f}s (start-up, loading and validating the "
          f"repository, the history walk of its rollouts); committing one rollout "
          f"{fixed.cpu:.2f}s (+ fast-import, the index update, syncfs): the fixed part")
    for i, p in enumerate(parts):
        print(f"  shard {i}/{SHARDS}: {p.cpu:7.2f}s CPU ({p.cpu / whole.cpu:5.1%} of one run), "
              f"rollout work {p.cpu - fixed.cpu:6.2f}s "
              f"({(p.cpu - fixed.cpu) / work_whole:5.1%} of one run's), {p.peak_mb:.0f} MB")
    total = sum(p.cpu for p in parts)
    print(f"  4 shards together: {total:.2f}s CPU ({total / whole.cpu:.2f}x one run); the "
          f"slowest shard {max(p.cpu for p in parts) / whole.cpu:.1%} of one run; same states "
          f"and commit count ({count:,}): {'yes' if same else 'NO'}", flush=True)


def exponents(sizes: list[int], results: list[tuple[int, dict[str, Run], dict[str, Run]]],
              flat: list[tuple[int, dict[str, Run]]]) -> None:
    print(f"\ngrowth exponent of CPU seconds, N = {', '.join(f'{n:,}' for n in sizes)} "
          f"(log-log least squares; 1 linear, target <= {TARGET_EXPONENT})")
    for name in COMMANDS:
        pts = [(n, o[name].cpu) for n, o, _ in results if name in o]
        before = [(n, t[name].cpu) for n, _, t in results if name in t]
        e = exponent(pts)
        line = f"  {name:<16} {e:5.2f}  {'ok' if e <= TARGET_EXPONENT else 'MISSED'}"
        if len(before) == len(sizes):
            line += f"   before: {exponent(before):5.2f}"
        print(line)
    if len(flat) > 1:
        print(f"  flat layout, N = {', '.join(f'{n:,}' for n, _ in flat)} (contrast: quadratic "
              "in advance by git's tree design; `rollout migrate-state` is the fix):")
        for name in FLAT_COMMANDS:
            print(f"  {'flat ' + name:<16} {exponent([(n, r[name].cpu) for n, r in flat]):5.2f}")


def target_only(n: int, work: Path) -> None:
    root = build(work / f"target-{n}", n)
    measure(command("advance-start", root, work, "target"), root)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    r = measure(command("advance-publish", root, work, "target"), root)
    print(f"N = {n:,}, advance --publish dir:… moving {n // MOVING_EVERY:,}: {r.wall:.1f}s wall, "
          f"{r.cpu:.1f}s CPU, {r.peak_mb:.0f} MB (target < {TARGET_SECONDS:g}s); load average "
          f"after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 200, 500, 1,000")
    ap.add_argument("--sizes", help="comma-separated N (default 1000,5000,10000)")
    ap.add_argument("--flat-max", type=int, default=5000,
                    help="the flat layout's contrast up to this N (default 5,000; 0: none)")
    ap.add_argument("--compare", type=Path, metavar="DIR",
                    help="also time the read-only commands with the code in DIR")
    ap.add_argument("--no-shards", action="store_true", help="skip the 4-shard comparison")
    ap.add_argument("--no-delivery", action="store_true", help="skip bench_delivery's scale case")
    ap.add_argument("--only-target", action="store_true",
                    help="only the 60-second advance --publish check at the largest N")
    ap.add_argument("--keep", action="store_true", help="keep the repositories")
    args = ap.parse_args()
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [200, 500, 1000] if args.quick else [1000, 5000, 10000])
    print(f"bench_scale: N = {', '.join(f'{n:,}' for n in sizes)}; {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    print(f"(peak memory: the largest resident set in a command's process tree; Linux counts "
          f"this process's own, {own_peak_mb():.0f} MB, in each child's)")
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        if args.only_target:
            target_only(sizes[-1], work)
            return
        results = []
        root = work
        for n in sizes:
            ours, theirs, root = run_fanout(n, work, args.compare)
            results.append((n, ours, theirs))
        flat = [(n, run_flat(n, work)) for n in sizes if n <= args.flat_max]
        if len(sizes) > 1:
            exponents(sizes, results, flat)
        if not args.no_shards:
            shards(root, work, sizes[-1])
        if not args.no_delivery:
            print("\nthe delivery side (benchmarks/bench_delivery.py --only-scale):", flush=True)
            subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "bench_delivery.py"),
                            "--only-scale", "--flags", str(sizes[-1])], check=False)
        print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
              f"this process's own peak {own_peak_mb():.0f} MB")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
