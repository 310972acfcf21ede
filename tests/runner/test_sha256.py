"""A repository with SHA-256 object names (64 hex digits) works as one with SHA-1 names:
steps are committed, a person's revert is held, and ``rollout history`` links the revert."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from runner.git import REVERTS
from tests.conftest import cli_env, git, make_example_repo
from tests.runner.helpers import advance, rollout, state, trailer, write_metrics

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


FLAG = "phase_4_deployment"


@pytest.fixture
def sha256_repo(tmp_path: Path) -> Path:
    repo = make_example_repo(tmp_path / "repo", init_args=("--object-format=sha256",))
    assert git(repo, "rev-parse", "--show-object-format") == "sha256"
    return repo


def test_advance_revert_hold_and_history_links_with_sha256_names(sha256_repo: Path) -> None:
    repo = sha256_repo
    write_metrics(repo)
    for minute in (0, 5):
        out = advance(repo, minute)
        assert out.returncode == 0, out.stderr
    assert state(repo)["current_percentage"] == 5
    step = git(repo, "rev-parse", "HEAD")
    assert len(step) == 64 and trailer(repo, "Rollout-Action") == "advance"

    # the person reverts a month after the runner's (simulated) step
    later = "2026-02-15T12:00:00Z"
    subprocess.run(["git", "revert", "--no-edit", "HEAD"], cwd=repo, check=True,
                   capture_output=True,
                   env=cli_env({"GIT_AUTHOR_DATE": later, "GIT_COMMITTER_DATE": later}))
    revert = git(repo, "rev-parse", "HEAD")
    # with the reverted commit out of view, the revert still names it in full
    out = rollout(repo, "history", FLAG, "--format", "json", "--since", "2026-02-01")
    assert [(e["sha"], e["reverts"]) for e in json.loads(out.stdout)] == [(revert, step)]
    out = advance(repo, 10)
    assert out.returncode == 0, out.stderr
    hold = git(repo, "rev-parse", "HEAD")
    assert hold != revert and state(repo)["phase"] == "paused"
    assert trailer(repo, "Rollout-Action") == "hold"
    assert trailer(repo, "Rollout-Reverted-Commit") == step

    out = rollout(repo, "history", FLAG, "--format", "json")
    assert out.returncode == 0, out.stderr
    by_sha = {e["sha"]: e for e in json.loads(out.stdout)}
    assert by_sha[revert]["action"] == "revert" and by_sha[revert]["reverts"] == step
    assert by_sha[step]["reverted_by"] == [revert]
    assert by_sha[hold]["held_after_revert_of"] == step
    assert by_sha[hold]["reconciles"] == revert
    text = rollout(repo, "history", FLAG).stdout
    assert f"reverts {step[:7]}" in text and f"reverted by {revert[:7]}" in text


@pytest.mark.parametrize("digits", [7, 40, 64])
def test_the_revert_line_names_sha1_and_sha256_commits(digits: int) -> None:
    name = ("0123456789abcdef" * 4)[:digits]
    m = REVERTS.search(f"Revert \"x\"\n\nThis reverts commit {name}.\n")
    assert m is not None and m[1] == name


def test_a_longer_run_of_hex_is_no_commit_name() -> None:
    assert REVERTS.search("This reverts commit " + "a" * 65 + ".") is None
    assert REVERTS.search("This reverts commit abc123.") is None  # too short
