"""The kill switch in the runner: real git, the real CLI. While ``EMERGENCY_SHUTDOWN``
(committed in ``[tool.rollout]`` or in the runner's environment) or a flag's own override
holds a flag off, its rollout does not advance; a failing gate still rolls it back; lifted,
it goes on by itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git
from tests.runner.helpers import advance, rollout, state, status, subjects, write_metrics

pytestmark = pytest.mark.cli_inprocess

FLAG = "phase_4_deployment"


def _switch(repo: Path, on: bool) -> None:
    path = repo / "pyproject.toml"
    text = path.read_text()
    if on:
        text = text.replace("[tool.rollout]\n", "[tool.rollout]\nemergency_shutdown = true\n", 1)
    else:
        text = text.replace("emergency_shutdown = true\n", "")
    path.write_text(text)
    git(repo, "commit", "-q", "-am", f"kill switch {'on' if on else 'off'}")


def _started_at_5(repo: Path) -> None:
    write_metrics(repo)
    assert advance(repo, 0).returncode == 0
    assert advance(repo, 5).returncode == 0
    assert state(repo)["current_percentage"] == 5


def test_committed_kill_switch_holds_status_shows_it_lifting_continues(
        example_repo: Path) -> None:
    _started_at_5(example_repo)
    _switch(example_repo, True)
    out = advance(example_repo, 10)
    assert out.returncode == 0, out.stderr
    why = "kill switch: EMERGENCY_SHUTDOWN=true (committed in pyproject.toml)"
    assert why in out.stdout
    st = state(example_repo)
    assert st["current_percentage"] == 5 and st["phase"] == "progressing"
    assert st["reason"].startswith(f"held at 5%: {why}")
    assert subjects(example_repo)[0] == f"rollout({FLAG}): observe at 5%"
    head = git(example_repo, "rev-parse", "HEAD")
    for minute in (15, 20, 30):  # recorded once; never an advance
        assert advance(example_repo, minute).returncode == 0
        assert state(example_repo)["current_percentage"] == 5
    assert git(example_repo, "rev-parse", "HEAD") == head
    s = status(example_repo)
    assert s["kill_switch"] == why
    text = rollout(example_repo, "status").stdout
    assert "kill switch" in text and "EMERGENCY_SHUTDOWN" in text
    md = rollout(example_repo, "status", "--format", "markdown").stdout
    assert "kill switch" in md.lower()

    _switch(example_repo, False)
    out = advance(example_repo, 35)
    assert out.returncode == 0, out.stderr
    st = state(example_repo)
    assert st["phase"] == "progressing" and st["current_percentage"] == 5
    assert "kill switch was lifted" in st["reason"]
    assert subjects(example_repo)[0] == f"rollout({FLAG}): resume at 5%"
    assert "kill_switch" not in status(example_repo)
    # the step's wait counts from the lift: not before 5 minutes later
    advance(example_repo, 37)
    assert state(example_repo)["current_percentage"] == 5
    advance(example_repo, 40)
    assert state(example_repo)["current_percentage"] == 10


def test_kill_switch_in_the_runners_environment(example_repo: Path) -> None:
    _started_at_5(example_repo)
    env = {"EMERGENCY_SHUTDOWN": "yes"}
    out = advance(example_repo, 10, env=env)
    assert out.returncode == 0, out.stderr
    assert "kill switch: EMERGENCY_SHUTDOWN=yes (in the runner's environment)" in out.stdout
    assert state(example_repo)["current_percentage"] == 5
    s = rollout(example_repo, "status", FLAG, "--format", "json", env=env)
    assert "in the runner's environment" in s.stdout
    # not a start either
    out = advance(example_repo, 15, env={"EMERGENCY_SHUTDOWN": "false"})
    assert "kill switch was lifted" in state(example_repo)["reason"]


def test_unrecognised_value_fails_closed_with_an_error_line(example_repo: Path) -> None:
    _started_at_5(example_repo)
    out = advance(example_repo, 10, env={"EMERGENCY_SHUTDOWN": "enabled"})
    assert out.returncode == 0, out.stderr
    assert state(example_repo)["current_percentage"] == 5
    assert "held at 5%" in out.stdout and "EMERGENCY_SHUTDOWN='enabled'" in out.stdout
    assert "error: EMERGENCY_SHUTDOWN='enabled' is not one of true/false/1/0/on/off/yes/no: " \
        "treated as shut down" in out.stderr
    # a long value is quoted short, in the reason as in the error
    out = advance(example_repo, 12, env={"EMERGENCY_SHUTDOWN": "x" * 5000})
    assert f"EMERGENCY_SHUTDOWN='{'x' * 40}'…" in out.stderr and "x" * 41 not in out.stderr
    assert "x" * 41 not in state(example_repo)["reason"]
    assert "::error" not in out.stderr
    out = advance(example_repo, 15, env={"EMERGENCY_SHUTDOWN": "enabled", "GITHUB_ACTIONS": "true"})
    assert "::error title=kill switch::EMERGENCY_SHUTDOWN='enabled' is not one of" in out.stderr


def test_a_flags_override_holds_it(example_repo: Path) -> None:
    _started_at_5(example_repo)
    out = advance(example_repo, 10, env={"PHASE_4_DEPLOYMENT": "false"})
    assert out.returncode == 0, out.stderr
    assert (f"kill switch: {FLAG}'s override PHASE_4_DEPLOYMENT=false (in the runner's "
            "environment) serves off") in out.stdout
    assert state(example_repo)["current_percentage"] == 5
    # an override serving the rollout's own variant holds nothing
    advance(example_repo, 15, env={"PHASE_4_DEPLOYMENT": "true"})
    assert "kill switch was lifted" in state(example_repo)["reason"]


def test_a_failing_gate_under_the_switch_still_rolls_back(example_repo: Path) -> None:
    _started_at_5(example_repo)
    _switch(example_repo, True)
    assert advance(example_repo, 10).returncode == 0
    write_metrics(example_repo, error_rate=1.7)
    out = advance(example_repo, 15)
    assert out.returncode == 4, out.stdout + out.stderr
    st = state(example_repo)
    assert st["phase"] == "rolled_back" and st["current_percentage"] == 0


def test_no_start_under_the_switch(example_repo: Path) -> None:
    write_metrics(example_repo)
    head = git(example_repo, "rev-parse", "HEAD")
    out = advance(example_repo, 0, env={"EMERGENCY_SHUTDOWN": "1"})
    assert out.returncode == 0 and "pending: kill switch" in out.stdout
    assert git(example_repo, "rev-parse", "HEAD") == head
    s = rollout(example_repo, "status", FLAG, env={"EMERGENCY_SHUTDOWN": "1"}).stdout
    assert "not started: kill switch: EMERGENCY_SHUTDOWN=1 (in the runner's environment)" in s


def test_dashboard_and_openmetrics_show_the_switch(example_repo: Path) -> None:
    _started_at_5(example_repo)
    env = {"EMERGENCY_SHUTDOWN": "on"}
    md = rollout(example_repo, "status", "--format", "markdown", env=env).stdout
    assert "> [!CAUTION]\n> kill switch: EMERGENCY\\_SHUTDOWN=on \\(in the runner" in md
    assert "| step 2 of 7 | — |" in md  # no next step while it holds
    assert "0% (kill switch;" in md and "held off by the kill switch" in md
    om = rollout(example_repo, "status", "--format", "openmetrics", env=env).stdout
    assert f'rollout_kill_switch{{flag="{FLAG}",plan="{FLAG}"}} 1' in om
    om = rollout(example_repo, "status", "--format", "openmetrics").stdout
    assert "rollout_kill_switch" not in om
    err = rollout(example_repo, "status", env={"EMERGENCY_SHUTDOWN": "enabled"})
    assert "error: EMERGENCY_SHUTDOWN='enabled' is not one of" in err.stderr
    assert "treated as shut down" in err.stdout


def test_sdk_fails_closed_on_an_unrecognised_value(example_repo: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    from runner.evaluate.compile import FlagSet
    from runner.evaluate.environment import env_state
    from runner.load import check_repository
    from runner.sdk import FlagClient

    repo = check_repository(example_repo).repository
    assert repo is not None
    flags = FlagSet.from_repository(repo)
    env = {"EMERGENCY_SHUTDOWN": "Enabled-by-oncall"}
    with caplog.at_level("ERROR", logger="runner.evaluate"):
        state = env_state(flags, env)
    assert state.killed and state.error is not None
    assert "EMERGENCY_SHUTDOWN='Enabled-by-oncall'" in state.error
    assert any(r.levelname == "ERROR" and "EMERGENCY_SHUTDOWN='Enabled-by-oncall'" in r.message
               and "treated as shut down" in r.message for r in caplog.records)
    client = FlagClient(flags, env=env)
    for key, f in flags.flags.items():  # every flag off: its default variant, DISABLED
        r = client.evaluate(key, {"targetingKey": "u1"})
        assert (r.variant, r.reason) == (f.default_variant, "DISABLED"), key
    # the recognised spellings keep their meaning, in any case and with spaces
    for word in ("true", "1", "ON", " yes "):
        assert env_state(flags, {"EMERGENCY_SHUTDOWN": word}).killed
    for word in ("false", "0", "Off", "no", ""):
        st = env_state(flags, {"EMERGENCY_SHUTDOWN": word})
        assert not st.killed and st.error is None


def test_eval_says_the_kill_switch_decided(example_repo: Path) -> None:
    out = rollout(example_repo, "eval", FLAG, "--key", "u1", env={"EMERGENCY_SHUTDOWN": "true"})
    assert out.returncode == 0, out.stderr
    assert "reason DISABLED" in out.stdout
    assert "decided by the kill switch: EMERGENCY_SHUTDOWN=true (in this environment)" in out.stdout
    out = rollout(example_repo, "eval", FLAG, "--key", "u1", "--format", "json",
                  env={"EMERGENCY_SHUTDOWN": "enabled"})
    assert out.returncode == 0, out.stderr
    assert "treated as shut down" in out.stderr
    assert '"reason": "DISABLED"' in out.stdout and "not a recognised value" in out.stdout
    _switch(example_repo, True)
    out = rollout(example_repo, "eval", FLAG, "--key", "u1")
    assert "decided by the kill switch: emergency_shutdown = true (committed" in out.stdout
    _switch(example_repo, False)
    out = rollout(example_repo, "eval", FLAG, "--key", "u1", env={"PHASE_4_DEPLOYMENT": "false"})
    assert "decided by PHASE_4_DEPLOYMENT=false (the flag's override" in out.stdout
    out = rollout(example_repo, "eval", FLAG, "--key", "u1")
    assert "decided by" not in out.stdout
