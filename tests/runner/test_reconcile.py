"""A person's git revert is noticed and never fought; people's commands are commits."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git
from tests.runner.helpers import (
    STATE,
    advance,
    commit_all,
    rollout,
    state,
    subjects,
    trailer,
    write_metrics,
)

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


def _progress(repo: Path, minutes: tuple[int, ...] = (0, 5, 10, 15)) -> None:
    write_metrics(repo)
    for minute in minutes:
        assert advance(repo, minute).returncode == 0


def test_revert_of_a_step_holds_and_never_readvances_until_resume(example_repo: Path) -> None:
    _progress(example_repo)  # 25 %
    step = git(example_repo, "rev-parse", "HEAD")
    git(example_repo, "revert", "--no-edit", "HEAD")
    assert state(example_repo)["current_percentage"] == 10
    out = advance(example_repo, 25)
    assert out.returncode == 0, out.stderr
    s = state(example_repo)
    assert (s["phase"], s["current_percentage"]) == ("paused", 10)
    assert step[:7] in s["reason"] and "Test Human" in s["reason"]
    assert subjects(example_repo)[0] == (
        f"rollout(phase_4_deployment): hold at 10% after revert of {step[:7]}")
    assert trailer(example_repo, "Rollout-Action") == "hold"
    assert trailer(example_repo, "Rollout-Reverted-Commit") == step
    assert trailer(example_repo, "Rollout-Reverted-By") == "Test Human <human@example.com>"
    head = git(example_repo, "rev-parse", "HEAD")
    for minute in (30, 60, 120):  # healthy metrics, long past the wait: still held
        assert advance(example_repo, minute).returncode == 0
    assert git(example_repo, "rev-parse", "HEAD") == head
    out = rollout(example_repo, "resume", "phase_4_deployment", "--now", "2026-01-15T14:00:00Z")
    assert out.returncode == 0, out.stderr
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): resume at 10%"
    assert trailer(example_repo, "Rollout-Requested-By") == "Test Human <human@example.com>"
    assert advance(example_repo, 125).returncode == 0
    assert state(example_repo)["current_percentage"] == 25


def test_revert_of_an_automatic_rollback_holds_at_the_restored_percentage(
        example_repo: Path) -> None:
    _progress(example_repo)
    write_metrics(example_repo, error_rate=3.0)
    assert advance(example_repo, 16).returncode == 4
    rollback = git(example_repo, "rev-parse", "HEAD")
    git(example_repo, "revert", "--no-edit", "HEAD")
    write_metrics(example_repo)
    assert advance(example_repo, 20).returncode == 0
    s = state(example_repo)
    assert (s["phase"], s["current_percentage"]) == ("paused", 25)
    assert trailer(example_repo, "Rollout-Reverted-Commit") == rollback


def test_revert_of_the_start_does_not_start_again(example_repo: Path) -> None:
    _progress(example_repo, (0,))
    git(example_repo, "revert", "--no-edit", "HEAD")
    assert not (example_repo / STATE).exists()
    assert advance(example_repo, 5).returncode == 0
    s = state(example_repo)
    assert (s["phase"], s["current_percentage"]) == ("paused", 0)
    assert trailer(example_repo, "Rollout-Action") == "hold"


def test_removed_plan_leaves_orphaned_state_that_is_cleaned_up(example_repo: Path) -> None:
    (example_repo / "rollouts/phase_4_deployment.yaml").unlink()
    commit_all(example_repo, "temporary")
    git(example_repo, "reset", "-q", "--hard", "HEAD~1")
    # the PR that added the plan, then its revert
    plan = (example_repo / "rollouts/phase_4_deployment.yaml").read_text()
    _progress(example_repo, (0, 5))
    git(example_repo, "rm", "-q", "rollouts/phase_4_deployment.yaml")
    git(example_repo, "commit", "-q", "-m", "Revert \"add the phase 4 plan\"")
    out = advance(example_repo, 10)
    assert out.returncode == 0, out.stderr
    assert not (example_repo / STATE).exists()
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): remove orphaned state"
    assert trailer(example_repo, "Rollout-Action") == "cleanup"
    assert git(example_repo, "status", "--porcelain") == "?? logs/"
    assert plan  # the plan really existed


def test_commands_pause_resume_rollback_retry(example_repo: Path) -> None:
    _progress(example_repo, (0, 5))
    now = ["--now", "2026-01-15T12:06:00Z"]
    assert rollout(example_repo, "pause", "phase_4_deployment", *now).returncode == 0
    assert state(example_repo)["phase"] == "paused"
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): pause at 5%"
    again = rollout(example_repo, "pause", "phase_4_deployment", *now)
    assert again.returncode == 1 and "paused" in again.stderr
    assert rollout(example_repo, "resume", "phase_4_deployment", *now).returncode == 0
    out = rollout(example_repo, "rollback", "phase_4_deployment", "--reason", "support tickets",
                  *now)
    assert out.returncode == 0, out.stderr
    s = state(example_repo)
    assert (s["phase"], s["current_percentage"]) == ("rolled_back", 0)
    assert "support tickets" in trailer(example_repo, "Rollout-Reason")
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): rollback 5% → 0%"
    assert rollout(example_repo, "resume", "phase_4_deployment", *now).returncode == 1
    assert rollout(example_repo, "retry", "phase_4_deployment", *now).returncode == 0
    s = state(example_repo)
    assert (s["phase"], s["step"], s["started_at"]) == ("progressing", 0, "2026-01-15T12:06:00Z")
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): retry from 0%"
    assert rollout(example_repo, "pause", "no_such_flag", *now).returncode == 1


def test_rollback_pauses_the_rollouts_of_flags_that_require_it(example_repo: Path) -> None:
    plan = (example_repo / "rollouts/phase_4_deployment.yaml").read_text()
    dep = plan.replace("flag: phase_4_deployment", "flag: aatc_system_enabled")
    (example_repo / "rollouts/aatc_system_enabled.yaml").write_text(dep)
    commit_all(example_repo, "plan for aatc")
    _progress(example_repo, (0, 5, 10))
    write_metrics(example_repo, error_rate=5.0)
    # the dependent's gates also fail, but its rollout is paused, not rolled back, because
    # only the prerequisite is at fault: run the prerequisite alone first
    out = advance(example_repo, 11, "phase_4_deployment")
    assert out.returncode == 4, out.stderr
    dep_state = state(example_repo, "rollouts/aatc_system_enabled.state.json")
    assert dep_state["phase"] == "paused"
    assert "phase_4_deployment was rolled back" in dep_state["reason"]
    assert subjects(example_repo)[:2] == ["rollout(aatc_system_enabled): pause at 10%",
                                          "rollout(phase_4_deployment): rollback 10% → 0%"]


def test_a_hand_edit_of_the_state_pauses_with_who_did_it(example_repo: Path) -> None:
    _progress(example_repo, (0, 5))
    path = example_repo / STATE
    # a consistent edit: one step further, at that step's percentage
    path.write_text(path.read_text().replace('"current_percentage": 5', '"current_percentage": 10')
                    .replace('"step": 1', '"step": 2'))
    git(example_repo, "commit", "-q", "-am", "skip a step by hand")
    edit = git(example_repo, "rev-parse", "HEAD")
    assert advance(example_repo, 10).returncode == 0
    s = state(example_repo)
    assert (s["phase"], s["current_percentage"]) == ("paused", 10)
    assert edit[:7] in s["reason"] and "Test Human" in s["reason"]
    assert trailer(example_repo, "Rollout-Action") == "pause"


def test_a_hand_edit_to_a_percentage_that_is_not_its_step_s_is_refused(example_repo: Path) -> None:
    # 7% at the 5% step means nothing the runner could act on: advance stops, writes nothing
    _progress(example_repo, (0, 5))
    path = example_repo / STATE
    path.write_text(path.read_text().replace('"current_percentage": 5', '"current_percentage": 7'))
    git(example_repo, "commit", "-q", "-am", "nudge the percentage by hand")
    head = git(example_repo, "rev-parse", "HEAD")
    out = advance(example_repo, 10)
    assert out.returncode == 1, out.stderr
    assert ("rollouts/phase_4_deployment.state.json:5:3: current_percentage: 7, but steps[1] of "
            "rollouts/phase_4_deployment.yaml is 5%: a rollout is at its step's percentage"
            in out.stderr)
    assert git(example_repo, "rev-parse", "HEAD") == head
    assert git(example_repo, "status", "--porcelain", "rollouts") == ""
