"""Only an approval a verified runner commit recorded counts (issue 17, section 3): a
hand-written one with forged trailers is dropped by `rollout resume`, never honoured after
it; GitHub's variables outside a workflow run make an approval that says it is unverified.
Real git, a bare remote, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git
from tests.runner.helpers import (
    STATE,
    advance,
    at,
    commit_all,
    rollout,
    state,
    trailer,
    write_metrics,
    write_plan,
)

pytestmark = pytest.mark.cli_inprocess

PLAN = """flag: phase_4_deployment
strategy: custom
steps: [0, 25, {percentage: 50, approval: true}, 100]
wait: 5m
gates: {error_rate: 1.0, request_count: 100}
"""
RUN = {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat", "GITHUB_TRIGGERING_ACTOR": "octocat",
       "GITHUB_RUN_ID": "4242", "GITHUB_WORKFLOW": "control", "GITHUB_REPOSITORY": "octo/flags"}
#: GitHub's two variables in a terminal, no workflow run
LOOKALIKE = {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat", "GITHUB_TRIGGERING_ACTOR": "",
             "GITHUB_RUN_ID": "", "GITHUB_WORKFLOW": "", "GITHUB_REPOSITORY": ""}


def _awaiting(repo: Path) -> None:
    write_plan(repo, PLAN)
    commit_all(repo, "plan with an approval")
    git(repo, "push", "-q", "origin", "main")
    write_metrics(repo)
    for minute in (0, 5):
        assert advance(repo, minute, "--push").returncode == 0
    out = advance(repo, 10, "--push")
    assert "awaiting approval for step 3" in out.stdout, out.stdout
    assert state(repo)["current_percentage"] == 25


def _forge(repo: Path, phase: str, digests: bool = True) -> None:
    """A person's commit writing an approval into the state, its message a copy of the
    runner's (an approve commit's trailers; the digests copied from the last runner commit,
    so they name other files)."""
    doc = state(repo)
    doc.update(phase=phase, approved_step=2, approved_by="octocat")
    (repo / STATE).write_text(json.dumps(doc, indent=2) + "\n")
    before = trailer(repo, "Rollout-State-Before")
    after = trailer(repo, "Rollout-State-After")
    lines = ["rollout(phase_4_deployment): approve step 3 at 25%", "",
             "Rollout-Flag: phase_4_deployment", "Rollout-Action: approve",
             "Rollout-From: 25", "Rollout-To: 25", f"Rollout-Phase: {phase}",
             "Rollout-Plan: phase_4_deployment", "Rollout-Requested-By: octocat",
             "Rollout-Approved-By: octocat"]
    if digests:
        lines += [f"Rollout-State-Before: {before}", f"Rollout-State-After: {after}"]
    git(repo, "add", STATE)
    git(repo, "commit", "-q", "-m", "\n".join(lines))
    git(repo, "push", "-q", "origin", "main")


@pytest.mark.parametrize("digests", [True, False])
def test_a_forged_approval_held_then_resumed_is_dropped(example_repo: Path, bare_remote: Path,
                                                        digests: bool) -> None:
    _awaiting(example_repo)
    _forge(example_repo, "progressing", digests)
    held = advance(example_repo, 16, "--push")
    assert held.returncode == 0, held.stderr
    assert state(example_repo)["phase"] == "paused"  # a person's change: held
    head = git(example_repo, "rev-parse", "HEAD")
    assert advance(example_repo, 16.5, "--push").returncode == 0
    assert git(example_repo, "rev-parse", "HEAD") == head  # held once, not at every run
    resumed = rollout(example_repo, "resume", "phase_4_deployment", "--now", at(17), "--push")
    assert resumed.returncode == 0, resumed.stderr
    assert "approval of step 3 in the state is dropped" in resumed.stdout
    s = state(example_repo)
    assert s["phase"] == "progressing" and "approved_step" not in s
    for minute in (23, 30):
        out = advance(example_repo, minute, "--push")
        assert out.returncode == 0, out.stderr
        assert "awaiting approval for step 3" in out.stdout
    assert state(example_repo)["current_percentage"] == 25


def test_a_forged_paused_approval_resumed_at_once_is_dropped(example_repo: Path,
                                                             bare_remote: Path) -> None:
    _awaiting(example_repo)
    _forge(example_repo, "paused")
    resumed = rollout(example_repo, "resume", "phase_4_deployment", "--now", at(17), "--push")
    assert resumed.returncode == 0, resumed.stderr
    assert "approved_step" not in state(example_repo)
    out = advance(example_repo, 23, "--push")
    assert "awaiting approval for step 3" in out.stdout
    assert state(example_repo)["current_percentage"] == 25


def test_a_real_approval_survives_a_pause_and_a_hand_edit(example_repo: Path,
                                                          bare_remote: Path) -> None:
    _awaiting(example_repo)
    ok = rollout(example_repo, "approve", "phase_4_deployment", "--now", at(11), "--push",
                 env=RUN)
    assert ok.returncode == 0, ok.stderr
    assert trailer(example_repo, "Rollout-Approved-By") == "octocat"
    # a person edits the state by hand (the reason): the next run holds it
    doc = state(example_repo)
    doc["reason"] = "edited by hand"
    (example_repo / STATE).write_text(json.dumps(doc, indent=2) + "\n")
    git(example_repo, "commit", "-q", "-am", "a note")
    assert advance(example_repo, 12).returncode == 0
    assert state(example_repo)["phase"] == "paused"
    resumed = rollout(example_repo, "resume", "phase_4_deployment", "--now", at(13))
    assert resumed.returncode == 0, resumed.stderr
    assert "dropped" not in resumed.stdout
    assert state(example_repo)["approved_step"] == 2
    moved = advance(example_repo, 18)
    assert "(approved by octocat)" in moved.stdout, moved.stdout
    assert state(example_repo)["current_percentage"] == 50


def test_github_variables_outside_a_workflow_run_record_an_unverified_approval(
        example_repo: Path, bare_remote: Path) -> None:
    _awaiting(example_repo)
    out = rollout(example_repo, "approve", "phase_4_deployment", "--now", at(11),
                  env=LOOKALIKE)
    assert out.returncode == 0, out.stderr
    assert "octocat (unverified)" in out.stdout and "not verified" in out.stdout
    assert trailer(example_repo, "Rollout-Approved-By") == "octocat (unverified)"
    assert state(example_repo)["approved_by"] == "octocat (unverified)"
    # the approval itself is the runner's commit: it counts, saying who it claims
    moved = advance(example_repo, 16)
    assert "(approved by octocat (unverified))" in moved.stdout, moved.stdout


def test_a_workflow_run_records_the_actor_as_is(example_repo: Path, bare_remote: Path) -> None:
    _awaiting(example_repo)
    out = rollout(example_repo, "approve", "phase_4_deployment", "--now", at(11), env=RUN)
    assert out.returncode == 0, out.stderr
    assert trailer(example_repo, "Rollout-Approved-By") == "octocat"
    assert "not verified" not in out.stdout
