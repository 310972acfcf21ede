"""Issue 4's promises as a user meets them on the command line (acceptance review)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git
from tests.runner.helpers import STATE, advance, at, rollout, state, subjects, write_metrics

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


def test_an_empty_now_is_a_usage_error_not_the_clock(example_repo: Path) -> None:
    """`--now "$NOW"` with NOW unset must not act at the real time (it could pause)."""
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    head = git(example_repo, "rev-parse", "HEAD")
    for cmd in ("advance", "status", "pause", "rollback"):
        args = [cmd, "--now", ""] + ([] if cmd in ("advance", "status") else
                                     ["phase_4_deployment"])
        out = rollout(example_repo, *args)
        assert out.returncode == 2, (cmd, out.stdout, out.stderr)
        assert "--now '': empty" in out.stderr and "Traceback" not in out.stderr
    assert git(example_repo, "rev-parse", "HEAD") == head


def test_durations_in_reasons_are_whole_seconds_even_with_a_clock_time(
        example_repo: Path) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    (example_repo / "logs" / "metrics.json").unlink()  # no data from now on
    out = rollout(example_repo, "advance", "--now", "2026-01-15T12:35:00.123456Z")
    assert out.returncode == 1, out.stderr  # paused: its metrics could not be read
    assert state(example_repo)["phase"] == "paused"
    assert "no conclusive evaluation for 35m (progress deadline 30m)" in \
        state(example_repo)["reason"]
    write_metrics(example_repo)
    out = rollout(example_repo, "resume", "phase_4_deployment", "--now", at(40))
    assert out.returncode == 0, out.stderr
    out = rollout(example_repo, "advance", "--now", "2026-01-15T12:41:29.500001Z")
    assert out.returncode == 0, out.stderr
    assert "3m31s of the step's wait left" in out.stdout, out.stdout


def test_status_json_current_percentage_through_jq(example_repo: Path) -> None:
    """The reference document's `rollout status FLAG --format json | jq .current_percentage`."""
    write_metrics(example_repo)
    for minutes in (0, 5, 10):
        assert advance(example_repo, minutes).returncode == 0
    pipeline = subprocess.run(
        "python -m runner status phase_4_deployment --format json | jq .current_percentage",
        shell=True, cwd=example_repo, capture_output=True, text=True, check=False, env=_env())
    assert pipeline.returncode == 0, pipeline.stderr
    assert pipeline.stdout.strip() == "10"


def _env() -> dict[str, str]:
    import os

    from tests.conftest import PROJECT

    return {**os.environ, "PYTHONPATH": str(PROJECT)}


def test_retry_after_an_automatic_rollback_starts_again_without_a_plan_edit(
        example_repo: Path) -> None:
    write_metrics(example_repo)
    for minutes in (0, 5):
        assert advance(example_repo, minutes).returncode == 0
    plan_before = (example_repo / "rollouts" / "phase_4_deployment.yaml").read_bytes()
    write_metrics(example_repo, error_rate=7.5)
    out = advance(example_repo, 6)
    assert out.returncode == 4 and "ROLLED BACK: phase_4_deployment" in out.stdout
    eval_out = rollout(example_repo, "eval", "phase_4_deployment", "--key", "canary-user-1",
                       "--format", "json")
    assert json.loads(eval_out.stdout)["value"] is False  # canaries too, after a rollback
    write_metrics(example_repo)
    out = rollout(example_repo, "retry", "phase_4_deployment", "--now", at(20))
    assert out.returncode == 0, out.stderr
    assert subjects(example_repo, 1) == ["rollout(phase_4_deployment): retry from 0%"]
    assert (state(example_repo)["phase"], state(example_repo)["step"]) == ("progressing", 0)
    eval_out = rollout(example_repo, "eval", "phase_4_deployment", "--key", "canary-user-1",
                       "--format", "json")
    assert json.loads(eval_out.stdout)["reason"] == "TARGETING_MATCH"  # canaries are back
    assert advance(example_repo, 25).returncode == 0
    assert state(example_repo)["current_percentage"] == 5
    assert (example_repo / "rollouts" / "phase_4_deployment.yaml").read_bytes() == plan_before
    assert git(example_repo, "status", "--porcelain", "--", STATE) == ""


