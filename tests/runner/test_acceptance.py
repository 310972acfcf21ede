"""Issue 4's promises as a user meets them on the command line (acceptance review)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import git
from tests.runner.helpers import STATE, advance, at, rollout, state, subjects, write_metrics


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
    assert out.returncode == 0, out.stderr
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
        shell=True, cwd=example_repo, capture_output=True, text=True, check=False,
        env={**_env(), "PATH": _env()["PATH"]})
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
