"""`rollout approve`, the bake and approvals end to end: a real repository with a bare
remote, real CLI processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tests.runner.helpers import (
    STATE,
    advance,
    at,
    commit_all,
    rollout,
    state,
    status,
    subjects,
    trailer,
    write_metrics,
    write_plan,
)

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


PLAN = """flag: phase_4_deployment
strategy: custom
steps: [0, 25, {percentage: 50, approval: true}, 100]
wait: 5m
bake: 1h
gates: {error_rate: 1.0, request_count: 100}
"""
#: A workflow run's environment as GitHub sets it (runs.WORKFLOW_RUN: the run's variables)
ACTIONS = {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat",
           "GITHUB_TRIGGERING_ACTOR": "octocat", "GITHUB_RUN_ID": "4242",
           "GITHUB_WORKFLOW": "control", "GITHUB_REPOSITORY": "octo/flags"}


def _setup(repo: Path, plan: str = PLAN) -> None:
    write_plan(repo, plan)
    commit_all(repo, "plan with an approval and a bake")
    git(repo, "push", "-q", "origin", "main")
    write_metrics(repo)


def test_advance_waits_for_approval_then_advances_and_bakes(example_repo: Path,
                                                            bare_remote: Path) -> None:
    _setup(example_repo)
    for minute in (0, 5):
        assert advance(example_repo, minute, "--push").returncode == 0
    out = advance(example_repo, 10, "--push")
    assert out.returncode == 0, out.stderr
    assert "awaiting approval for step 3 (50%)" in out.stdout
    assert state(example_repo)["current_percentage"] == 25
    row = status(example_repo)
    assert row["awaiting_approval"] == 2 and row["reason"].startswith("awaiting approval")
    text = rollout(example_repo, "status", "phase_4_deployment").stdout
    assert "step 3 (50%) needs approval: `rollout approve phase_4_deployment`" in text
    # waiting again commits nothing
    head = git(example_repo, "rev-parse", "HEAD")
    assert advance(example_repo, 15, "--push").returncode == 0
    assert git(example_repo, "rev-parse", "HEAD") == head

    # the wrong step is refused, one line, nothing written
    wrong = rollout(example_repo, "approve", "phase_4_deployment", "--step", "4",
                    "--now", at(16))
    assert wrong.returncode == 1 and wrong.stderr.count("\n") == 1
    assert "needs no approval" in wrong.stderr and git(example_repo, "rev-parse", "HEAD") == head

    ok = rollout(example_repo, "approve", "phase_4_deployment", "--reason", "metrics fine",
                 "--now", at(16), "--push", env=ACTIONS)
    assert ok.returncode == 0, ok.stderr
    assert subjects(example_repo, 1) == ["rollout(phase_4_deployment): approve step 3 at 25%"]
    assert trailer(example_repo, "Rollout-Approved-By") == "octocat"
    assert git(bare_remote, "rev-parse", "main") == git(example_repo, "rev-parse", "HEAD")
    assert git(example_repo, "show", "--name-only", "--format=", "HEAD").splitlines() == [STATE]
    assert (state(example_repo)["approved_step"], state(example_repo)["approved_by"]) == (
        2, "octocat")
    assert status(example_repo)["awaiting_approval"] is None
    history = rollout(example_repo, "history", "phase_4_deployment").stdout
    assert "approved by: octocat" in history

    moved = advance(example_repo, 17, "--push")
    assert moved.returncode == 0, moved.stderr
    assert "(approved by octocat)" in moved.stdout
    s = state(example_repo)
    assert s["current_percentage"] == 50 and "approved_step" not in s

    assert advance(example_repo, 22, "--push").returncode == 0  # 100 %, baking
    row = status(example_repo)
    assert (row["phase"], row["current_percentage"], row["baking"]) == ("progressing", 100, True)
    assert row["bake_ends_at"] == at(82)
    text = rollout(example_repo, "status", "phase_4_deployment").stdout
    assert f"baking at 100% until {at(82)}" in text
    assert advance(example_repo, 60, "--push").returncode == 0
    assert status(example_repo)["phase"] == "progressing"
    done = advance(example_repo, 82, "--push")
    assert done.returncode == 0 and "after a bake of 1h" in done.stdout
    assert status(example_repo)["phase"] == "completed"
    again = rollout(example_repo, "approve", "phase_4_deployment", "--now", at(83))
    assert again.returncode == 1 and "is completed" in again.stderr


def test_a_breach_during_the_bake_rolls_back(example_repo: Path, bare_remote: Path) -> None:
    _setup(example_repo, PLAN.replace("{percentage: 50, approval: true}", "50"))
    for minute in (0, 5, 10, 15):
        assert advance(example_repo, minute).returncode == 0
    assert status(example_repo)["baking"] is True
    write_metrics(example_repo, error_rate=4.0)
    out = advance(example_repo, 40)
    assert out.returncode == 4 and "ROLLED BACK" in out.stdout
    assert state(example_repo)["phase"] == "rolled_back"


def test_approvers_are_checked_against_the_actor_and_the_git_identity(
        example_repo: Path, bare_remote: Path) -> None:
    _setup(example_repo, PLAN + "approvers: [octocat, human@example.com]\n")
    assert advance(example_repo, 0, "--push").returncode == 0
    head = git(example_repo, "rev-parse", "HEAD")
    stranger = rollout(example_repo, "approve", "phase_4_deployment", "--now", at(1),
                       env={**ACTIONS, "GITHUB_ACTOR": "mallory",
                            "GITHUB_TRIGGERING_ACTOR": "mallory"})
    assert stranger.returncode == 1
    assert "mallory (the workflow's actor) is not one of the approvers" in stranger.stderr
    # a re-run by another person would record the first run's actor: refused
    rerun = rollout(example_repo, "approve", "phase_4_deployment", "--now", at(1),
                    env={**ACTIONS, "GITHUB_TRIGGERING_ACTOR": "mallory"})
    assert rerun.returncode == 1 and "re-run by mallory" in rerun.stderr
    # ROLLOUT_REQUESTED_BY is a name anyone can type: not read for an approval
    typed = rollout(example_repo, "approve", "phase_4_deployment", "--now", at(1),
                    env={"GITHUB_ACTIONS": "", "ROLLOUT_REQUESTED_BY": "octocat",
                         "GIT_AUTHOR_EMAIL": "other@example.com"})
    assert typed.returncode == 1 and "git identity" in typed.stderr
    assert git(example_repo, "rev-parse", "HEAD") == head
    # outside Actions, the git identity's email is listed: accepted, said unverified
    local = rollout(example_repo, "approve", "phase_4_deployment", "--now", at(1),
                    env={"GITHUB_ACTIONS": ""})
    assert local.returncode == 0, local.stderr
    assert trailer(example_repo, "Rollout-Approved-By") == "Test Human <human@example.com>"
    assert "not verified" in trailer(example_repo, "Rollout-Reason")


def test_reverting_an_approval_holds_the_rollout_without_it(example_repo: Path,
                                                            bare_remote: Path) -> None:
    _setup(example_repo)
    for minute in (0, 5, 10):
        assert advance(example_repo, minute).returncode == 0
    assert rollout(example_repo, "approve", "phase_4_deployment", "--now", at(11),
                   env=ACTIONS).returncode == 0
    git(example_repo, "revert", "--no-edit", "HEAD")
    # until the runner holds it, an approval on top of a person's change is refused
    early = rollout(example_repo, "approve", "phase_4_deployment", "--now", at(12), env=ACTIONS)
    assert early.returncode == 1 and "not by the runner" in early.stderr
    held = advance(example_repo, 17)
    assert held.returncode == 0 and "hold" in held.stdout
    s = state(example_repo)
    assert s["phase"] == "paused" and s["current_percentage"] == 25 and "approved_step" not in s
    assert rollout(example_repo, "resume", "phase_4_deployment",
                   "--now", at(18)).returncode == 0
    waiting = advance(example_repo, 23)
    assert "awaiting approval for step 3" in waiting.stdout
    assert state(example_repo)["current_percentage"] == 25


def test_approval_on_the_first_step_and_approvers_without_approval_are_problems(
        example_repo: Path) -> None:
    write_plan(example_repo, PLAN.replace("steps: [0,", "steps: [{percentage: 0, approval: "
                                          "true},") + "approvers: [octocat]\n")
    out = run_cli(["validate"], cwd=example_repo)
    assert out.returncode == 1
    lines = out.stdout.splitlines() + out.stderr.splitlines()
    assert any(line.startswith("rollouts/phase_4_deployment.yaml:3:") and
               "steps[0].approval: the first step is where the rollout starts" in line
               for line in lines), lines
    write_plan(example_repo, PLAN.replace("{percentage: 50, approval: true}", "50")
               + "approvers: [octocat]\n")
    out = run_cli(["validate"], cwd=example_repo)
    assert out.returncode == 1 and "approvers: no step has approval: true" in out.stdout + out.stderr
    write_plan(example_repo, PLAN.replace("bake: 1h", "bake: forever"))
    out = run_cli(["validate"], cwd=example_repo)
    assert out.returncode == 1
    assert "rollouts/phase_4_deployment.yaml:5:1: bake: 'forever' is not a duration" in out.stdout
    write_plan(example_repo, PLAN.replace("approval: true", "approval: yes please"))
    out = run_cli(["validate"], cwd=example_repo)
    assert out.returncode == 1
    assert out.stdout.startswith("rollouts/phase_4_deployment.yaml:3:"), out.stdout
    assert "steps[2].approval" in out.stdout or "approval" in out.stdout.splitlines()[0]


def test_a_hand_written_approval_of_a_step_needing_none_is_a_state_problem(
        example_repo: Path) -> None:
    write_plan(example_repo, PLAN)
    commit_all(example_repo, "plan")
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    s = state(example_repo)
    (example_repo / STATE).write_text(json.dumps({**s, "approved_step": 1,
                                                  "approved_by": "x"}, indent=2))
    out = run_cli(["validate"], cwd=example_repo)
    assert out.returncode == 1 and "approved_step: 1: steps[1]" in out.stdout + out.stderr
    (example_repo / STATE).write_text(json.dumps({**s, "approved_step": 2}, indent=2))
    out = run_cli(["validate"], cwd=example_repo)
    assert out.returncode == 1
    assert "approved_step: given without approved_by" in out.stdout, out.stdout
