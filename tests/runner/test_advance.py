"""`rollout advance` end to end: real git repositories, file metrics, the CLI as a process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git
from tests.runner.helpers import (
    STATE,
    advance,
    commit_all,
    is_clean,
    rollout,
    state,
    status,
    subjects,
    trailer,
    write_flag,
    write_metrics,
    write_plan,
)

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


def test_full_safe_rollout_through_every_step(example_repo: Path) -> None:
    write_metrics(example_repo)
    out = advance(example_repo, 0)
    assert out.returncode == 0, out.stderr
    seen = [state(example_repo)["current_percentage"]]
    for minute in range(5, 35, 5):
        out = advance(example_repo, minute)
        assert out.returncode == 0, out.stderr
        seen.append(state(example_repo)["current_percentage"])
    assert seen == [0, 5, 10, 25, 50, 75, 100]
    assert state(example_repo)["phase"] == "completed"
    assert subjects(example_repo)[:7] == [
        "rollout(phase_4_deployment): 75% → 100%", "rollout(phase_4_deployment): 50% → 75%",
        "rollout(phase_4_deployment): 25% → 50%", "rollout(phase_4_deployment): 10% → 25%",
        "rollout(phase_4_deployment): 5% → 10%", "rollout(phase_4_deployment): 0% → 5%",
        "rollout(phase_4_deployment): start at 0%"]
    assert trailer(example_repo, "Rollout-Action") == "complete"
    assert trailer(example_repo, "Rollout-Action", "HEAD~6") == "start"
    assert git(example_repo, "log", "-1", "--format=%an <%ae>") == (
        "rollout-runner[bot] <rollout-runner@users.noreply.github.com>")
    body = git(example_repo, "log", "-1", "--format=%b")
    assert "error_rate = 0.2 (threshold <= 1, window 5m): pass" in body
    gates = trailer(example_repo, "Rollout-Gate").splitlines()
    assert gates == ["error_rate=0.2 pass (<= 1)", "p95_latency_ms=120 pass (<= 500)",
                     "request_count=500 pass (>= 100)"]
    # each commit touches only the state file
    assert git(example_repo, "show", "--format=", "--name-only", "HEAD") == STATE
    assert is_clean(example_repo)
    assert rollout(example_repo, "validate").returncode == 0


def test_waits_and_same_now_twice_changes_nothing(example_repo: Path) -> None:
    write_metrics(example_repo)
    advance(example_repo, 0)
    head = git(example_repo, "rev-parse", "HEAD")
    for minute in (0, 2, 4.9):
        out = advance(example_repo, minute)
        assert out.returncode == 0 and "waiting" in out.stdout
    assert git(example_repo, "rev-parse", "HEAD") == head
    assert advance(example_repo, 5).returncode == 0
    head = git(example_repo, "rev-parse", "HEAD")
    before = (example_repo / STATE).read_bytes()
    assert advance(example_repo, 5).returncode == 0
    assert git(example_repo, "rev-parse", "HEAD") == head
    assert (example_repo / STATE).read_bytes() == before


def test_status_json_fields(example_repo: Path) -> None:
    write_metrics(example_repo)
    advance(example_repo, 0)
    advance(example_repo, 5)
    s = status(example_repo)
    assert s["flag"] == "phase_4_deployment" and s["phase"] == "progressing"
    assert s["current_percentage"] == 5 and s["step"] == 1
    assert s["steps"] == [0, 5, 10, 25, 50, 75, 100]
    assert s["step_started_at"] == "2026-01-15T12:05:00Z"
    assert s["next_step_at"] == "2026-01-15T12:10:00Z"
    assert [g["name"] for g in s["last_gates"]] == ["error_rate", "p95_latency_ms",
                                                     "request_count"]
    assert s["reason"]
    many = json.loads(rollout(example_repo, "status", "--format", "json").stdout)
    assert isinstance(many, list) and many[0]["flag"] == "phase_4_deployment"
    assert rollout(example_repo, "status", "nope", "--format", "json").returncode == 1


def _at_25(repo: Path) -> None:
    write_metrics(repo)
    for minute in (0, 5, 10, 15):
        assert advance(repo, minute).returncode == 0
    assert state(repo)["current_percentage"] == 25


def test_error_rate_over_one_percent_rolls_back_with_exit_4(example_repo: Path,
                                                            tmp_path: Path) -> None:
    _at_25(example_repo)
    write_metrics(example_repo, error_rate=1.7)
    gh = tmp_path / "gh_output"
    out = advance(example_repo, 16, env={"GITHUB_OUTPUT": str(gh)})  # mid-wait: at once
    assert out.returncode == 4, out.stderr
    assert "ROLLED BACK: phase_4_deployment" in out.stdout
    assert "rolled_back=phase_4_deployment" in gh.read_text().splitlines()
    s = state(example_repo)
    assert (s["phase"], s["current_percentage"]) == ("rolled_back", 0)
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): rollback 25% → 0%"
    assert "error_rate=1.7 fail (<= 1)" in trailer(example_repo, "Rollout-Gate")
    # stays rolled back; a later run changes nothing and exits 0
    out = advance(example_repo, 30)
    assert out.returncode == 0 and subjects(example_repo)[0].endswith("rollback 25% → 0%")


def test_p95_over_500ms_rolls_back(example_repo: Path) -> None:
    _at_25(example_repo)
    write_metrics(example_repo, p95_latency_ms=730)
    assert advance(example_repo, 20).returncode == 4
    assert state(example_repo)["phase"] == "rolled_back"
    assert "p95_latency_ms=730 fail (<= 500)" in trailer(example_repo, "Rollout-Gate")


def test_placeholder_metrics_with_no_requests_never_advance(example_repo: Path) -> None:
    # the reference's placeholder file: request_count 0
    write_metrics(example_repo, error_rate=0.0, p95_latency_ms=100.0, request_count=0)
    advance(example_repo, 0)
    head = git(example_repo, "rev-parse", "HEAD")
    out = advance(example_repo, 10)
    assert out.returncode == 0 and "inconclusive" in out.stdout
    assert state(example_repo)["current_percentage"] == 0
    assert git(example_repo, "rev-parse", "HEAD") == head


def test_no_metrics_holds_then_pauses_at_the_deadline(example_repo: Path) -> None:
    advance(example_repo, 0)  # no logs/metrics.json at all
    head = git(example_repo, "rev-parse", "HEAD")
    out = advance(example_repo, 10)
    assert out.returncode == 0 and "holding at 0%" in out.stdout
    assert git(example_repo, "rev-parse", "HEAD") == head
    out = advance(example_repo, 30)  # progress_deadline 30m
    # paused because its metrics could not be read: the run is red (issue 21)
    assert out.returncode == 1 and "metrics could not be read" in out.stderr
    s = state(example_repo)
    assert s["phase"] == "paused" and "progress deadline 30m" in s["reason"]
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): pause at 0%"
    assert "error_rate=none inconclusive" in trailer(example_repo, "Rollout-Gate")


def test_dry_run_writes_nothing(example_repo: Path) -> None:
    write_metrics(example_repo)
    head = git(example_repo, "rev-parse", "HEAD")
    out = advance(example_repo, 0, "--dry-run")
    assert out.returncode == 0 and "would start" in out.stdout
    assert git(example_repo, "rev-parse", "HEAD") == head
    assert not (example_repo / STATE).exists()


def test_plan_edit_restarts_the_step(example_repo: Path) -> None:
    _at_25(example_repo)
    plan = (example_repo / "rollouts/phase_4_deployment.yaml").read_text()
    write_plan(example_repo, plan.replace("strategy: safe", "strategy: custom\nsteps: [0, 20, 60, 100]"))
    commit_all(example_repo, "plan: fewer steps")
    assert advance(example_repo, 17).returncode == 0
    s = state(example_repo)
    assert (s["current_percentage"], s["step"], s["step_started_at"]) == (
        20, 1, "2026-01-15T12:17:00Z")
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): replan at 20%"
    assert advance(example_repo, 22).returncode == 0
    assert state(example_repo)["current_percentage"] == 60


def test_selecting_flags_and_unknown_flag(example_repo: Path) -> None:
    write_metrics(example_repo)
    write_flag(example_repo, "checkout_redesign")
    (example_repo / "rollouts/checkout_redesign.yaml").write_text(
        (example_repo / "rollouts/phase_4_deployment.yaml").read_text().replace(
            "flag: phase_4_deployment", "flag: checkout_redesign"))
    commit_all(example_repo, "plan for checkout_redesign")
    out = advance(example_repo, 0, "checkout_redesign")
    assert out.returncode == 0 and not (example_repo / STATE).exists()
    assert (example_repo / "rollouts/checkout_redesign.state.json").exists()
    assert advance(example_repo, 0, "phase_4_deployment").returncode == 0
    assert (example_repo / STATE).exists()
    out = advance(example_repo, 0, "no_such_flag")
    assert out.returncode == 1 and "no rollout for no_such_flag" in out.stderr


def test_invalid_repository_stops_with_exit_1(example_repo: Path) -> None:
    (example_repo / "rollouts/phase_4_deployment.yaml").write_text("flag: [\n")
    commit_all(example_repo, "broken")
    out = advance(example_repo, 0)
    assert out.returncode == 1 and "phase_4_deployment.yaml:" in out.stderr


def test_outside_a_git_repository_is_a_usage_error_for_every_command(tmp_path: Path) -> None:
    """Exit 2, as history, plan and incident always said it (advance, the person commands
    and publish said 1: the same mistake, two exit codes)."""
    import shutil

    from tests.conftest import PROJECT

    for folder in ("flags", "rollouts"):
        shutil.copytree(PROJECT / folder, tmp_path / folder)
    now = ("--now", "2026-01-15T12:00:00Z")
    for command in (("advance", *now), ("rollback", "phase_4_deployment", *now),
                    ("pause", "phase_4_deployment", *now),
                    ("approve", "phase_4_deployment", *now),
                    ("publish", "--to", f"dir:{tmp_path / 'site'}"), ("history",),
                    ("plan",)):
        out = rollout(tmp_path, *command)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert "not a git repository" in out.stderr, (command, out.stderr)
    assert not (tmp_path / "rollouts" / "phase_4_deployment.state.json").exists()
    assert not (tmp_path / "site").exists()


def test_a_folder_without_flags_or_rollouts_is_a_usage_error(tmp_path: Path) -> None:
    """A wrong --repo is said, not taken for a repository without rollouts (exit 0) or,
    for build, for one without flags (an artifact serving nothing)."""
    git(tmp_path, "init", "-q")
    for args in (["advance"], ["status"], ["status", "--format", "json"], ["build"],
                 ["eval", "phase_4_deployment"], ["rollback", "phase_4_deployment"],
                 ["validate"]):
        out = rollout(tmp_path, *args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "not a Rollout Runner repository" in out.stderr, args
        assert out.stdout == "" and "Traceback" not in out.stderr, args


def test_author_comes_from_the_config_then_the_environment(example_repo: Path) -> None:
    write_metrics(example_repo)
    pyproject = example_repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        "[tool.rollout]\n", '[tool.rollout]\nauthor_name = "Flag Bot"\nauthor_email = "bot@corp.example"\n'))
    git(example_repo, "commit", "-qam", "bot identity")
    assert advance(example_repo, 0).returncode == 0
    assert git(example_repo, "log", "-1", "--format=%an <%ae>|%cn") == (
        "Flag Bot <bot@corp.example>|Flag Bot")
    env = {"ROLLOUT_AUTHOR_NAME": "CI Bot", "ROLLOUT_AUTHOR_EMAIL": "ci@corp.example"}
    assert advance(example_repo, 5, env=env).returncode == 0
    assert git(example_repo, "log", "-1", "--format=%an <%ae>") == "CI Bot <ci@corp.example>"


def test_failure_limit_two_records_the_streak_then_rolls_back(example_repo: Path) -> None:
    path = example_repo / "rollouts/phase_4_deployment.yaml"
    write_plan(example_repo, path.read_text().replace("failure_limit: 1", "failure_limit: 2"))
    commit_all(example_repo, "two failures in a row")
    write_metrics(example_repo)
    for minute in (0, 5):
        assert advance(example_repo, minute).returncode == 0
    write_metrics(example_repo, error_rate=2.0)
    out = advance(example_repo, 6)
    assert out.returncode == 0, out.stderr
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): observe at 5%"
    assert state(example_repo)["consecutive_failures"] == 1
    assert advance(example_repo, 6).returncode == 0  # the same moment counts once
    assert state(example_repo)["consecutive_failures"] == 1
    out = advance(example_repo, 7)
    assert out.returncode == 4
    s = state(example_repo)
    assert (s["phase"], s["current_percentage"]) == ("rolled_back", 0)
    assert "2 failed evaluations" in s["reason"]
