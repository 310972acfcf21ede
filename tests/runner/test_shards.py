"""``rollout advance --shard I/N``: a stable split of the rollouts, and N shard runners racing
on one remote (real CLI processes, separate clones, one bare remote): every rollout moves
exactly once, no commit is lost, and the rejected pushes are the ones the compare-and-swap
retries."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from runner.reconcile.shard import Shard, shard_of
from tests.conftest import PROJECT, cli_env, git, run_cli

T0 = "2026-01-15T12:00:00Z"
T1 = "2026-01-15T12:06:00Z"  # past the 5-minute wait: every rollout advances a step
SHARDS = 4
KEYS = [f"feature_{i:02d}" for i in range(12)]


def test_the_split_is_stable_and_takes_each_rollout_exactly_once() -> None:
    # SHA-256 of the name: the same everywhere, pinned here so a change of hash (which would
    # move rollouts between shards of a running matrix) is seen
    assert [shard_of(n, 4) for n in ("a", "checkout", "new_checkout")] == [2, 1, 2]
    assert [shard_of(n, 7) for n in ("a", "checkout", "new_checkout")] == [4, 6, 0]
    names = [f"flag_{i}" for i in range(2000)]
    for count in (1, 2, 3, 4, 16):
        owners = [[i for i in range(count) if Shard(i, count).holds(n)] for n in names]
        assert all(len(o) == 1 for o in owners)
        sizes = Counter(o[0] for o in owners)
        # about an even share each: a fair hash, within 4 standard deviations of n/count
        fair = 2000 / count
        assert all(abs(s - fair) < 4 * (fair * (1 - 1 / count)) ** 0.5 + 1e-9
                   for s in sizes.values()), sizes
    with pytest.raises(ValueError):
        Shard(4, 4)


@pytest.mark.cli_inprocess
@pytest.mark.parametrize("value, said", [
    ("4/4", "I must be 0 to 3 (shards count from 0)"),
    ("1/0", "N must be 1 to 256"),
    ("0/257", "N must be 1 to 256"),
    ("x", "not I/N"),
    ("1/4/2", "not I/N"),
    ("=1/4", "not I/N"),
    ("", "not I/N"),
    (" 1/4", "not I/N"),
])
def test_a_bad_shard_is_one_line_exit_2_and_nothing_written(example_repo: Path, value: str,
                                                             said: str) -> None:
    head = git(example_repo, "rev-parse", "HEAD")
    out = run_cli(["advance", f"--shard={value}", "--now", T0], cwd=example_repo)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and said in out.stderr and "Traceback" not in out.stderr
    assert git(example_repo, "rev-parse", "HEAD") == head


def _repository(root: Path) -> None:
    (root / "flags").mkdir(parents=True)
    (root / "rollouts").mkdir()
    (root / "logs").mkdir()
    (root / "logs/metrics.json").write_text(json.dumps(
        {"error_rate": 0.1, "p95_latency_ms": 100, "request_count": 500}))
    (root / "pyproject.toml").write_text(
        '[tool.rollout.metrics]\ntype = "file"\npath = "logs/metrics.json"\n')
    for key in KEYS:
        (root / f"flags/{key}.yaml").write_text(
            f"key: {key}\ndescription: Shard test flag.\nowner: t\nrisk: low\n")
        (root / f"rollouts/{key}.yaml").write_text(
            f"flag: {key}\nstrategy: custom\nsteps: [0, 50, 100]\nwait: 5m\n"
            "gates:\n  error_rate: 1.0\n  request_count: 100\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "twelve rollouts")


#: A pre-push hook that holds every shard's first push until all of them are about to
#: push, so that they all push from the same remote head: one wins, the others are
#: rejected and must fetch, recompute and retry (the race, made certain).
BARRIER_HOOK = """#!/bin/sh
touch "{barrier}/{shard}"
i=0
while [ "$(ls "{barrier}" | wc -l)" -lt {count} ] && [ $i -lt 600 ]; do
  sleep 0.1; i=$((i + 1))
done
cat > /dev/null
"""


def _race(clones: list[Path], now: str, barrier: Path) -> list[subprocess.CompletedProcess[str]]:
    barrier.mkdir()
    for i, clone in enumerate(clones):
        hook = clone / ".git/hooks/pre-push"
        hook.write_text(BARRIER_HOOK.format(barrier=barrier, shard=i, count=len(clones)))
        hook.chmod(0o755)
    procs = [subprocess.Popen([sys.executable, "-m", "runner", "advance", "--push",
                               "--shard", f"{i}/{len(clones)}", "--now", now],
                              cwd=clone, env=cli_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i, clone in enumerate(clones)]
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return results


def _moves(remote: Path) -> Counter[str]:
    """Runner commits on the remote's main, by the flag their Rollout-Flag names."""
    flags = git(remote, "log", "--format=%(trailers:key=Rollout-Flag,valueonly)", "main")
    return Counter(line for line in flags.splitlines() if line.strip())


def test_four_shard_runners_racing_on_one_remote_move_every_rollout_exactly_once(
        tmp_path: Path) -> None:
    assert PROJECT.is_dir()
    source, remote = tmp_path / "source", tmp_path / "remote.git"
    _repository(source)
    owners = Counter(shard_of(k, SHARDS) for k in KEYS)
    assert sorted(owners) == list(range(SHARDS))  # every shard has rollouts to push
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(source, "remote", "add", "origin", str(remote))
    git(source, "push", "-q", "-u", "origin", "main")
    clones = []
    for i in range(SHARDS):
        clone = tmp_path / f"shard{i}"
        git(tmp_path, "clone", "-q", str(remote), str(clone))
        clones.append(clone)

    for round_, (now, expect) in enumerate([(T0, "start"), (T1, "advance")], start=1):
        results = _race(clones, now, tmp_path / f"barrier{round_}")
        for r in results:
            assert r.returncode == 0, r.stdout + r.stderr
        # all pushed from one head: exactly one first push went through, the others were
        # rejected and retried from the new head
        rejected = sum("push attempt 1 rejected" in r.stderr for r in results)
        assert rejected == SHARDS - 1, [r.stderr for r in results]
        moves = _moves(remote)
        assert moves == Counter({k: round_ for k in KEYS}), moves  # each once per round
        for i, r in enumerate(results):  # each shard moved its own rollouts, and only those
            mine = sorted(k for k in KEYS if shard_of(k, SHARDS) == i)
            said = sorted(k for k in KEYS if f"{k}:" in r.stdout or f"{k} " in r.stdout)
            assert said == mine, (i, r.stdout)
        subjects = git(remote, "log", f"-{len(KEYS)}", "--format=%s", "main").splitlines()
        assert len(subjects) == len(KEYS)
        assert all(s.startswith("rollout(feature_") for s in subjects), subjects
        assert expect == "start" or all("0% → 50%" in s for s in subjects), subjects
    # every state file on the remote is the second step's, and the history is linear
    for key in KEYS:
        state = json.loads(git(remote, "show", f"main:rollouts/{key}.state.json"))
        assert (state["step"], state["current_percentage"]) == (1, 50)
    assert git(remote, "rev-list", "--merges", "main") == ""
    assert git(remote, "fsck", "--no-progress", "--no-dangling") == ""
