"""Freeze windows and the halt switch in the runner: real git (a bare remote where pushing
matters), the real CLI. A freeze or a halt holds every start, advance and completion with its
reason (nothing committed for the hold); a failing gate still rolls back; status says it."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, run_cli
from tests.runner.helpers import (
    advance,
    at,
    rollout,
    state,
    subjects,
    trailer,
    write_metrics,
)

pytestmark = pytest.mark.cli_inprocess

FLAG = "phase_4_deployment"
HALT = "rollouts/HALT.json"


def _freeze(repo: Path, windows: str) -> None:
    path = repo / "pyproject.toml"
    path.write_text(path.read_text().replace(
        'rollouts_dir = "rollouts"\n', f'rollouts_dir = "rollouts"\nfreeze = [{windows}]\n', 1))
    git(repo, "commit", "-q", "-am", "freeze")


def _status(repo: Path, minutes: float) -> dict[str, Any]:
    out = rollout(repo, "status", FLAG, "--format", "json", "--now", at(minutes))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _started_at_5(repo: Path) -> None:
    write_metrics(repo)
    assert advance(repo, 0).returncode == 0
    assert advance(repo, 5).returncode == 0
    assert state(repo)["current_percentage"] == 5


def test_a_freeze_holds_advancing_while_a_breach_still_rolls_back(example_repo: Path) -> None:
    _started_at_5(example_repo)
    # T0 is 2026-01-15 12:00 UTC; the freeze runs from 12:08 to 13:00
    _freeze(example_repo, '{start = "2026-01-15T12:08:00Z", end = "2026-01-15T13:00:00Z", '
                          'reason = "launch day"}')
    head = git(example_repo, "rev-parse", "HEAD")
    out = advance(example_repo, 10)
    assert out.returncode == 0, out.stderr
    why = "frozen until 2026-01-15T13:00:00Z: launch day"
    assert f"held at 5%: {why}; advances once it is over" in out.stdout
    assert git(example_repo, "rev-parse", "HEAD") == head  # no commit for a hold
    assert state(example_repo)["current_percentage"] == 5
    s = _status(example_repo, 10)
    assert s["frozen"] == {"until": "2026-01-15T13:00:00Z", "reason": "launch day",
                           "text": why}
    assert s["next_step_at"] == "2026-01-15T13:00:00Z"
    assert "halted" not in s
    text = rollout(example_repo, "status", "--now", at(10)).stdout
    assert f"  {why}: nothing starts, advances or completes until then" in text
    md = rollout(example_repo, "status", "--format", "markdown", "--now", at(10)).stdout
    assert "> [!WARNING]\n> frozen until 2026-01-15T13:00:00Z: launch day: no rollout" in md
    om = rollout(example_repo, "status", "--format", "openmetrics", "--now", at(10)).stdout
    assert f'rollout_frozen_until_timestamp_seconds{{flag="{FLAG}",plan="{FLAG}"}}' in om
    # a breach in the freeze: rolled back all the same
    write_metrics(example_repo, error_rate=1.7)
    out = advance(example_repo, 12)
    assert out.returncode == 4, out.stdout + out.stderr
    st = state(example_repo)
    assert st["phase"] == "rolled_back" and st["current_percentage"] == 0
    assert subjects(example_repo)[0].startswith(f"rollout({FLAG}): rollback 5%")


def test_a_freeze_ends_and_the_rollout_goes_on(example_repo: Path) -> None:
    _started_at_5(example_repo)
    _freeze(example_repo, '{start = "2026-01-15T12:08:00Z", end = "2026-01-15T13:00:00Z", '
                          'reason = "launch day"}')
    advance(example_repo, 30)
    assert state(example_repo)["current_percentage"] == 5
    assert advance(example_repo, 60).returncode == 0  # 13:00: the end is not in the window
    assert state(example_repo)["current_percentage"] == 10
    assert "frozen" not in _status(example_repo, 60)


def test_a_weekly_window_holds_the_start(example_repo: Path) -> None:
    write_metrics(example_repo)
    # 2026-01-15 is a Thursday: 11:00 to 13:00 every Thursday
    _freeze(example_repo, '{weekly = "thu 11:00-thu 13:00", reason = "release train"}')
    head = git(example_repo, "rev-parse", "HEAD")
    out = advance(example_repo, 0)
    assert out.returncode == 0, out.stderr
    why = "frozen until 2026-01-15T13:00:00Z: release train"
    assert f"pending: {why}; starts once it is over" in out.stdout
    assert git(example_repo, "rev-parse", "HEAD") == head
    s = rollout(example_repo, "status", FLAG, "--now", at(0)).stdout
    assert f"not started: {why}; starts once it is over" in s
    assert advance(example_repo, 60).returncode == 0
    assert state(example_repo)["phase"] == "progressing"
    # a week later, the same window again
    out = advance(example_repo, 7 * 24 * 60 + 5)
    assert "frozen until 2026-01-22T13:00:00Z: release train" in out.stdout


def test_a_completion_waits_in_a_freeze(example_repo: Path) -> None:
    write_metrics(example_repo)
    (example_repo / "rollouts" / f"{FLAG}.yaml").write_text(
        f"flag: {FLAG}\nstrategy: custom\nsteps: [0, 100]\nwait: 5m\nbake: 10m\n"
        "gates:\n  error_rate: 1.0\n  request_count: 100\n")
    git(example_repo, "commit", "-q", "-am", "plan with a bake")
    advance(example_repo, 0)
    advance(example_repo, 5)
    assert state(example_repo)["current_percentage"] == 100
    _freeze(example_repo, '{start = "2026-01-15T12:10:00Z", end = "2026-01-15T14:00:00Z", '
                          'reason = "watch"}')
    out = advance(example_repo, 20)
    assert "held at 100%: frozen until 2026-01-15T14:00:00Z: watch; completes once it is " \
        "over" in out.stdout
    assert state(example_repo)["phase"] == "progressing"
    advance(example_repo, 120)
    assert state(example_repo)["phase"] == "completed"


def test_halt_by_a_person_then_unhalt(example_repo: Path, bare_remote: Path) -> None:
    _started_at_5(example_repo)
    git(example_repo, "push", "-q", "origin", "main")
    env = {"ROLLOUT_REQUESTED_BY": "alice"}
    out = rollout(example_repo, "halt", "--reason", "incident 123", "--push",
                  "--now", at(6), env=env)
    assert out.returncode == 0, out.stderr
    why = "halted by alice at 2026-01-15T12:06:00Z: incident 123"
    assert why in out.stdout
    assert subjects(example_repo)[0] == "rollout: halt: incident 123"
    assert trailer(example_repo, "Rollout-Requested-By") == "alice"
    assert trailer(example_repo, "Rollout-Switch") == "halt"
    assert git(example_repo, "show", "--name-only", "--format=", "HEAD") == HALT
    assert git(bare_remote, "rev-parse", "main") == git(example_repo, "rev-parse", "HEAD")
    assert rollout(example_repo, "validate").returncode == 0
    # halted twice: refused, nothing written
    again = rollout(example_repo, "halt", "--reason", "again", "--now", at(7), env=env)
    assert again.returncode == 1 and f"already {why}" in again.stderr
    head = git(example_repo, "rev-parse", "HEAD")
    out = advance(example_repo, 10, "--push")
    assert out.returncode == 0, out.stderr
    assert f"held at 5%: {why}; advances once it is over" in out.stdout
    assert git(example_repo, "rev-parse", "HEAD") == head
    s = _status(example_repo, 10)
    assert s["halted"]["by"] == "alice" and s["halted"]["reason"] == "incident 123"
    assert s["next_step_at"] is None
    assert why in rollout(example_repo, "status").stdout
    md = rollout(example_repo, "status", "--format", "markdown").stdout
    assert "> halted by alice at 2026-01-15T12:06:00Z: incident 123: no rollout" in md
    # a person's pause still happens, and so does a rollback
    assert rollout(example_repo, "pause", FLAG, "--push", "--now", at(11)).returncode == 0
    assert state(example_repo)["phase"] == "paused"
    assert rollout(example_repo, "resume", FLAG, "--push", "--now", at(12)).returncode == 0
    # unhalted by bob: the rollout goes on at the next run
    out = rollout(example_repo, "unhalt", "--reason", "resolved", "--push", "--now", at(13),
                  env={"ROLLOUT_REQUESTED_BY": "bob"})
    assert out.returncode == 0, out.stderr
    assert subjects(example_repo)[0] == "rollout: unhalt: resolved"
    assert not (example_repo / HALT).exists()
    assert rollout(example_repo, "unhalt", "--now", at(14)).returncode == 1
    advance(example_repo, 18)
    assert state(example_repo)["current_percentage"] == 10


def test_halt_refuses_an_undeclared_environment(example_repo: Path) -> None:
    out = rollout(example_repo, "halt", "--env", "production", "--reason", "x")
    assert out.returncode == 2 and "declares no environments" in out.stderr
    out = rollout(example_repo, "halt")
    assert out.returncode == 2


def test_a_racing_advance_during_a_halt_moves_nothing(example_repo: Path, bare_remote: Path,
                                                      tmp_path: Path) -> None:
    _started_at_5(example_repo)
    git(example_repo, "push", "-q", "origin", "main")
    person = tmp_path / "person"
    git(tmp_path, "clone", "-q", str(bare_remote), str(person))
    git(person, "config", "user.name", "Alice")
    git(person, "config", "user.email", "alice@example.com")
    results: dict[str, int] = {}

    def run(name: str, cwd: Path, *args: str) -> None:
        results[name] = run_cli(list(args), cwd=cwd).returncode

    racers = [threading.Thread(target=run, args=("halt", person, "halt", "--reason",
                                                 "incident 9", "--push", "--now", at(10))),
              threading.Thread(target=run, args=("advance", example_repo, "advance", "--push",
                                                 "--now", at(10)))]
    for t in racers:
        t.start()
    for t in racers:
        t.join()
    assert results == {"halt": 0, "advance": 0}
    log = git(bare_remote, "log", "--format=%s", "main").splitlines()
    halt_at = log.index("rollout: halt: incident 9")
    # nothing the runner committed after the halt moved a rollout
    assert not any("→" in s for s in log[:halt_at])
    # and however often it runs now, nothing moves
    git(example_repo, "pull", "-q", "--rebase", "origin", "main")
    for minute in (20, 30, 60):
        assert advance(example_repo, minute, "--push").returncode == 0
    assert git(bare_remote, "log", "-1", "--format=%s", "main") == "rollout: halt: incident 9"
    assert state(example_repo)["current_percentage"] in (5, 10)  # 10 only if it won the race


def test_a_halt_and_its_lift_are_announced(example_repo: Path) -> None:
    from tests.notify.receivers import receiver

    with (example_repo / "pyproject.toml").open("a") as f:
        f.write('\n[tool.rollout.notify.targets.ops]\ntype = "slack"\nurl_env = "SLACK_URL"\n'
                'events = ["halt", "unhalt"]\n')
    git(example_repo, "commit", "-qam", "notify halts")
    with receiver() as slack:
        env = {"SLACK_URL": f"{slack.url}/hook", "ROLLOUT_REQUESTED_BY": "alice"}
        out = rollout(example_repo, "halt", "--reason", "incident 123", "--now", at(1),
                      env=env)
        assert out.returncode == 0, out.stderr
        assert "notifications: 1 delivered" in out.stdout
        out = rollout(example_repo, "unhalt", "--now", at(2), env=env)
        assert out.returncode == 0, out.stderr
    halted, unhalted = (s.json() for s in slack.seen)
    assert halted["text"] == "every rollout halted"
    reason = next(b["text"]["text"] for b in halted["blocks"] if b["type"] == "section"
                  and "text" in b)
    assert "halted by alice at 2026-01-15T12:01:00Z: incident 123" in reason
    assert unhalted["text"] == "every rollout unhalted"
