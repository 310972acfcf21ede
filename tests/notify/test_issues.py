"""`rollout issue` against a fake of the GitHub REST API on loopback: one issue per
rolled-back rollout, a comment at the next rollback, nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tests.notify.receivers import fake_github
from tests.runner.helpers import advance, at, write_metrics

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


TOKEN = "ghs_faketoken0123456789abcdefABCDEF"
FLAG = "phase_4_deployment"


def env_for(url: str, token: str = TOKEN) -> dict[str, str]:
    return {"GITHUB_TOKEN": token, "GITHUB_API_URL": url, "GITHUB_REPOSITORY": "acme/flags",
            "GITHUB_SERVER_URL": "https://github.com"}


def roll_back(repo: Path, minute: float) -> str:
    write_metrics(repo)
    advance(repo, minute)
    write_metrics(repo, error_rate=3.2)
    assert advance(repo, minute + 1).returncode == 4
    return git(repo, "rev-parse", "HEAD")


def test_one_issue_per_rollout_then_a_comment_at_the_next_rollback(example_repo: Path) -> None:
    first = roll_back(example_repo, 0)
    with fake_github(TOKEN) as gh:
        env = env_for(gh.url)
        out = run_cli(["issue", FLAG], cwd=example_repo, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout == f"{FLAG}: opened issue #1\n"
        (issue,) = gh.issues
        assert issue["title"] == f"Rollout rolled back: {FLAG}"
        assert [lb["name"] for lb in issue["labels"]] == ["rollout-rollback"]
        body = issue["body"]
        assert f"https://github.com/acme/flags/commit/{first}" in body
        assert "error_rate = 3.2 (threshold <= 1, window 5m): fail" in body
        assert "rolled back at 0%: gate failed" in body
        # the rollback's incident report (`rollout incident`) comes with it, folded
        assert "<!-- rollout-incident -->" in body and "| Time to rollback |" in body
        assert body.index("<details>") < body.index("<!-- rollout-incident -->")
        # the same rollback again (a re-run job): nothing new
        again = run_cli(["issue", FLAG], cwd=example_repo, env=env)
        assert again.stdout == f"{FLAG}: already recorded on issue #1\n"
        assert len(gh.issues) == 1 and gh.comments == {}
        # retried, rolled back again: a comment on the same issue
        assert run_cli(["retry", FLAG, "--now", at(10)], cwd=example_repo).returncode == 0
        second = roll_back(example_repo, 11)
        out = run_cli(["issue", f"{FLAG},"], cwd=example_repo, env=env)  # advance's output form
        assert out.stdout == f"{FLAG}: commented on issue #1\n", out.stderr
        assert len(gh.issues) == 1
        (comment,) = gh.comments[1]
        assert "rolled back again" in comment["body"] and second in comment["body"]
        assert run_cli(["issue", FLAG], cwd=example_repo, env=env).stdout == \
            f"{FLAG}: already recorded on issue #1\n"
        assert len(gh.comments[1]) == 1
        # it is found by the label filter of the list issues API, not by search
        assert ("GET", "/repos/acme/flags/issues") in gh.calls
        assert not any("search" in path for _, path in gh.calls)
        # a closed issue is done with: the next rollback opens a new one
        gh.issues[0]["state"] = "closed"
        assert run_cli(["retry", FLAG, "--now", at(20)], cwd=example_repo).returncode == 0
        roll_back(example_repo, 21)
        assert run_cli(["issue", FLAG], cwd=example_repo, env=env).stdout == \
            f"{FLAG}: opened issue #2\n"


def test_a_flag_not_rolled_back_opens_nothing_and_no_flags_is_fine(example_repo: Path) -> None:
    write_metrics(example_repo)
    advance(example_repo, 0)
    with fake_github(TOKEN) as gh:
        out = run_cli(["issue", FLAG], cwd=example_repo, env=env_for(gh.url))
        assert out.returncode == 0 and out.stdout == f"{FLAG}: not rolled back; no issue\n"
        empty = run_cli(["issue", ""], cwd=example_repo, env=env_for(gh.url))
        assert empty.returncode == 0 and "no issue to open" in empty.stdout
        assert gh.issues == [] and not [c for c in gh.calls if c[0] == "POST"]


def test_a_refused_token_fails_the_command_without_printing_the_token(example_repo: Path) -> None:
    roll_back(example_repo, 0)
    with fake_github(TOKEN) as gh:
        wrong = "ghs_wrongtoken0123456789abcdefABCDEF"
        out = run_cli(["issue", FLAG], cwd=example_repo, env=env_for(gh.url, wrong))
        assert gh.unauthorized == 1
    assert out.returncode == 1
    assert "HTTP 401: Bad credentials" in out.stderr
    assert wrong not in out.stdout + out.stderr
    unset = run_cli(["issue", FLAG], cwd=example_repo, env={"GITHUB_TOKEN": ""})
    assert unset.returncode == 1 and "GITHUB_TOKEN is not set" in unset.stderr
