"""`rollout incident`: reports of rollbacks from git alone, on one real repository driven
by the real CLI (built once for the module): an automatic rollback after a failure counted
below failure_limit, published on a branch; a retry, a person's hostile `git revert`, the
runner's hold, a resume and a rollback requested by a person."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.review.audit import Entry
from runner.review.incident import build_incidents, parse_gate
from runner.review.incident_markdown import LIMIT, incident_markdown
from tests.conftest import cli_env, git, make_example_repo, run_cli
from tests.review.mermaid_gantt import gantt_tasks
from tests.runner.helpers import write_metrics

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


FLAG = "phase_4_deployment"
# the simulated clock a little before the real one: publication commits are dated by the
# machine's clock (the real-world event), so they come after the rollbacks they serve
T0 = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
HOSTILE_AUTHOR = "Eve \u202e`rm -rf` *bold* &amp; [x](http://e.example) @team"
HOSTILE_SUBJECT = "Revert <img src=x onerror=alert(1)> `code` | pipe ::error::x"
REQUESTER = "Alice <script>alert(1)</script>"


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def secs(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def cli(repo: Path, *args: str, env: dict[str, str] | None = None,
        ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    out = run_cli(list(args), cwd=repo, env=env)
    assert out.returncode in ok, (args, out.returncode, out.stderr)
    return out


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_example_repo(tmp_path_factory.mktemp("incident") / "repo")
    plan = root / "rollouts" / f"{FLAG}.yaml"
    plan.write_text(plan.read_text().replace("failure_limit: 1", "failure_limit: 2"))
    git(root, "commit", "-qam", "two failed evaluations before a rollback")
    pub = ("--publish", "branch:published")
    write_metrics(root)
    for minute in (0, 5, 10):
        cli(root, "advance", "--now", at(minute), *pub)
    write_metrics(root, error_rate=2.5)
    cli(root, "advance", "--now", at(12), *pub)  # observe: 1 of 2 failures
    cli(root, "advance", "--now", at(14), *pub, ok=(4,))  # rolled back
    write_metrics(root)
    cli(root, "retry", FLAG, "--now", at(20), env={"ROLLOUT_REQUESTED_BY": "Rita Retry"})
    for minute in (25, 30):
        cli(root, "advance", "--now", at(minute))
    # a person reverts the last step, with a hostile name and message, dated as it happened
    reverted = git(root, "rev-parse", "HEAD")
    git(root, "revert", "--no-commit", "HEAD")
    date = {"GIT_AUTHOR_DATE": at(31), "GIT_COMMITTER_DATE": at(31),
            "GIT_AUTHOR_NAME": HOSTILE_AUTHOR, "GIT_COMMITTER_NAME": HOSTILE_AUTHOR}
    subprocess.run(["git", "commit", "-q", "-m", HOSTILE_SUBJECT, "-m",
                    "<b>why</b>\n::warning::not a command", "-m",
                    f"This reverts commit {reverted}."], cwd=root, env=cli_env(date),
                   check=True)
    cli(root, "advance", "--now", at(32))  # hold
    cli(root, "resume", FLAG, "--now", at(35), env={"ROLLOUT_REQUESTED_BY": "Rob Resume"})
    cli(root, "rollback", FLAG, "--now", at(42), "--reason", "users saw `500`s <b>now</b>",
        env={"ROLLOUT_REQUESTED_BY": REQUESTER})
    return root


def report(repo: Path, *args: str) -> dict[str, Any]:
    out = cli(repo, "incident", FLAG, "--format", "json", *args)
    assert out.stdout.isascii()  # no character of a commit reaches a terminal raw
    return json.loads(out.stdout)


def by_kind(incident: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in incident["timeline"]]


def test_automatic_rollback_timeline_and_time_to_rollback(repo: Path) -> None:
    doc = report(repo, "--published-branch", "published", "--users", "6000")
    assert [i["number"] for i in doc["incidents"]] == [2, 1]  # newest first
    first = doc["incidents"][1]
    rb = first["rollback"]
    assert (rb["automatic"], rb["requested_by"], rb["from"], rb["time"]) == (True, None, 10,
                                                                             at(14))
    assert by_kind(first)[:5] == ["start", "advance", "advance", "observe", "rollback"]
    assert by_kind(first)[-2:] in (["retry", "published"], ["published", "retry"])
    # the first failing evaluation is the observe commit below failure_limit, with its values
    fail = first["first_failure"]
    assert (fail["kind"], fail["time"]) == ("observe", at(12))
    gate = next(g for g in fail["gates"] if g["name"] == "error_rate")
    assert (gate["value"], gate["verdict"], gate["threshold"]) == (2.5, "fail", "<= 1")
    assert gate["evaluated_at"] == at(12) and "2.5" in gate["detail"]
    assert "first failing evaluation" in first["timeline"][3]["marks"]
    exposure = first["exposure"]
    assert exposure["began"]["time"] == at(5) and exposure["began"]["to"] == 5
    assert (exposure["peak_percentage"], exposure["peak_since"]) == (10, at(10))
    assert (exposure["peak_seconds"], exposure["exposed_seconds"]) == (240, 540)
    assert (exposure["users"], exposure["users_at_peak"]) == (6000, 600)
    # published: the publication branch commit naming the rollback as its source
    pub = first["published"]
    assert pub["source_commit"] == rb["sha"] and pub["branch"] == "published"
    published_at = git(repo, "log", "-1", "--format=%cI", pub["sha"])
    assert git(repo, "log", "-1", "--format=%(trailers:key=Rollout-Source-Commit,valueonly)",
               pub["sha"]) == rb["sha"]
    ttr = first["time_to_rollback"]
    assert ttr["failure_to_rollback_seconds"] == 120
    assert ttr["rollback_to_published_seconds"] == secs(published_at) - secs(at(14)) > 0
    assert ttr["failure_to_published_seconds"] == secs(published_at) - secs(at(12))
    names = {a["name"]: a["acts"] for a in first["actors"]}
    assert names["rollout-runner[bot]"][:1] == ["runner commits"]
    assert "published the rollback" in names["rollout-runner[bot]"]
    assert names["Rita Retry"] == ["requested the retry"]


def test_person_rollback_with_revert_hold_and_resume(repo: Path) -> None:
    doc = report(repo, "--published-branch", "published")
    last = doc["incidents"][0]
    rb = last["rollback"]
    assert (rb["automatic"], rb["requested_by"], rb["from"]) == (False, REQUESTER, 5)
    assert "users saw" in rb["reason"]
    assert by_kind(last) == ["retry", "advance", "advance", "revert", "hold", "resume",
                             "rollback"]
    assert last["first_failure"] is None  # nothing failed: a person decided
    assert last["published"] is None and "not yet" in last["published_note"]
    revert = last["timeline"][3]
    assert revert["time"] == at(31) and HOSTILE_AUTHOR in revert["who"]
    assert last["exposure"]["peak_percentage"] == 10
    # 10 % from 30 to the revert at 31 (then 5 % until the rollback at 42)
    assert (last["exposure"]["peak_seconds"], last["exposure"]["exposed_seconds"]) == (60, 1020)
    acts = {a["name"]: a["acts"] for a in last["actors"]}
    assert acts[REQUESTER] == ["requested the rollback"]
    assert acts["Rob Resume"] == ["requested the resume"]
    reverter = next(n for n in acts if n.startswith(HOSTILE_AUTHOR))
    assert acts[reverter][0].startswith("reverted ")
    assert last["notes"] == ["no failing evaluation recorded before this rollback: a person "
                             "rolled it back"]


def test_without_a_publication_branch_the_publication_is_not_recorded(repo: Path) -> None:
    first = report(repo)["incidents"][1]
    assert first["published"] is None and first["published_note"].startswith("not recorded")
    assert first["time_to_rollback"]["rollback_to_published_seconds"] is None
    doc = report(repo, "--published-branch", "published", "--limit", "1")
    assert len(doc["incidents"]) == 1 and doc["incidents"][0]["number"] == 2


def test_since_filters_rollbacks_but_keeps_their_run(repo: Path) -> None:
    doc = report(repo, "--since", at(15))
    assert [i["number"] for i in doc["incidents"]] == [2]
    assert doc["incidents"][0]["run_started"]["time"] == at(20)  # before --since: still read
    out = cli(repo, "incident", FLAG, "--since", at(43))
    assert out.stdout.strip() == f"no rollback of {FLAG} since {at(43)}"
    assert cli(repo, "incident", "otel_enabled").stdout.strip() == (
        "no rollback of otel_enabled in its history")
    bad = cli(repo, "incident", FLAG, "--since", "someday", ok=(2,))
    assert bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1


def test_unknown_flag_and_bad_options(repo: Path) -> None:
    for name in ("no_such_flag", "Not-A-Key", "../flags"):
        out = cli(repo, "incident", name, ok=(1,))
        assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "Traceback" not in out.stderr
    out = cli(repo, "incident", FLAG, "--published-branch", "nope", ok=(2,))
    assert "--published-branch" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    cli(repo, "incident", FLAG, "--published-branch", "--upload-pack=x", ok=(2,))
    cli(repo, "incident", FLAG, "--users", "0", ok=(2,))
    cli(repo, "incident", FLAG, "--force", ok=(2,))


def test_markdown_keeps_what_commits_say_inert(repo: Path) -> None:
    text = cli(repo, "incident", FLAG, "--published-branch", "published", "--users",
               "6000").stdout
    assert text.startswith("<!-- rollout-incident -->\n")
    # HTML from names and messages is escaped (\<script\>), never a tag
    assert "\\<script\\>" in text and "\\<img" in text
    assert re.search(r"(?<!\\)<(script|img|b>|/)", text) is None
    assert "](http" not in text and "@team" not in text
    assert not re.search(r"^\s*(::|##\[)", text, re.M)
    assert "\u202e" not in text and "Eve \\u202e" in text  # the override shown, not obeyed
    # every table row is one line: the hostile newline stayed inside its cell
    rows = [line for line in text.splitlines() if line.startswith("| 20")]
    assert len(rows) == 7 + 7 and all(line.endswith("|") for line in rows)
    assert all(len(re.split(r"(?<!\\)\|", line)) == 8 for line in rows), rows
    assert "about 600 of 6000 users" in text and "rollback commit → published: " in text
    assert "first failing evaluation → rollback commit: 2m" in text
    assert "- [ ] Root cause" in text and "- [ ] Fix the identified issues" in text
    assert str(repo) not in text
    # the Mermaid gantt charts parse as Mermaid's gantt lexer reads them
    charts = re.findall(r"```mermaid\n(.*?)```", text, re.S)
    assert len(charts) == 2
    older = gantt_tasks(charts[1])
    assert [t["name"] for t in older if not t["milestone"]] == ["at 5%", "at 10%"]
    assert [t["name"] for t in older if t["milestone"]] == [
        "exposure began", "first failing evaluation", "rolled back", "published"]
    newer = gantt_tasks(charts[0])
    assert [t["name"] for t in newer if t["milestone"]] == [
        "exposure began", "git revert", "held", "resumed", "rolled back"]
    assert [(t["name"], t["end"] - t["start"]) for t in newer if not t["milestone"]] == [
        ("at 5%", timedelta(minutes=5)), ("at 10%", timedelta(minutes=1)),
        ("at 5%", timedelta(minutes=11))]


def test_write_puts_reports_in_docs_incidents_and_never_overwrites(
        repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    paths = [i["report_path"] for i in report(clone)["incidents"]]
    date = at(14)[:10]
    assert paths[1] == f"docs/incidents/{date}-{FLAG}.md"
    out = cli(clone, "incident", FLAG, "--write", "--published-branch", "origin/published")
    assert out.stdout.count("written (not committed") == 2
    first = (clone / paths[1]).read_text()
    assert first.startswith("<!-- rollout-incident -->") and first.count("## Incident:") == 1
    assert "on branch `origin/published`" in first and "- [ ] Test the fix in staging" in first
    assert git(clone, "status", "--porcelain") == "?? docs/"  # nothing committed
    # idempotent; a hand-edited report is kept unless --force
    again = cli(clone, "incident", FLAG, "--write", "--published-branch", "origin/published")
    assert again.stdout.count(": unchanged") == 2
    edited = first.replace("- [ ] Root cause", "- [x] Root cause: a bad cache key")
    (clone / paths[1]).write_text(edited)
    refused = cli(clone, "incident", FLAG, "--write", ok=(1,))
    assert "differs" in refused.stderr and (clone / paths[1]).read_text() == edited
    cli(clone, "incident", FLAG, "--write", "--force", "--published-branch",
        "origin/published")
    assert (clone / paths[1]).read_text() == first
    # a docs/incidents that leads out of the repository is never written through
    outside = tmp_path / "outside"
    outside.mkdir()
    for p in paths:
        (clone / p).unlink()
    (clone / "docs" / "incidents").rmdir()
    (clone / "docs" / "incidents").symlink_to(outside)
    refused = cli(clone, "incident", FLAG, "--write", ok=(1,))
    assert "outside the repository" in refused.stderr and list(outside.iterdir()) == []


def _entry(sha: str, minute: float, action: str, before: float, after: float,
           gates: list[str] | None = None, subject: str = "s") -> Entry:
    return Entry(sha, at(minute), "bot", "bot@example.com", subject, [FLAG], action, before,
                 after, None, FLAG, gates or [], "r" * 500, None, True)


def test_gate_trailers_parse_and_a_long_history_stays_within_an_issue_body() -> None:
    g = parse_gate("error_rate=none inconclusive (<= 1) dry-run")
    assert g is not None and (g.value, g.verdict, g.dry_run) == (None, "inconclusive", True)
    assert parse_gate("garbage") is None
    entries = []
    sha = 0
    for run in range(30):
        base = run * 1000
        entries.append(_entry(f"{(sha := sha + 1):040x}", base, "start", 0, 0))
        for k in range(200):
            entries.append(_entry(f"{(sha := sha + 1):040x}", base + k + 1, "observe", 5, 5,
                                  ["error_rate=3 fail (<= 1)"], "x" * 400))
        entries.append(_entry(f"{(sha := sha + 1):040x}", base + 300, "rollback", 5, 0,
                              ["error_rate=3 fail (<= 1)"]))
    incidents = build_incidents(FLAG, list(reversed(entries)))
    assert len(incidents) == 30
    assert incidents[0].first_failure is not None
    assert incidents[0].failure_to_rollback_seconds == 299 * 60
    text = incident_markdown(incidents)
    assert len(text) <= LIMIT
    assert "older rollbacks in range are not shown" in text
    assert "more events (`--format json` lists them all)" in text


def test_a_rollback_commit_that_is_not_the_runners_own_says_so(repo: Path,
                                                                tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert report(clone)["incidents"][0]["notes"][0].startswith("no failing evaluation")
    env = cli_env({"GIT_COMMITTER_NAME": "Mallory", "GIT_COMMITTER_EMAIL": "m@example.com"})
    subprocess.run(["git", "commit", "-q", "--amend", "--no-edit"], cwd=clone, env=env,
                   check=True)
    notes = report(clone)["incidents"][0]["notes"]
    assert notes[0].startswith("committed by Mallory <m@example.com>, not by its author")
    state = clone / "rollouts" / f"{FLAG}.state.json"
    state.write_text(state.read_text().replace('"reason": "', '"reason": "edited '))
    git(clone, "commit", "-q", "--amend", "--no-edit", "-a")
    notes = report(clone)["incidents"][0]["notes"]
    assert "not the one its Rollout-State-After trailer names" in notes[0]


@pytest.mark.parametrize("state", [
    {"last_gates": "no list"}, {"last_gates": [1, None, "x"]},
    {"last_gates": [{"name": "error_rate", "verdict": "fail", "detail": 5,
                     "evaluated_at": "9999-12-31T23:59:59-23:59"}]},
    {"last_gates": [{"name": "error_rate", "verdict": "fail", "detail": "d" * 10_000,
                     "evaluated_at": "yesterday"}]},
])
def test_a_state_file_of_any_shape_never_breaks_a_report(state: dict[str, Any]) -> None:
    entries = [_entry("b" * 40, 10, "rollback", 5, 0, ["error_rate=inf fail (<= 1)"]),
               _entry("a" * 40, 0, "start", 0, 5)]
    (incident,) = build_incidents(FLAG, entries, {"b" * 40: state})
    (gate,) = incident.first_failure.gates if incident.first_failure else ()
    assert gate.value is None and gate.evaluated_at is None and len(gate.detail) <= 300
    assert json.dumps(incident.as_dict(), allow_nan=False)
    assert "error_rate=none fail" in incident_markdown([incident])


def test_one_incident_with_a_huge_timeline_is_cut_to_fit() -> None:
    entries = [_entry(f"{k + 2:040x}", k + 1, "observe", 5, 5, [f"g{n}=3 fail (<= 1)"
                                                                 for n in range(8)], "x" * 300)
               for k in range(400)]
    entries = [_entry("b" * 40, 500, "rollback", 5, 0), *reversed(entries),
               _entry("a" * 40, 0, "start", 0, 5)]
    (incident,) = build_incidents(FLAG, entries)
    assert len(incident.timeline) == 402
    text = incident_markdown([incident], limit=20_000)
    assert len(text) <= 20_000 and "## Incident:" in text and "- [ ] Root cause" in text
    assert "more events (`--format json` lists them all)" in text
