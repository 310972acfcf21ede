"""Only a commit verified as the runner's own is "the runner's rollback" (issue 17, section
3): a person's commit with forged `Rollout-Action: rollback` trailers is never reported as
one by `rollout issue` or `rollout incident` (the incident lists it, marked as not the
runner's). Real git, the CLI, a fake GitHub API on loopback."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from runner.git import Git
from runner.integrations.github_issues import find_rollback
from runner.reconcile.last_change import runner_commit_doubts
from tests.conftest import git, run_cli
from tests.notify.receivers import fake_github
from tests.runner.helpers import STATE, advance, state, trailer, write_metrics

pytestmark = pytest.mark.cli_inprocess

FLAG = "phase_4_deployment"
TOKEN = "ghs_faketoken0123456789abcdefABCDEF"


def _forge_rollback(repo: Path, digests: str) -> str:
    """A person rolls the state back by hand and copies a runner message: ``digests`` is
    ``copied`` (the last runner commit's), ``none`` (0.1's form) or ``after`` (the right
    After digest, a wrong Before: a runner commit moved onto another state)."""
    doc = state(repo)
    before_digest = trailer(repo, "Rollout-State-After")
    doc.update(phase="rolled_back", current_percentage=0, step=0, reason="gate failed")
    text = json.dumps(doc, indent=2) + "\n"
    (repo / STATE).write_text(text)
    lines = [f"rollout({FLAG}): rollback 5% -> 0%", "", f"Rollout-Flag: {FLAG}",
             "Rollout-Action: rollback", "Rollout-From: 5", "Rollout-To: 0",
             "Rollout-Phase: rolled_back", f"Rollout-Plan: {FLAG}",
             "Rollout-Reason: gate failed"]
    if digests == "copied":
        lines += [f"Rollout-State-Before: {trailer(repo, 'Rollout-State-Before')}",
                  f"Rollout-State-After: {before_digest}"]
    elif digests == "after":
        lines += ["Rollout-State-Before: sha256:" + "0" * 64,
                  "Rollout-State-After: sha256:" + hashlib.sha256(text.encode()).hexdigest()]
    git(repo, "add", STATE)
    git(repo, "commit", "-q", "-m", "\n".join(lines))
    return git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize("digests", ["copied", "none", "after"])
def test_a_forged_rollback_is_not_the_runners(example_repo: Path, digests: str) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    forged = _forge_rollback(example_repo, digests)
    doubt = runner_commit_doubts(Git.open(example_repo), {forged: STATE})
    assert forged in doubt
    # rollout issue: no rollback of the runner's to open an issue for
    assert find_rollback(example_repo, FLAG, {}) is None
    with fake_github(TOKEN) as gh:
        out = run_cli(["issue", FLAG], cwd=example_repo, env={
            "GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": gh.url, "GITHUB_REPOSITORY": "acme/flags"})
        assert out.returncode == 0, out.stderr
        assert out.stdout == f"{FLAG}: not rolled back; no issue\n"
        assert gh.issues == []
    # rollout incident: listed, marked as not the runner's, its author named for it
    doc = json.loads(run_cli(["incident", FLAG, "--format", "json"], cwd=example_repo).stdout)
    (incident,) = doc["incidents"]
    assert incident["rollback"]["verified"] is False
    assert incident["rollback"]["automatic"] is False
    assert incident["notes"][0] == doubt[forged]
    acts = {a["name"]: a["acts"] for a in incident["actors"]}
    person = git(example_repo, "log", "-1", "--format=%an <%ae>")
    assert acts[person] == ["committed a rollback not verified as the runner's"]
    text = run_cli(["incident", FLAG], cwd=example_repo).stdout
    assert "not verified as the runner's" in text
    assert "Rolled back automatically by the runner" not in text


def test_the_runners_own_rollback_is_verified(example_repo: Path) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    write_metrics(example_repo, error_rate=3.2)
    assert advance(example_repo, 1).returncode == 4
    sha = git(example_repo, "rev-parse", "HEAD")
    assert runner_commit_doubts(Git.open(example_repo), {sha: STATE}) == {}
    rb = find_rollback(example_repo, FLAG, {})
    assert rb is not None and rb.sha == sha
    doc = json.loads(run_cli(["incident", FLAG, "--format", "json"], cwd=example_repo).stdout)
    assert doc["incidents"][0]["rollback"]["verified"] is True
    # a forged rollback after the runner's one is skipped: the issue names the runner's
    assert run_cli(["retry", FLAG, "--now", "2026-01-15T12:10:00Z"],
                   cwd=example_repo).returncode == 0
    write_metrics(example_repo)
    assert advance(example_repo, 11).returncode == 0
    _forge_rollback(example_repo, "copied")
    rb = find_rollback(example_repo, FLAG, {})
    assert rb is not None and rb.sha == sha
