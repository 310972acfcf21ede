"""Environments end to end (issue 20): real git with a bare remote, the real CLI in process.

staging walks to 100 %, production waits out the soak and then walks; a breach in staging
after production started rolls staging back, pauses production and rejects the plan version;
`rollout retry --env staging` re-admits it; a person's revert of a production step holds only
production; racing runners move each environment one step per run.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, run_cli

pytestmark = pytest.mark.cli_inprocess

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
STAGING = "rollouts/checkout.staging.state.json"
PRODUCTION = "rollouts/checkout.production.state.json"

CONFIG = """\
[tool.rollout]
flags_dir = "flags"
rollouts_dir = "rollouts"

[tool.rollout.metrics]
type = "file"
path = "metrics/{{ flag }}.json"

[tool.rollout.environments.staging]
metrics = { type = "file", path = "metrics/staging/{{ flag }}.json" }

[tool.rollout.environments.production]
"""
FLAG = "key: checkout\ndescription: the new checkout\nowner: shop\nrisk: low\n"
PLAN = """\
flag: checkout
strategy: custom
steps: [0, 50, 100]
wait: 5m
gates:
  error_rate: 1.0
promote_after: 1h
environments:
  staging: {}
  production:
    steps: [0, 10, 100]
"""


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def rollout(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), cwd=repo)


def advance(repo: Path, minutes: float, *args: str) -> subprocess.CompletedProcess[str]:
    out = rollout(repo, "advance", "--now", at(minutes), *args)
    assert out.returncode in (0, 4), out.stderr
    return out


def metrics(repo: Path, env: str, error_rate: float) -> None:
    folder = repo / "metrics" / ("staging" if env == "staging" else "")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "checkout.json").write_text(json.dumps({"error_rate": error_rate}))


def state(repo: Path, path: str) -> dict[str, Any]:
    return json.loads((repo / path).read_text())


def subjects(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%s").splitlines()


def two_environments(tmp_path: Path, plan: str = PLAN) -> Path:
    """A repository of one flag and ``plan`` in staging and production, healthy metrics in
    both, pushed to a bare remote."""
    root = tmp_path / "repo"
    (root / "flags").mkdir(parents=True)
    (root / "rollouts").mkdir()
    (root / "pyproject.toml").write_text(CONFIG)
    (root / "flags" / "checkout.yaml").write_text(FLAG)
    (root / "rollouts" / "checkout.yaml").write_text(plan)
    (root / ".gitignore").write_text("metrics/\n")
    metrics(root, "staging", 0.1)
    metrics(root, "production", 0.1)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "checkout in two environments")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "-q", "-u", "origin", "main")
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return two_environments(tmp_path)


def _walk_staging(repo: Path) -> None:
    for minute in (0, 6, 12):
        advance(repo, minute, "--push")


def test_staging_walks_then_production_waits_out_the_soak(repo: Path) -> None:
    _walk_staging(repo)
    assert state(repo, STAGING)["phase"] == "completed"
    assert state(repo, STAGING)["environment"] == "staging"
    assert state(repo, STAGING)["completed_at"] == at(12)
    assert not (repo / PRODUCTION).exists()
    assert subjects(repo)[:3] == ["rollout(checkout@staging): 50% → 100%",
                                  "rollout(checkout@staging): 0% → 50%",
                                  "rollout(checkout@staging): start at 0%"]
    assert git(repo, "log", "-1", "--format=%(trailers:key=Rollout-Environment,valueonly)"
               ).strip() == "staging"

    advance(repo, 60, "--push")  # 48 minutes of the 1h soak: nothing
    assert not (repo / PRODUCTION).exists()
    shown = json.loads(rollout(repo, "status", "checkout", "--env", "production", "--now", at(60),
                               "--format", "json").stdout)
    assert shown["environment"] == "production"
    assert "waiting for staging: completed 48m ago, promote_after 1h" in shown["reason"]
    # a person's retry is held to the soak too
    early = rollout(repo, "retry", "checkout", "--env", "production", "--now", at(61))
    assert early.returncode == 1 and "promote_after 1h" in early.stderr

    advance(repo, 73, "--push")
    assert state(repo, PRODUCTION)["phase"] == "progressing"
    for minute in (79, 85):
        advance(repo, minute, "--push")
    assert state(repo, PRODUCTION)["phase"] == "completed"
    assert subjects(repo)[:3] == ["rollout(checkout@production): 10% → 100%",
                                  "rollout(checkout@production): 0% → 10%",
                                  "rollout(checkout@production): start at 0%"]
    assert git(repo, "rev-parse", "HEAD") == git(repo, "rev-parse", "origin/main")
    rows = json.loads(rollout(repo, "status", "--format", "json", "--now", at(86)).stdout)
    assert [(r["flag"], r["environment"], r["phase"]) for r in rows] == [
        ("checkout", "staging", "completed"), ("checkout", "production", "completed")]
    staging_only = rollout(repo, "history", "checkout", "--env", "staging").stdout
    assert "@staging" in staging_only and "@production" not in staging_only


def test_breach_in_staging_rejects_the_version_until_retry(repo: Path) -> None:
    _walk_staging(repo)
    advance(repo, 73)
    advance(repo, 79)
    assert state(repo, PRODUCTION)["current_percentage"] == 10

    metrics(repo, "staging", 5.0)  # staging breaks while production runs
    out = advance(repo, 80)
    assert out.returncode == 4
    assert state(repo, STAGING)["phase"] == "rolled_back"
    prod = state(repo, PRODUCTION)
    assert prod["phase"] == "paused" and "rejected: rolled back in staging" in prod["reason"]
    assert subjects(repo)[:2] == ["rollout(checkout@production): pause at 10%",
                                  "rollout(checkout@staging): rollback 100% → 0%"]

    refused = rollout(repo, "retry", "checkout", "--env", "production", "--now", at(81))
    assert refused.returncode == 1 and "rejected" in refused.stderr
    assert rollout(repo, "retry", "checkout", "--now", at(81)).returncode == 2  # which env?

    metrics(repo, "staging", 0.1)
    assert rollout(repo, "retry", "checkout", "--env", "staging", "--now", at(82)).returncode == 0
    for minute in (88, 94):
        advance(repo, minute)
    assert state(repo, STAGING)["phase"] == "completed"
    advance(repo, 120)  # staging completed again, but the soak is not over
    assert state(repo, PRODUCTION)["phase"] == "paused"
    advance(repo, 155)
    prod = state(repo, PRODUCTION)
    assert prod["phase"] == "progressing" and prod["current_percentage"] == 0
    assert "re-admitted" in prod["reason"]


def test_revert_of_a_production_step_holds_only_production(repo: Path) -> None:
    _walk_staging(repo)
    advance(repo, 73)
    advance(repo, 79)
    step = git(repo, "rev-parse", "HEAD")
    assert subjects(repo)[0] == "rollout(checkout@production): 0% → 10%"
    staging_before = (repo / STAGING).read_bytes()
    git(repo, "revert", "--no-edit", step)
    advance(repo, 85)
    prod = state(repo, PRODUCTION)
    assert prod["phase"] == "paused" and prod["reason"].startswith("held")
    assert subjects(repo)[0].startswith("rollout(checkout@production): hold at 0%")
    assert (repo / STAGING).read_bytes() == staging_before
    assert not any("@staging" in s for s in subjects(repo)[:2])


def test_racing_runners_move_each_environment_one_step(repo: Path, tmp_path: Path) -> None:
    """Ten clones run the same minute and push: each environment moves exactly once."""
    _walk_staging(repo)
    advance(repo, 73, "--push")  # production started
    clones = []
    for i in range(10):
        clone = tmp_path / f"clone{i}"
        git(tmp_path, "clone", "-q", str(tmp_path / "remote.git"), str(clone))
        metrics(clone, "staging", 0.1)
        metrics(clone, "production", 0.1)
        clones.append(clone)
    procs = [subprocess.Popen(
        ["python3", "-m", "runner", "advance", "--now", at(79), "--push"], cwd=c,
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in clones]
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    git(repo, "pull", "-q", "--ff-only")
    assert subjects(repo)[0] == "rollout(checkout@production): 0% → 10%"
    assert subjects(repo)[1] == "rollout(checkout@production): start at 0%"
    assert state(repo, PRODUCTION)["current_percentage"] == 10


def _env() -> dict[str, str]:
    from tests.conftest import cli_env

    return cli_env()


def test_kill_9_at_each_crash_point_converges_per_environment(repo: Path) -> None:
    """One run that commits in both environments (staging completes, production starts: no
    soak), killed at each point of the commit protocol: a clean run then leaves each
    environment exactly one step further, each transition committed once."""
    import signal
    import sys

    from runner.reconcile import crashpoints
    from tests.conftest import cli_env

    (repo / "rollouts" / "checkout.yaml").write_text(PLAN.replace("promote_after: 1h\n", ""))
    git(repo, "commit", "-q", "-am", "no soak")
    advance(repo, 0)
    advance(repo, 6)
    base = git(repo, "rev-parse", "HEAD")
    for point in crashpoints.POINTS:
        git(repo, "reset", "-q", "--hard", base)
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "advance", "--now", at(12)], cwd=repo,
            env=cli_env({crashpoints.VARIABLE: f"{point}:30"}), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        assert "test hook: sleeping" in proc.stdout.readline()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        git(repo, "fsck", "--no-progress")
        advance(repo, 12)
        assert state(repo, STAGING)["phase"] == "completed", point
        assert state(repo, PRODUCTION)["phase"] == "progressing", point
        heads = git(repo, "log", "--format=%s", f"{base}..HEAD").splitlines()
        assert heads == ["rollout(checkout@production): start at 0%",
                         "rollout(checkout@staging): 50% → 100%"], (point, heads)
        assert git(repo, "status", "--porcelain", "--", "rollouts") == "", point


def test_a_freeze_of_production_holds_it_while_staging_walks(repo: Path) -> None:
    """Production's own freeze window: staging walks and completes, production does not start
    during the window although its soak is over, and starts at the first run after it."""
    with (repo / "pyproject.toml").open("a") as f:
        f.write('freeze = [{start = "2026-01-15T12:00:00Z", end = "2026-01-15T14:00:00Z", '
                'reason = "release train"}]\n')
    git(repo, "commit", "-qam", "production frozen until 14:00")
    git(repo, "push", "-q", "origin", "main")
    _walk_staging(repo)
    assert state(repo, STAGING)["phase"] == "completed"  # the freeze is production's only
    out = advance(repo, 73)  # the soak is over: production would start now
    assert not (repo / PRODUCTION).exists(), out.stdout
    shown = json.loads(rollout(repo, "status", "checkout", "--env", "production", "--now",
                               at(73), "--format", "json").stdout)
    assert "frozen until 2026-01-15T14:00:00Z: release train" in json.dumps(shown)
    advance(repo, 121)
    assert state(repo, PRODUCTION)["phase"] == "progressing"
    assert subjects(repo)[0] == "rollout(checkout@production): start at 0%"


def test_a_halt_of_production_holds_it_while_staging_walks(repo: Path) -> None:
    """``rollout halt --env production`` stops production's line only: staging walks to 100 %,
    production does not start until ``rollout unhalt --env production``."""
    env = {"ROLLOUT_REQUESTED_BY": "alice"}
    out = run_cli(["halt", "--env", "production", "--reason", "incident 7", "--push",
                   "--now", at(0)], cwd=repo, env=env)
    assert out.returncode == 0, out.stderr
    assert git(repo, "show", "--name-only", "--format=", "HEAD") == "rollouts/HALT.production.json"
    for minute in (1, 7, 13):
        advance(repo, minute, "--push")
    assert state(repo, STAGING)["phase"] == "completed"
    advance(repo, 80, "--push")
    assert not (repo / PRODUCTION).exists()
    text = rollout(repo, "status", "--now", at(80)).stdout
    assert "halted by alice at 2026-01-15T12:00:00Z: incident 7" in text
    assert "rollout unhalt --env production" in text
    out = run_cli(["unhalt", "--env", "production", "--push", "--now", at(81)], cwd=repo,
                  env={"ROLLOUT_REQUESTED_BY": "bob"})
    assert out.returncode == 0, out.stderr
    advance(repo, 82, "--push")
    assert state(repo, PRODUCTION)["phase"] == "progressing"
