"""The state layouts (issue 19): the flat default unchanged, the opt-in fanout layout, the
one-commit migration between them, and the bound on the history a run reads.

Real git repositories and real runs; the bound is asserted through the walk's own count of
the commits it read (``last_change.Walk``), never through time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.git import Git
from runner.load import check_repository
from runner.load.layout import FANOUT, FLAT, fanout_bucket, state_path
from runner.reconcile import last_change
from runner.reconcile.runs import history_bounds
from tests.conftest import git
from tests.runner.helpers import STATE, advance, rollout, subjects, write_flag, write_metrics

pytestmark = pytest.mark.cli_inprocess

FLAG = "phase_4_deployment"
FANOUT_STATE = f"rollouts-state/{fanout_bucket(FLAG)}/{FLAG}.state.json"


def fanout(repo: Path) -> None:
    py = repo / "pyproject.toml"
    py.write_text(py.read_text().replace("[tool.rollout]\n",
                                         '[tool.rollout]\nstate_layout = "fanout"\n', 1))
    git(repo, "commit", "-qam", "fanout layout")


def ok(out) -> None:  # type: ignore[no-untyped-def]
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_one_owner_of_state_paths() -> None:
    assert state_path("rollouts", FLAT, "x") == "rollouts/x.state.json"
    assert state_path("rollouts", FANOUT, "x") == f"rollouts-state/{fanout_bucket('x')}/x.state.json"
    assert state_path("deploy/rollouts", FANOUT, "x").startswith("deploy/rollouts-state/")
    assert len(fanout_bucket("x")) == 2 and fanout_bucket("x") == fanout_bucket("x")


def test_flat_is_the_default_and_unchanged(example_repo: Path) -> None:
    write_metrics(example_repo)
    ok(advance(example_repo, 0))
    assert (example_repo / STATE).is_file()
    assert not (example_repo / "rollouts-state").exists()
    assert git(example_repo, "show", "--format=", "--name-only", "HEAD") == STATE


def test_fanout_commits_and_reads_states_in_their_folder(example_repo: Path) -> None:
    fanout(example_repo)
    write_metrics(example_repo)
    ok(advance(example_repo, 0))
    ok(advance(example_repo, 6))
    assert git(example_repo, "show", "--format=", "--name-only", "HEAD") == FANOUT_STATE
    assert json.loads((example_repo / FANOUT_STATE).read_text())["current_percentage"] > 0
    assert not (example_repo / STATE).exists()
    status = rollout(example_repo, "status", FLAG, "--format", "json")
    ok(status)
    assert json.loads(status.stdout)["current_percentage"] > 0
    history = rollout(example_repo, "history", FLAG)
    ok(history)
    assert "0% → 5%" in history.stdout and "start at 0%" in history.stdout


def test_a_revert_is_held_in_the_fanout_layout(example_repo: Path) -> None:
    fanout(example_repo)
    write_metrics(example_repo)
    ok(advance(example_repo, 0))
    ok(advance(example_repo, 6))
    git(example_repo, "revert", "--no-edit", "HEAD")
    ok(advance(example_repo, 12))
    assert subjects(example_repo, 1)[0].startswith(f"rollout({FLAG}): hold")


def test_migrate_state_moves_in_one_commit_and_nothing_is_held(example_repo: Path) -> None:
    write_metrics(example_repo)
    ok(advance(example_repo, 0))
    before = (example_repo / STATE).read_bytes()
    commits = int(git(example_repo, "rev-list", "--count", "HEAD"))
    out = rollout(example_repo, "migrate-state")
    ok(out)
    assert int(git(example_repo, "rev-list", "--count", "HEAD")) == commits + 1
    assert (example_repo / FANOUT_STATE).read_bytes() == before
    assert not (example_repo / STATE).exists()
    assert 'state_layout = "fanout"' in (example_repo / "pyproject.toml").read_text()
    change = last_change.last_changes(Git.open(example_repo), {FLAG: FANOUT_STATE},
                                      earlier={FLAG: STATE})[FLAG]
    assert change is not None and change.by_runner  # read through the move
    ok(advance(example_repo, 6))
    assert subjects(example_repo, 1)[0] == f"rollout({FLAG}): 0% → 5%"
    again = rollout(example_repo, "migrate-state")
    assert again.returncode == 1 and "already fanout" in again.stderr


def test_a_revert_of_a_pre_migration_commit_is_still_held(example_repo: Path) -> None:
    write_metrics(example_repo)
    ok(advance(example_repo, 0))
    ok(advance(example_repo, 6))
    ok(rollout(example_repo, "migrate-state"))
    # a person puts back the state of the start commit, at its new place, by hand
    old = git(example_repo, "show", f"HEAD~2:{STATE}")
    (example_repo / FANOUT_STATE).write_text(old + "\n")
    git(example_repo, "commit", "-qam", "put the start back")
    ok(advance(example_repo, 12))
    held = json.loads((example_repo / FANOUT_STATE).read_text())
    assert held["phase"] == "paused" and "not by the runner" in held["reason"], held


def test_a_flat_state_left_in_a_fanout_repository_is_a_problem(example_repo: Path) -> None:
    write_metrics(example_repo)
    ok(advance(example_repo, 0))
    fanout(example_repo)  # the setting without the move
    problems = [str(p) for p in check_repository(example_repo).problems]
    assert any(p.startswith(STATE) and "rollout migrate-state" in p for p in problems), problems
    out = advance(example_repo, 6)
    assert out.returncode == 1 and STATE in out.stdout + out.stderr


def test_a_state_outside_its_fanout_folder_is_a_problem(example_repo: Path) -> None:
    fanout(example_repo)
    write_metrics(example_repo)
    ok(advance(example_repo, 0))
    wrong = example_repo / "rollouts-state" / "zz" / f"{FLAG}.state.json"
    wrong.parent.mkdir()
    (example_repo / FANOUT_STATE).rename(wrong)
    problems = [str(p) for p in check_repository(example_repo).problems]
    assert any("rollouts-state/zz/" in p and FANOUT_STATE in p for p in problems), problems


def test_a_bad_state_layout_names_its_line(example_repo: Path) -> None:
    py = example_repo / "pyproject.toml"
    py.write_text(py.read_text().replace("[tool.rollout]\n",
                                         '[tool.rollout]\nstate_layout = "sideways"\n', 1))
    out = rollout(example_repo, "validate")
    assert out.returncode == 1
    assert "pyproject.toml:" in out.stdout + out.stderr and "state_layout" in out.stdout + out.stderr


def _walked(repo: Path) -> int:
    checked = check_repository(repo)
    assert checked.repository is not None, checked.problems
    repo_ = checked.repository
    g = Git.open(repo)
    paths = {f: g.rel(state_path(repo_.config.rollouts_dir, repo_.config.state_layout, p.name))
             for f, p in repo_.plans.items()}
    earlier, plans = history_bounds(g, repo_.config, {f: p.name for f, p in repo_.plans.items()})
    walk = last_change.Walk()
    last_change.last_changes(g, paths, earlier=earlier, plans=plans, walk=walk)
    return walk.commits


@pytest.mark.parametrize("layout", [FLAT, FANOUT])
def test_a_plan_that_never_ran_does_not_make_runs_read_the_whole_history(
        example_repo: Path, layout: str) -> None:
    if layout == FANOUT:
        fanout(example_repo)
    write_metrics(example_repo)
    for minute in range(0, 60, 6):  # a history of runner commits
        ok(advance(example_repo, minute))
    history = int(git(example_repo, "rev-list", "--count", "HEAD"))
    # then a person adds a plan that starts in the future: it never gets a runner commit
    write_flag(example_repo, "later_flag")
    (example_repo / "rollouts" / "later.yaml").write_text(
        "flag: later_flag\nstrategy: safe\nwait: 5m\nstart_at: '2099-01-01T00:00:00Z'\n"
        "gates:\n  error_rate: 1.0\n")
    git(example_repo, "add", "rollouts", "flags")
    git(example_repo, "commit", "-qm", "a plan for later")
    ok(advance(example_repo, 60))
    # the walk stops at the plan's addition: the commits after it, and it
    assert _walked(example_repo) <= 3 < history


def test_a_plan_that_never_ran_from_the_first_commit_is_not_walked_for(example_repo: Path) -> None:
    write_flag(example_repo, "later_flag")
    (example_repo / "rollouts" / "later.yaml").write_text(
        "flag: later_flag\nstrategy: safe\nwait: 5m\nstart_at: '2099-01-01T00:00:00Z'\n"
        "gates:\n  error_rate: 1.0\n")
    git(example_repo, "add", "rollouts", "flags")
    git(example_repo, "commit", "-qm", "a plan for later, from the start")
    write_metrics(example_repo)
    for minute in range(0, 60, 6):
        ok(advance(example_repo, minute))
    assert int(git(example_repo, "rev-list", "--count", "HEAD")) > 5
    # its state file was never touched: the walk is for phase_4_deployment's newest commit
    assert _walked(example_repo) <= 1


def test_a_deleted_state_of_a_stateless_plan_is_still_held(example_repo: Path) -> None:
    write_metrics(example_repo)
    ok(advance(example_repo, 0))
    git(example_repo, "rm", "-q", STATE)
    git(example_repo, "commit", "-qm", "drop the state")
    ok(advance(example_repo, 6))
    held = json.loads((example_repo / STATE).read_text())
    assert held["phase"] == "paused" and "not by the runner" in held["reason"], held


PRODUCTION_STATE = f"rollouts/{FLAG}.production.state.json"


def test_migrate_state_environment_continues_mid_way_in_one_commit_nothing_held(
        example_repo: Path) -> None:
    """Upgrading to environments: `migrate-state --environment production` declares it and
    renames every state with its environment added, in one commit; the rollout half-way on
    goes on there at the next run (never held as a person's edit), and a revert of a step
    made before the upgrade is still held."""
    write_metrics(example_repo)
    ok(advance(example_repo, 0))
    ok(advance(example_repo, 6))
    before = json.loads((example_repo / STATE).read_text())
    assert before["current_percentage"] == 5
    commits = int(git(example_repo, "rev-list", "--count", "HEAD"))
    out = rollout(example_repo, "migrate-state", "--environment", "production")
    ok(out)
    assert "to the environment production" in out.stdout
    assert int(git(example_repo, "rev-list", "--count", "HEAD")) == commits + 1
    assert not (example_repo / STATE).exists()
    after = json.loads((example_repo / PRODUCTION_STATE).read_text())
    assert after == {**before, "environment": "production"}
    assert "[tool.rollout.environments.production]" in (example_repo / "pyproject.toml").read_text()
    assert git(example_repo, "status", "--porcelain", "--", "rollouts", "pyproject.toml") == ""
    ok(rollout(example_repo, "validate"))
    git_ = Git.open(example_repo)
    earlier = history_bounds(git_, check_repository(example_repo).salvaged.config,
                             {FLAG: FLAG}, "production")[0]
    change = last_change.last_changes(git_, {FLAG: PRODUCTION_STATE}, earlier=earlier)[FLAG]
    assert change is not None and change.by_runner  # read through the move
    ok(advance(example_repo, 12))
    assert subjects(example_repo, 1)[0] == f"rollout({FLAG}@production): 5% → 10%"
    moved = json.loads((example_repo / PRODUCTION_STATE).read_text())
    assert moved["current_percentage"] == 10 and moved["phase"] == "progressing"
    again = rollout(example_repo, "migrate-state", "--environment", "production")
    assert again.returncode == 1 and "nothing to do" in again.stderr


def test_migrate_state_environment_after_a_person_edit_holds_and_declared_config(
        example_repo: Path) -> None:
    """The user declares the environments first (uncommitted: it joins the commit); a
    person's edit of the state before the upgrade is still a person's after it."""
    write_metrics(example_repo)
    ok(advance(example_repo, 0))
    ok(advance(example_repo, 6))
    # a person puts back the start's state by hand, then the upgrade
    old = git(example_repo, "show", f"HEAD~1:{STATE}")
    (example_repo / STATE).write_text(old + "\n")
    git(example_repo, "commit", "-qam", "put the start back")
    py = example_repo / "pyproject.toml"
    py.write_text(py.read_text() + "\n[tool.rollout.environments.staging]\n"
                  "[tool.rollout.environments.production]\n")
    # only production runs the plan: staging has no rollout of it to wait for
    plan = example_repo / f"rollouts/{FLAG}.yaml"
    plan.write_text(plan.read_text() + "environments: [production]\n")
    git(example_repo, "add", "-A", "rollouts")
    git(example_repo, "commit", "-qm", "the plan runs in production")
    bad = rollout(example_repo, "migrate-state", "--environment", "prod")
    assert bad.returncode == 1 and "'prod' is not a declared environment" in bad.stderr
    usage = rollout(example_repo, "migrate-state", "--environment", "Prod")
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1
    ok(rollout(example_repo, "migrate-state", "--environment", "production"))
    assert git(example_repo, "status", "--porcelain", "--", "rollouts", "pyproject.toml") == ""
    assert "[tool.rollout.environments.staging]" in git(example_repo, "show", "HEAD:pyproject.toml")
    ok(advance(example_repo, 12))
    held = json.loads((example_repo / PRODUCTION_STATE).read_text())
    assert held["phase"] == "paused" and "not by the runner" in held["reason"], held


def test_migrate_state_environment_in_the_fanout_layout(example_repo: Path) -> None:
    write_metrics(example_repo)
    ok(advance(example_repo, 0))
    ok(rollout(example_repo, "migrate-state"))
    ok(advance(example_repo, 6))
    ok(rollout(example_repo, "migrate-state", "--environment", "production"))
    moved = f"rollouts-state/{fanout_bucket(FLAG)}/{FLAG}.production.state.json"
    assert json.loads((example_repo / moved).read_text())["environment"] == "production"
    ok(advance(example_repo, 12))
    assert subjects(example_repo, 1)[0] == f"rollout({FLAG}@production): 5% → 10%"
