"""Environments as their users meet them (issue 20): what the CLI says and refuses.

Each test is a defect found by using the real CLI on a real two-environment repository with
a bare remote: every hint the runner prints must work when copied, every ``--env`` is
checked, and an environment's halt is named as that environment's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tests.runner.test_environments import at, two_environments

pytestmark = pytest.mark.cli_inprocess

PLAN = """\
flag: checkout
strategy: custom
steps: [0, 50, 100]
wait: 5m
gates:
  error_rate: 1.0
environments:
  staging: {}
  production:
    steps: [0, {percentage: 10, approval: true}, 100]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return two_environments(tmp_path, PLAN)


def rollout(repo: Path, *args: str) -> tuple[int, str, str]:
    out = run_cli(list(args), cwd=repo)
    return out.returncode, out.stdout, out.stderr


def test_history_checks_env_like_every_other_command(repo: Path) -> None:
    """`history --env qa` printed every commit, exit 0, where every other command said qa is
    no declared environment (exit 2)."""
    code, out, err = rollout(repo, "history", "--env", "qa")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "qa" in err and "staging, production" in err
    code, out, _ = rollout(repo, "history", "--env", "staging")
    assert code == 0


def test_status_of_a_flag_in_an_environment_its_plan_skips(repo: Path) -> None:
    """`status checkout --env qa-less` for a plan that does not run there printed nothing,
    exit 0: it says there is no such rollout there, exit 1."""
    (repo / "rollouts" / "checkout.yaml").write_text(
        PLAN.split("environments:")[0] + "environments: [production]\n")
    git(repo, "commit", "-q", "-am", "production only")
    code, out, err = rollout(repo, "status", "checkout", "--env", "staging", "--now", at(0))
    assert code == 1 and out == ""
    assert "checkout" in err and "staging" in err and err.count("\n") == 1


def test_the_approval_hint_names_the_environment(repo: Path) -> None:
    """The reason of a rollout awaiting approval said "`rollout approve checkout` lets it
    advance"; copied, that command is refused (exit 2: which environment?)."""
    for minute in (0, 6, 12, 13, 19):
        assert rollout(repo, "advance", "--now", at(minute))[0] == 0
    state = json.loads((repo / "rollouts" / "checkout.production.state.json").read_text())
    assert "`rollout approve checkout --env production` lets it advance" in state["reason"]
    out = rollout(repo, "status", "checkout", "--env", "production", "--now", at(20))[1]
    assert "`rollout approve checkout` lets" not in out


def test_an_environments_halt_is_named_and_its_unhalt_hint_works(repo: Path) -> None:
    """An environment's halt: status said "until `rollout unhalt`" (which, run, says nothing
    is halted) and the dashboard's callout did not say which environment was halted."""
    assert rollout(repo, "halt", "--env", "production", "--reason", "incident 9",
                   "--now", at(0))[0] == 0
    _, text, _ = rollout(repo, "status", "--now", at(1))
    assert "until `rollout unhalt --env production`" in text
    _, markdown, _ = rollout(repo, "status", "--format", "markdown", "--now", at(1))
    callout = [line for line in markdown.splitlines() if "halted by" in line]
    assert callout and all("production" in line for line in callout)


def test_an_environment_refusal_is_one_line_without_a_doubled_prefix(repo: Path) -> None:
    """`rollout eval checkout` said "rollout eval: error: rollout eval: this repository ..."."""
    for command in (["eval", "checkout"], ["build"]):
        code, _, err = rollout(repo, *command)
        assert code == 2 and err.count("\n") == 1
        assert err.count(f"rollout {command[0]}:") == 1, err


def test_a_state_file_of_an_undeclared_environment_says_so(repo: Path) -> None:
    """`rollouts/checkout.qa.state.json` was reported as "plan: 'checkout' is not this file's
    plan 'checkout.qa'": it names the undeclared environment."""
    assert rollout(repo, "advance", "--now", at(0))[0] == 0
    staging = repo / "rollouts" / "checkout.staging.state.json"
    (repo / "rollouts" / "checkout.qa.state.json").write_bytes(staging.read_bytes())
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a state of qa")
    head = git(repo, "rev-parse", "HEAD")
    code, out, err = rollout(repo, "validate")
    lines = [line for line in (out + err).splitlines() if "checkout.qa.state.json" in line]
    assert code == 1 and len(lines) == 1
    assert "'qa' is not a declared environment" in lines[0], lines
    code, _, _ = rollout(repo, "advance", "--now", at(6))
    assert code == 1 and git(repo, "rev-parse", "HEAD") == head


def test_a_warning_of_unreadable_metrics_names_the_environment(repo: Path) -> None:
    """Staging's metrics gone: the warning said "checkout: paused ...; then `rollout resume
    checkout`", naming neither the environment whose source failed nor a command that runs."""
    assert rollout(repo, "advance", "--now", at(0))[0] == 0
    (repo / "metrics" / "staging" / "checkout.json").unlink()
    code, _, err = rollout(repo, "advance", "--now", at(120))
    warning = [line for line in err.splitlines() if "could not be read" in line]
    assert code == 1 and len(warning) == 1
    assert "checkout@staging: paused because" in warning[0]
    assert warning[0].endswith("`rollout resume checkout --env staging`")
