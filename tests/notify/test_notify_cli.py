"""Notifications end to end: real `rollout` processes, real git repositories (a bare
remote for --push), real HTTP receivers on loopback."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from tests.conftest import git, run_cli
from tests.notify.receivers import closed_port_url, receiver, silent_receiver
from tests.runner.helpers import advance, at, state, write_metrics

SECRET = "webhook-signing-key-9f8e7d6c5b4a"
SLACK_TOKEN = "T0SECRET1/B0SECRET2/slacktokenslacktoken"
TARGETS = '''
[tool.rollout.notify.targets.ops-slack]
type = "slack"
url_env = "SLACK_WEBHOOK_URL"
events = ["rollback", "stuck"]

[tool.rollout.notify.targets.audit]
type = "webhook"
url_env = "AUDIT_URL"
secret_env = "AUDIT_SECRET"
events = ["start", "advance", "rollback", "pause", "stuck", "completed"]
timeout = "1s"

[tool.rollout.notify.targets.pager]
type = "webhook"
url_env = "PAGER_URL"
secret_env = "AUDIT_SECRET"
events = ["rollback"]
timeout = "1s"
'''


def configure(repo: Path, text: str = TARGETS) -> None:
    with (repo / "pyproject.toml").open("a") as f:
        f.write(text)
    git(repo, "commit", "-qam", "notifications")


def verify(seen_body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), seen_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header, expected)


def test_a_pushed_rollback_is_announced_with_links_to_the_pushed_commit(
        example_repo: Path, bare_remote: Path, tmp_path: Path) -> None:
    configure(example_repo)
    git(example_repo, "push", "-q", "origin", "main")
    summary = tmp_path / "summary.md"
    with receiver() as slack, receiver() as audit, silent_receiver() as pager:
        env = {"SLACK_WEBHOOK_URL": f"{slack.url}/services/{SLACK_TOKEN}",
               "AUDIT_URL": f"{audit.url}/rollouts", "AUDIT_SECRET": SECRET,
               "PAGER_URL": pager.url, "GITHUB_ACTIONS": "true",
               "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/flags",
               "GITHUB_RUN_ID": "77", "GITHUB_STEP_SUMMARY": str(summary),
               "GITHUB_OUTPUT": str(tmp_path / "output")}
        write_metrics(example_repo)
        first = advance(example_repo, 0, "--push", env=env)
        assert first.returncode == 0, first.stderr
        write_metrics(example_repo, error_rate=1.7)
        out = advance(example_repo, 3, "--push", env=env)
        # the receiver that never answers is still holding the connection: given up on
        assert pager.accepted.is_set() and not pager.release.is_set()
    assert out.returncode == 4, out.stderr  # the rollback's own exit code, not the receiver's
    assert [s.json()["event"] for s in audit.seen] == ["start", "rollback"]
    assert len(slack.seen) == 1  # the start is not an event ops-slack asked for
    doc = audit.seen[1].json()
    assert verify(audit.seen[1].body, audit.seen[1].headers["X-Rollout-Signature-256"])
    sha = doc["commit"]["sha"]
    # the link points at a commit that is on the remote already
    assert git(bare_remote, "rev-parse", "main") == sha
    # the advance step's outputs the issues job reads: the flags and the commit to check out
    outputs = (tmp_path / "output").read_text().splitlines()
    assert "rolled_back=phase_4_deployment" in outputs and f"head={sha}" in outputs
    assert doc["commit"] == {"sha": sha, "pushed": True,
                             "url": f"https://github.com/acme/flags/commit/{sha}"}
    assert doc["run_url"] == "https://github.com/acme/flags/actions/runs/77"
    assert doc["gates"][0]["name"] == "error_rate" and doc["gates"][0]["verdict"] == "fail"
    blocks = slack.seen[0].json()["blocks"]
    assert f"<https://github.com/acme/flags/commit/{sha}|{sha[:7]}>" in blocks[1]["fields"][3]["text"]
    # the dead receiver: a warning naming the target, and the summary says so
    assert ("::warning title=rollout notify::notification not delivered: pager: rollback of "
            "phase_4_deployment: no answer within 1s") in out.stderr
    assert "notifications: 2 delivered, 1 not delivered (pager: rollback of phase_4_deployment)" \
        in out.stdout
    assert "### Notifications not delivered" in summary.read_text()
    # Markdown: the escapes render as the text (runner/safemarkup.py)
    assert "pager: rollback of phase\\_4\\_deployment" in summary.read_text()
    # no URL and no secret anywhere: output, summary, history
    history = git(example_repo, "log", "--all", "-p")
    for text in (out.stdout, out.stderr, first.stdout, first.stderr, summary.read_text(), history):
        for secret in (SECRET, SLACK_TOKEN, "slacktokenslacktoken", pager.url, audit.url):
            assert secret not in text


def test_without_push_it_is_sent_after_the_local_commit_and_never_on_a_dry_run(
        example_repo: Path) -> None:
    configure(example_repo)
    write_metrics(example_repo)
    with receiver() as audit:
        env = {"AUDIT_URL": audit.url, "AUDIT_SECRET": SECRET, "PAGER_URL": closed_port_url(),
               "SLACK_WEBHOOK_URL": closed_port_url()}
        dry = advance(example_repo, 0, "--dry-run", env=env)
        assert dry.returncode == 0 and audit.seen == []
        assert "notification" not in dry.stdout + dry.stderr
        out = advance(example_repo, 0, env=env)
        assert out.returncode == 0, out.stderr
        assert advance(example_repo, 0, env=env).returncode == 0  # nothing new: nothing sent
    assert len(audit.seen) == 1
    doc = audit.seen[0].json()
    assert doc["event"] == "start" and doc["commit"]["pushed"] is False
    assert doc["commit"]["sha"] == git(example_repo, "rev-parse", "HEAD")
    assert doc["commit"]["url"] is None and doc["repository"] is None  # no repository URL known


def test_the_progress_deadline_is_stuck_not_pause(example_repo: Path) -> None:
    configure(example_repo, TARGETS.replace('events = ["rollback", "stuck"]', 'events = ["pause"]'))
    with receiver() as slack, receiver() as audit:
        env = {"SLACK_WEBHOOK_URL": slack.url, "AUDIT_URL": audit.url, "AUDIT_SECRET": SECRET,
               "PAGER_URL": closed_port_url()}
        advance(example_repo, 0, env=env)  # no metrics at all
        out = advance(example_repo, 30, env=env)  # the 30m progress deadline
    assert out.returncode == 1, out.stderr  # paused: its metrics could not be read
    assert state(example_repo)["phase"] == "paused"
    assert [s.json()["event"] for s in audit.seen] == ["start", "stuck"]
    assert audit.seen[1].json()["action"] == "pause"
    assert slack.seen == []  # it asked for pause, and this pause is the stuck one


def test_a_person_s_pause_is_announced(example_repo: Path) -> None:
    configure(example_repo)
    write_metrics(example_repo)
    advance(example_repo, 0)
    with receiver() as audit:
        env = {"AUDIT_URL": audit.url, "AUDIT_SECRET": SECRET, "ROLLOUT_REQUESTED_BY": "alice"}
        out = run_cli(["pause", "phase_4_deployment", "--reason", "checking a report",
                       "--now", at(1)], cwd=example_repo, env=env)
    assert out.returncode == 0, out.stderr
    (seen,) = audit.seen
    doc = seen.json()
    assert (doc["event"], doc["requested_by"]) == ("pause", "alice")
    assert "checking a report" in doc["reason"]


def test_a_bad_target_or_an_unset_variable_is_a_warning_never_a_failure(example_repo: Path) -> None:
    configure(example_repo, TARGETS.replace('events = ["rollback"]', 'events = ["rolback"]'))
    write_metrics(example_repo)
    with receiver() as audit:
        env = {"AUDIT_URL": audit.url, "AUDIT_SECRET": SECRET}  # SLACK_WEBHOOK_URL unset
        out = advance(example_repo, 0, env=env)
        write_metrics(example_repo, error_rate=5)
        rolled = advance(example_repo, 2, env=env)
    assert out.returncode == 0, out.stderr
    assert ("warning: notify: pyproject.toml:") in out.stderr
    assert "tool.rollout.notify.targets.pager.events[0]: 'rolback' is not one of" in out.stderr
    assert "(this target is left out; `rollout validate` checks it)" in out.stderr
    assert rolled.returncode == 4
    assert ("warning: notification not delivered: ops-slack: rollback of phase_4_deployment: "
            "$SLACK_WEBHOOK_URL is not set") in rolled.stderr
    assert [s.json()["event"] for s in audit.seen] == ["start", "rollback"]