def test_the_start_line_says_start_at_like_its_commit(example_repo: Path) -> None:
    out = advance(example_repo, 0, "--dry-run")
    assert "phase_4_deployment: would start at 0%: " in out.stdout, out.stdout
    out = advance(example_repo, 0)
    assert out.stdout.startswith("phase_4_deployment: start at 0% ("), out.stdout
    assert subjects(example_repo, 1) == ["rollout(phase_4_deployment): start at 0%"]


def _add_rollout(repo: Path, key: str, requires: str | None = None) -> str:
    """A flag and its plan in one commit (a merged pull request); returns the commit."""
    req = f"requires:\n  - {requires}\n" if requires else ""
    (repo / "flags" / f"{key}.yaml").write_text(
        f"key: {key}\ndescription: test flag {key}\nowner: test-team\nrisk: low\n"
        f"targeting:\n  users: [canary-{key}]\n{req}")
    (repo / "rollouts" / f"{key}.yaml").write_text(
        f"flag: {key}\nstrategy: safe\ngates:\n  error_rate: 1.0\n")
    git(repo, "add", "flags", "rollouts")
    git(repo, "commit", "-q", "-m", f"add {key}")
    return git(repo, "rev-parse", "HEAD")


def test_reverting_the_commit_that_added_a_plan_removes_its_state_in_a_commit(
        example_repo: Path, tmp_path: Path) -> None:
    write_metrics(example_repo)
    added = _add_rollout(example_repo, "new_checkout")
    for minutes in (0, 5):
        assert advance(example_repo, minutes).returncode == 0
    assert state(example_repo, "rollouts/new_checkout.state.json")["current_percentage"] == 5
    git(example_repo, "revert", "--no-edit", added)  # the real `git revert` of the PR
    status = rollout(example_repo, "status", "new_checkout")
    assert status.returncode == 0 and "(orphaned, no plan)" in status.stdout, status.stdout
    artifact = tmp_path / "flags.json"
    out = advance(example_repo, 6, "--publish", str(artifact))
    assert out.returncode == 0, out.stderr
    assert not (example_repo / "rollouts/new_checkout.state.json").exists()
    assert subjects(example_repo, 2)[0] == "rollout(new_checkout): remove orphaned state"
    assert git(example_repo, "show", "--name-status", "--format=", "HEAD").split() == \
        ["D", "rollouts/new_checkout.state.json"]
    assert git(example_repo, "status", "--porcelain", "--", "rollouts", "flags") == ""
    assert "new_checkout" not in json.loads(artifact.read_text())["flags"]
    assert advance(example_repo, 7).stdout.count("new_checkout") == 0  # converged


def test_a_manual_rollback_pauses_the_running_rollouts_that_require_the_flag(
        example_repo: Path) -> None:
    write_metrics(example_repo)
    _add_rollout(example_repo, "dependent", requires="phase_4_deployment")
    for minutes in (0, 5):
        assert advance(example_repo, minutes).returncode == 0
    out = rollout(example_repo, "rollback", "phase_4_deployment", "--reason", "tickets",
                  "--now", at(6))
    assert out.returncode == 0, out.stderr
    assert subjects(example_repo, 2) == ["rollout(dependent): pause at 5%",
                                         "rollout(phase_4_deployment): rollback 5% → 0%"]
    dep = state(example_repo, "rollouts/dependent.state.json")
    assert (dep["phase"], dep["current_percentage"]) == ("paused", 5)
    # the dependent's canary fails its prerequisite now, whatever its own rollout says
    ev = rollout(example_repo, "eval", "dependent", "--key", "canary-dependent",
                 "--format", "json")
    assert json.loads(ev.stdout)["reason"] == "PREREQUISITE_FAILED", ev.stdout
    assert advance(example_repo, 20).returncode == 0  # paused stays paused
    assert state(example_repo, "rollouts/dependent.state.json")["current_percentage"] == 5


