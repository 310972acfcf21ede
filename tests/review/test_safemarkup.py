"""Author names and commit text are inert wherever they are shown as Markdown or Slack
mrkdwn (issue 17, section 3): the escapers of runner/safemarkup.py as a table, then one
hostile name through every surface (incident report, status dashboard, plan comment,
GitHub issue body, Slack message)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner.integrations.github_issues import Rollback, issue_body
from runner.integrations.notify import Change, slack_message
from runner.safemarkup import JOINER, defuse, markdown, mrkdwn
from tests.conftest import git, run_cli
from tests.runner.helpers import advance, at, write_metrics

pytestmark = pytest.mark.cli_inprocess

HOSTILE = "@org/team <!channel> [click](https://evil.example) <img src=x>"
J = JOINER


@pytest.mark.parametrize(("text", "expected"), [
    ("@octocat", f"@{J}octocat"),
    ("@org/team", f"@{J}org/team"),
    ("mail a@b.example", f"mail a@{J}b.example"),
    ("see #12", f"see #{J}12"),
    ("https://evil.example/x", f"https:{J}//evil.example/x"),
    ("WWW.evil.example", f"WWW{J}.evil.example"),
    ("a @ b, # c, 5:30", "a @ b, # c, 5:30"),  # nothing that starts a mention or a link
    ("plain text", "plain text"),
])
def test_defuse(text: str, expected: str) -> None:
    assert defuse(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("[click](https://evil.example)", f"\\[click\\]\\(https:{J}//evil.example\\)"),
    ("<https://evil.example>", f"\\<https:{J}//evil.example\\>"),
    ("<img src=x>", "\\<img src=x\\>"),
    ("a | b", "a \\| b"),
    ("*bold* _it_ `code`", "\\*bold\\* \\_it\\_ \\`code\\`"),
    ("Tom & Jerry &amp;", "Tom &amp; Jerry &amp;amp;"),
    ("two\nlines\there", "two lines here"),
    ("bidi \u202e", "bidi \\u202e"),
    ("@team", f"@{J}team"),
    ("Ann <ann@example.com>", "Ann \\<ann&#64;example.com\\>"),  # as 0.2 wrote it
    ("&#64;x", f"&amp;\\#{J}64;x"),
])
def test_markdown(text: str, expected: str) -> None:
    assert markdown(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("<!channel>", "&lt;!channel&gt;"),
    ("<!here|here>", "&lt;!here|here&gt;"),
    ("<@U123ABC>", f"&lt;@{J}U123ABC&gt;"),
    ("<https://evil.example|click>", f"&lt;https:{J}//evil.example|click&gt;"),
    ("@channel", f"@{J}channel"),
    ("a & b", "a &amp; b"),
    ("line\nbreak", "line\\nbreak"),
])
def test_mrkdwn(text: str, expected: str) -> None:
    assert mrkdwn(text) == expected


def test_mrkdwn_cut_never_splits_an_escape() -> None:
    out = mrkdwn("<" * 50, 20)
    assert len(out) <= 20 and out.endswith("…") and re.search(r"&[a-z]*…$", out) is None


def assert_inert(text: str, shown: bool = True) -> None:
    """Nothing of HOSTILE pings, links or renders as HTML in Markdown ``text``: outside code
    (inert as it is), every ``@`` is followed by the joiner, every ``<`` ``[`` ``(`` is
    escaped, no URL is whole; ``shown``: HOSTILE is there, escaped, outside code."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    prose = re.sub(r"(`+)(?:(?!\1).)+?\1", "", prose)
    assert re.search(r"@\w", prose) is None, prose
    assert re.search(r"(?<!\\)<(img|!channel|http)", prose) is None, prose
    assert re.search(r"(?<!\\)\]\(", prose) is None, prose
    assert "https://" not in prose
    if shown:
        assert f"\\[click\\]\\(https:{J}//evil.example\\) \\<img src=x\\>" in prose, prose


# --- every surface ---------------------------------------------------------------------------


def test_issue_body() -> None:
    rb = Rollback(flag="f", plan="f", sha="a" * 40, commit_url=None, subject=HOSTILE,
                  evidence=(HOSTILE,), date="2026-01-15T12:00:00+00:00", author=HOSTILE)
    body = issue_body(rb, first=True)
    line = next(x for x in body.splitlines() if x.startswith("The rollout was rolled back."))
    # the author is escaped; the subject and the evidence are code, inert as they are
    assert_inert(line.split("): `")[0])
    assert f"`{HOSTILE}`" in line


def test_slack_message() -> None:
    change = Change(event="rollback", flag="f", plan="f", action="rollback",
                    from_percentage=5, to_percentage=0, phase="rolled_back",
                    reason=f"rolled back by {HOSTILE}", commit="a" * 40, commit_url=None,
                    pushed=True, decided_at=datetime(2026, 1, 15, tzinfo=UTC),
                    requested_by=HOSTILE)
    doc = slack_message(change)
    objects: list[dict[str, Any]] = []
    for block in doc["blocks"]:
        objects += [o for o in [block.get("text"), *block.get("fields", []),
                                *block.get("elements", [])] if o and o["type"] == "mrkdwn"]
    assert objects and all(o.get("verbatim") is True for o in objects)
    text = json.dumps(doc, ensure_ascii=False)
    assert "<!channel>" not in text and "<https://evil" not in text and "<img" not in text
    assert re.search(r"@\w", text) is None and "https://" not in text


@pytest.fixture
def hostile_history(example_repo: Path) -> Path:
    """A rollout paused and rolled back on request of HOSTILE (the requester's name)."""
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    env = {"ROLLOUT_REQUESTED_BY": HOSTILE, "GITHUB_ACTOR": ""}
    out = run_cli(["rollback", "phase_4_deployment", "--reason", HOSTILE, "--now", at(1)],
                  cwd=example_repo, env=env)
    assert out.returncode == 0, out.stderr
    return example_repo


def test_incident_report(hostile_history: Path) -> None:
    text = run_cli(["incident", "phase_4_deployment"], cwd=hostile_history).stdout
    assert "Rolled back on request of" in text
    assert_inert(text)


def test_status_dashboard(hostile_history: Path) -> None:
    out = run_cli(["status", "--format", "markdown"], cwd=hostile_history)
    assert out.returncode == 0, out.stderr
    assert "evil.example" in out.stdout
    assert_inert(out.stdout)


def test_plan_comment(example_repo: Path) -> None:
    path = example_repo / "rollouts/phase_4_deployment.yaml"
    path.write_text(path.read_text() + f"{json.dumps(HOSTILE)}: 1\n")
    git(example_repo, "add", "-A")
    out = run_cli(["plan", "--base", "HEAD", "--now", at(0)], cwd=example_repo)
    assert "evil.example" in out.stdout, out.stdout + out.stderr
    assert_inert(out.stdout, shown=False)  # the field is code: inert as it is
