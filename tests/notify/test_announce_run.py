"""What a run's Report is announced as, in-process and without a receiver: with --push only
once the commits are pushed, without it after the local commit; links from the environment
the command passed in, never the process's own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner.integrations.notify import announce, changes
from runner.model import NotifyConfig, NotifyTarget
from runner.reconcile.decide import Action, Decision
from runner.reconcile.runs import Report

NOW = datetime(2026, 1, 15, 12, 30, tzinfo=UTC)
SHA = "c31bba03d2b05a629a0884571dc3c36d324be813"
ENV = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/flags",
       "GITHUB_RUN_ID": "42"}


def rollback_report(pushed: bool) -> Report:
    d = Decision("checkout_v2", "checkout_v2", Action.ROLLBACK, None, None, "gate failed")
    return Report(decisions=[d], commits={"checkout_v2": SHA}, pushed=pushed)


#: A target whose URL variable the environment passed in does not hold: every change it is
#: told about comes back undelivered, naming the variable, and nothing is sent.
UNSET = NotifyConfig(targets=(NotifyTarget("ops", "slack", "OPS_SLACK_URL", ("rollback",)),))


@pytest.mark.parametrize(("push", "pushed", "announced"), [
    (False, False, True),   # a local commit: announced at once
    (True, True, True),     # pushed: announced
    (True, False, False),   # --push that pushed nothing: nothing a link could reach
])
def test_what_a_run_announces_depends_on_its_push(push: bool, pushed: bool, announced: bool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_SLACK_URL", "http://127.0.0.1:9/never-read")  # not the run's env
    outcome = announce(UNSET, [], rollback_report(pushed), ENV, NOW, NOW, push=push)
    assert outcome.delivered == []
    assert [(u.target, u.event, u.flag, u.why) for u in outcome.undelivered] == (
        [("ops", "rollback", "checkout_v2", "$OPS_SLACK_URL is not set")] if announced else [])


def test_links_come_from_the_environment_passed_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", "someone/else")
    rep = rollback_report(True)
    (c,) = changes(rep.decisions, rep.commits, NotifyConfig(targets=()), ENV, NOW, True)
    assert c.commit_url == f"https://github.com/acme/flags/commit/{SHA}"
    assert c.run_url == "https://github.com/acme/flags/actions/runs/42"
    assert c.repository == "acme/flags"