def test_branch_without_push_is_a_usage_error(example_repo: Path) -> None:
    head = git(example_repo, "rev-parse", "HEAD")
    for args in (["advance", "--branch", "release"], ["pause", "phase_4_deployment",
                                                      "--branch", "release"]):
        out = rollout(example_repo, *args)
        assert out.returncode == 2 and "use it with --push" in out.stderr, out.stderr
    assert git(example_repo, "rev-parse", "HEAD") == head


def test_a_publish_path_that_cannot_be_a_file_is_refused_before_the_run(
        example_repo: Path, tmp_path: Path) -> None:
    write_metrics(example_repo)
    head = git(example_repo, "rev-parse", "HEAD")
    for target in ("", "dir:", "branch:", "branch:-x", "branch:main"):
        out = advance(example_repo, 0, "--publish", target)
        assert out.returncode == 2, (target, out.stdout, out.stderr)
        assert "--publish" in out.stderr and "branch:NAME" in out.stderr, out.stderr
    (tmp_path / "not-a-folder").write_text("x")
    out = advance(example_repo, 0, "--publish", f"dir:{tmp_path / 'not-a-folder'}")
    assert out.returncode == 2 and "exists and is not a folder" in out.stderr, out.stderr
    assert git(example_repo, "rev-parse", "HEAD") == head  # nothing was committed


def test_the_reference_automated_rollback_turns_phase_4_off_for_everyone(
        example_repo: Path, tmp_path: Path) -> None:
    """The reference document's "Automated Rollback — what happens": phase_4_deployment set
    to false (canaries included) and aatc_system_enabled false, reaching applications
    through the published artifact in the same run; `status | jq .current_percentage` is 0."""
    from runner import FlagClient

    write_metrics(example_repo)
    artifact = tmp_path / "flags.json"
    for minutes in (0, 5):
        assert advance(example_repo, minutes, "--publish", str(artifact)).returncode == 0
    client = FlagClient.from_file(artifact, env={}, reload_interval=0)
    canaries = [{"targetingKey": "canary-user-1"}, {"targetingKey": "x", "region": "us-west-2"}]
    assert all(client.is_enabled("phase_4_deployment", c) for c in canaries)
    write_metrics(example_repo, p95_latency_ms=900.0)
    out = advance(example_repo, 6, "--publish", str(artifact))
    assert out.returncode == 4 and f"published {artifact}" in out.stdout, out.stdout
    client.reload()
    users = canaries + [{"targetingKey": f"user-{i}"} for i in range(300)]
    for key in ("phase_4_deployment", "aatc_system_enabled", "llm_integration_enabled"):
        assert not any(client.is_enabled(key, c) for c in users), key
    assert client.evaluate("phase_4_deployment", canaries[0]).reason == "DISABLED"
    pct = subprocess.run("python -m runner status phase_4_deployment --format json "
                         "| jq .current_percentage", shell=True, cwd=example_repo,
                         capture_output=True, text=True, check=False, env=_env())
    assert pct.stdout.strip() == "0", pct.stderr


