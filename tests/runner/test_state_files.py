"""One state per rollout, of its plan's flag: a stray second state file and a flag renamed
under a kept state stop the runner with one clear line, and nothing is committed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tests.runner.helpers import STATE, advance, commit_all, state, subjects, write_metrics

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


def _progress(repo: Path, minutes: tuple[int, ...]) -> None:
    write_metrics(repo)
    for minute in minutes:
        out = advance(repo, minute)
        assert out.returncode == 0, out.stderr


def _line_of(repo: Path, path: str, text: str) -> int:
    lines = (repo / path).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_a_stray_second_state_is_refused_and_never_acted_on(example_repo: Path) -> None:
    _progress(example_repo, (0, 5, 10, 15, 20, 25))  # 75 %
    real = state(example_repo)
    assert real["current_percentage"] == 75
    # a copy of an older state under another name (a botched merge, a copy-paste)
    stray = {**real, "plan": "zzz", "step": 6, "current_percentage": 100, "phase": "completed"}
    (example_repo / "rollouts" / "zzz.state.json").write_text(json.dumps(stray, indent=2))
    commit_all(example_repo, "a stray state")
    head = git(example_repo, "rev-parse", "HEAD")
    line = _line_of(example_repo, "rollouts/zzz.state.json", '"flag"')
    expected = (f"rollouts/zzz.state.json:{line}:3: flag: 'phase_4_deployment' is rolled out by "
                "rollouts/phase_4_deployment.yaml, whose state is "
                "rollouts/phase_4_deployment.state.json; this file belongs to no plan: delete "
                "this one (one state per rollout)")

    validate = run_cli(["validate"], cwd=example_repo)
    assert (validate.returncode, validate.stdout.splitlines()) == (
        1, [expected, "✗ 1 problem in 9 flags, 1 plan"])
    for minute in (30, 35):  # every run: refused, nothing committed
        out = advance(example_repo, minute)
        assert out.returncode == 1, out.stderr
        assert expected in out.stderr.splitlines()
        assert "Traceback" not in out.stderr
    assert git(example_repo, "rev-parse", "HEAD") == head
    assert state(example_repo) == real

    git(example_repo, "rm", "-q", "rollouts/zzz.state.json")
    git(example_repo, "commit", "-q", "-m", "drop the stray state")
    out = advance(example_repo, 40)
    assert out.returncode == 0, out.stderr
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): 75% → 100%"
    assert state(example_repo)["phase"] == "completed"


def _rename_flag(repo: Path, old: str, new: str) -> None:
    git(repo, "mv", f"flags/{old}.yaml", f"flags/{new}.yaml")
    for path in [*(repo / "flags").glob("*.yaml"), repo / "rollouts" / f"{old}.yaml"]:
        path.write_text(path.read_text().replace(old, new))
    commit_all(repo, f"rename {old} to {new}")


def test_renaming_a_flag_under_a_kept_state_is_one_clear_problem(example_repo: Path) -> None:
    _progress(example_repo, (0, 5, 10))  # 10 %
    _rename_flag(example_repo, "phase_4_deployment", "phase_5_deployment")
    head = git(example_repo, "rev-parse", "HEAD")
    line = _line_of(example_repo, STATE, '"flag"')
    expected = (f"{STATE}:{line}:3: flag: the state is of the flag 'phase_4_deployment' but its "
                "plan rollouts/phase_4_deployment.yaml rolls out 'phase_5_deployment' (a renamed "
                f"flag?): delete {STATE} to start 'phase_5_deployment' afresh (held at 0% until "
                "`rollout resume`), or keep the flag's old name")

    validate = run_cli(["validate"], cwd=example_repo)
    assert (validate.returncode, validate.stdout.splitlines()) == (
        1, [expected, "✗ 1 problem in 9 flags, 1 plan"])
    # as pre-commit runs it, on the changed files only: the kept state is still reported
    changed = ["flags/phase_5_deployment.yaml", "rollouts/phase_4_deployment.yaml"]
    validate = run_cli(["validate", *changed], cwd=example_repo)
    assert (validate.returncode, validate.stdout.splitlines()) == (
        1, [expected, "✗ 1 problem in 2 files"])
    out = advance(example_repo, 15)
    assert out.returncode == 1, out.stderr
    assert expected in out.stderr.splitlines()
    assert git(example_repo, "rev-parse", "HEAD") == head  # no "pause", no "remove orphaned"

    # the advice: delete the state; the renamed flag starts afresh (held until a person
    # resumes it, since a person removed the runner's state)
    git(example_repo, "rm", "-q", STATE)
    git(example_repo, "commit", "-q", "-m", "start phase_5_deployment afresh")
    assert run_cli(["validate"], cwd=example_repo).returncode == 0
    out = advance(example_repo, 20)
    assert out.returncode == 0, out.stderr
    assert subjects(example_repo)[0] == "rollout(phase_5_deployment): pause at 0%"
    assert (state(example_repo)["flag"], state(example_repo)["phase"]) == ("phase_5_deployment",
                                                                           "paused")
    out = run_cli(["resume", "phase_5_deployment", "--now", "2026-01-15T12:21:00Z"],
                  cwd=example_repo)
    assert out.returncode == 0, out.stderr
    for minute in (22, 27):
        assert advance(example_repo, minute).returncode == 0
    s = state(example_repo)
    assert (s["flag"], s["phase"], s["current_percentage"]) == ("phase_5_deployment",
                                                                "progressing", 5)
    assert not any("orphan" in line or "removed" in line for line in subjects(example_repo))