def test_times_at_the_edge_of_the_calendar_are_errors_not_crashes(example_repo: Path) -> None:
    for now in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                "9999-12-31T23:59:59Z"):
        for args in (["advance", "--dry-run"], ["advance"], ["status"],
                     ["pause", "phase_4_deployment"]):
            out = rollout(example_repo, *args, "--now", now)
            assert out.returncode == 2, (args, now, out.stderr)
            assert "--now" in out.stderr and "internal error" not in out.stderr, out.stderr
    assert not (example_repo / STATE).exists()
    plan = example_repo / "rollouts" / "phase_4_deployment.yaml"
    plan.write_text(plan.read_text() + 'start_at: "9999-12-31T23:59:59-23:59"\n')
    git(example_repo, "commit", "-qam", "a plan starting at the end of time")
    for args in (["validate"], ["status"], ["advance", "--now", at(0)], ["build"]):
        out = rollout(example_repo, *args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        said = out.stdout + out.stderr  # validate reports on stdout, the others on stderr
        assert "rollouts/phase_4_deployment.yaml:" in said
        assert "start_at" in said and "out of range in UTC" in said, said
        assert "internal error" not in said


def test_a_state_file_time_out_of_range_is_a_problem_not_a_crash(example_repo: Path) -> None:
    assert advance(example_repo, 0).returncode == 0
    path = example_repo / STATE
    path.write_text(path.read_text().replace('"started_at": "2026-01-15T12:00:00Z"',
                                             '"started_at": "9999-12-31T23:59:59-23:59"'))
    git(example_repo, "commit", "-qam", "hand edit")
    for args in (["validate"], ["status"], ["build"], ["advance", "--now", at(5)]):
        out = rollout(example_repo, *args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        said = out.stdout + out.stderr
        assert f"{STATE}:1:1: unreadable rollout state:" in said, said
        assert "out of range in UTC" in said and "internal error" not in said


def test_a_broken_unrelated_file_does_not_block_an_emergency_rollback(example_repo: Path) -> None:
    write_metrics(example_repo)
    for minute in (0, 5):
        assert advance(example_repo, minute).returncode == 0
    assert state(example_repo)["current_percentage"] == 5
    # someone merged a broken, unrelated flag file
    (example_repo / "flags/otel_enabled.yaml").write_text("key: otel_enabled\nrisk: extreme\n")
    git(example_repo, "commit", "-qam", "break an unrelated flag")
    head = git(example_repo, "rev-parse", "HEAD")

    # moving forward stays blocked: nothing advances on an invalid repository
    out = advance(example_repo, 10)
    assert out.returncode == 1 and "flags/otel_enabled.yaml" in out.stderr
    assert "nothing advances" in out.stderr and git(example_repo, "rev-parse", "HEAD") == head
    assert state(example_repo)["current_percentage"] == 5
    out = rollout(example_repo, "resume", "phase_4_deployment", "--now", at(10))
    assert out.returncode == 1 and git(example_repo, "rev-parse", "HEAD") == head

    # stopping goes ahead, and says what else is wrong
    out = rollout(example_repo, "rollback", "phase_4_deployment", "--reason", "pager",
                  "--now", at(11))
    assert out.returncode == 0, out.stderr
    assert "flags/otel_enabled.yaml" in out.stdout + out.stderr and "goes ahead" in out.stdout + out.stderr
    assert state(example_repo)["phase"] == "rolled_back"
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): rollback 5% → 0%"
    # only the rollout's state was committed; the broken file is untouched
    changed = git(example_repo, "diff", "--name-only", head, "HEAD").split()
    assert changed == [STATE]


def test_a_broken_file_of_the_rollout_itself_blocks_its_rollback(example_repo: Path) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    plan = example_repo / "rollouts/phase_4_deployment.yaml"
    plan.write_text(plan.read_text().replace("strategy: safe", "strategy: reckless"))
    git(example_repo, "commit", "-qam", "break the plan")
    head = git(example_repo, "rev-parse", "HEAD")
    out = rollout(example_repo, "rollback", "phase_4_deployment", "--now", at(1))
    assert out.returncode == 1 and "rollouts/phase_4_deployment.yaml" in out.stderr
    assert git(example_repo, "rev-parse", "HEAD") == head


def test_a_broken_unrelated_file_does_not_keep_a_failing_rollout_from_rolling_back(
        example_repo: Path) -> None:
    """The runner's own rollback too, not only a person's: while another file is broken a
    run commits moves toward safety for the rollouts whose own files are valid, nothing else."""
    write_metrics(example_repo)
    for minute in (0, 5):
        assert advance(example_repo, minute).returncode == 0
    (example_repo / "flags/otel_enabled.yaml").write_text("key: otel_enabled\nrisk: extreme\n")
    git(example_repo, "commit", "-qam", "break an unrelated flag")
    head = git(example_repo, "rev-parse", "HEAD")
    write_metrics(example_repo, error_rate=9.0)
    out = advance(example_repo, 6)
    assert out.returncode == 4, out.stdout + out.stderr
    assert "ROLLED BACK: phase_4_deployment" in out.stdout
    assert "flags/otel_enabled.yaml" in out.stderr
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): rollback 5% → 0%"
    assert git(example_repo, "diff", "--name-only", head, "HEAD").split() == [STATE]
