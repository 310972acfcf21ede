"""``rollout simulate`` over small timelines: approvals simulated as given (and said so), a
completion, and every bad input as one line with its exit code, nothing written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, run_cli

pytestmark = pytest.mark.cli_inprocess

FLAG = "phase_4_deployment"
T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
PLAN = (f"flag: {FLAG}\nstrategy: custom\nwait: 10m\n"
        "steps: [0, 5, {percentage: 25, approval: true}, 100]\n"
        "gates:\n  error_rate: 1.0\n  request_count: 100\n"
        "metrics: {type: file, path: logs/metrics.json, window: 5m}\n")


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _lines(minutes: int = 60, **fields: Any) -> str:
    doc = {"error_rate": 0.2, "request_count": 500, **fields}
    return "".join(json.dumps({"timestamp": _iso(T0 + timedelta(minutes=m)), **doc}) + "\n"
                   for m in range(minutes + 1))


@pytest.fixture
def repo(example_repo: Path) -> Path:
    (example_repo / "rollouts" / f"{FLAG}.yaml").write_text(PLAN)
    git(example_repo, "commit", "-qam", "a plan with an approval step")
    return example_repo


def _run(repo: Path, *args: str) -> Any:
    before = git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain")
    out = run_cli(["simulate", *args], cwd=repo)
    assert "Traceback" not in out.stderr
    assert (git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain")) == before
    assert not (repo / "rollouts" / f"{FLAG}.state.json").exists()
    return out


def test_an_approval_step_is_simulated_as_approved_and_says_so(repo: Path, tmp_path: Path) -> None:
    timeline = tmp_path / "t.jsonl"
    timeline.write_text(_lines(60))
    out = _run(repo, f"rollouts/{FLAG}.yaml", "--repo", str(repo), "--timeline", str(timeline),
               "--format", "json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    moves = [(lk["at"], lk["action"], lk["to_percentage"], lk["approval_assumed"])
             for lk in result["looks"] if lk["action"] != "hold"]
    assert moves == [(_iso(T0), "start", 0, False),
                     (_iso(T0 + timedelta(minutes=10)), "advance", 5, False),
                     (_iso(T0 + timedelta(minutes=20)), "advance", 25, True),
                     (_iso(T0 + timedelta(minutes=30)), "complete", 100, False)]
    assumed = next(lk["reason"] for lk in result["looks"] if lk["approval_assumed"])
    assert assumed.endswith("step 3 of 4: 25% (approved by rollout simulate (assumed))")
    assert (result["outcome"], result["completed_at"]) == (
        "completed", _iso(T0 + timedelta(minutes=30)))
    text = _run(repo, FLAG, "--timeline", str(timeline)).stdout.splitlines()
    assert any(ln.endswith("[approval of step 3 assumed]") for ln in text), text
    assert "note: steps that need a person's approval are simulated as approved" in "\n".join(text)
    assert text[-1] == (f"outcome: completed at {_iso(T0 + timedelta(minutes=30))}, 30m after "
                        "the start (look 7 of 13)")


def test_a_range_that_ends_first_says_the_rollout_was_still_running(
        repo: Path, tmp_path: Path) -> None:
    timeline = tmp_path / "t.jsonl"
    timeline.write_text(_lines(60))
    out = _run(repo, FLAG, "--timeline", str(timeline), "--until", _iso(T0 + timedelta(minutes=15)),
               "--every", "1m")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == (
        f"outcome: still running at {_iso(T0 + timedelta(minutes=15))}, the end of the range: "
        "step 2 of 4 at 5%")


def test_no_data_past_the_deadline_pauses_as_the_runner_would(repo: Path, tmp_path: Path) -> None:
    timeline = tmp_path / "t.jsonl"
    timeline.write_text(_lines(5) + json.dumps({"timestamp": _iso(T0 + timedelta(hours=2))}) + "\n")
    out = _run(repo, FLAG, "--timeline", str(timeline), "--format", "json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["outcome"] == "paused"
    assert "no conclusive evaluation for 30m" in result["looks"][-1]["reason"]
    assert "is stale" in result["looks"][-1]["gates"][0]["detail"]


CASES = [
    # (arguments, timeline text or None, exit code, words of the one line)
    (["nope"], None, 2, "no rollout plan for 'nope'"),
    (["rollouts/nope.yaml"], None, 2, "rollouts/nope.yaml: no such plan file"),
    ([FLAG, "--since", "last tuesday"], "", 2, "--since 'last tuesday': not an ISO 8601"),
    ([FLAG, "--until", "2026-13-01"], "", 2, "--until '2026-13-01'"),
    ([FLAG, "--every", "0s"], "", 2, "--every 0s: at least 1s between looks"),
    ([FLAG, "--every", "soon"], "", 2, "--every: 'soon' is not a duration"),
    ([FLAG, "--since", "2026-01-15T13:00:00Z", "--until", "2026-01-15T12:00:00Z"], "", 2,
     "is before --since"),
    ([FLAG, "--every", "1s", "--since", "2025-01-01"], "", 2, "looks, more than 100,000"),
    ([FLAG], None, 2, "the plan reads a file source, and a metrics file holds only the present: "
                      "record its documents in a JSONL timeline and give --timeline FILE"),
    ([FLAG, "--timeline", "missing.jsonl"], None, 2, "--timeline missing.jsonl: no such file"),
    ([FLAG], '{"timestamp": "2026-01-15T12:00:00Z"}\n{"timestamp": \n', 1,
     "t.jsonl:2:15: invalid JSON"),
    ([FLAG], '{"timestamp": "2026-01-15T12:00:00Z"}\n[1]\n', 1,
     "t.jsonl:2: expected a JSON object, found list"),
    ([FLAG], '{"error_rate": 0.2}\n', 1, "t.jsonl:1: timestamp: missing"),
    ([FLAG], '{"timestamp": "noon"}\n', 1, "t.jsonl:1: timestamp:"),
    ([FLAG], '{"timestamp": "2026-01-15T12:05:00Z"}\n\n{"timestamp": "2026-01-15T12:00:00Z"}\n', 1,
     "t.jsonl:3: timestamp: 2026-01-15T12:00:00+00:00 is before line 1's"),
    ([FLAG], '{"timestamp": 1, "cohorts": {"treatment": {"requests": "many"}}}\n', 1,
     "t.jsonl:1: cohorts.treatment.requests: not a number: 'many'"),
    ([FLAG], '{"timestamp": 1, "cohorts": {"control": {"errors": -1}}}\n', 1,
     "t.jsonl:1: cohorts.control.errors: -1 is not a count"),
    ([FLAG], '{"timestamp": 1, "cohorts": []}\n', 1, "t.jsonl:1: cohorts: not an object"),
    ([FLAG], ('{"timestamp": 1, "cohorts": {"treatment": {"requests": 50}}}\n'
              '{"timestamp": 2, "cohorts": {"treatment": {"requests": 40}}}\n'), 1,
     "t.jsonl:2: cohorts.treatment.requests: 40 is less than 50 on line 1: counts are "
     "running totals"),
    ([FLAG], "\n\n", 1, "t.jsonl: no lines"),
]


@pytest.mark.parametrize(("args", "timeline", "code", "words"), CASES,
                         ids=[c[3][:40] for c in CASES])
def test_bad_input_is_one_line_and_its_exit_code(repo: Path, args: list[str], timeline: str | None,
                                                code: int, words: str) -> None:
    if timeline is not None:
        (repo / "t.jsonl").write_text(timeline or _lines(1))
        args = [*args, "--timeline", "t.jsonl"]
    out = _run(repo, *args)
    assert out.returncode == code, (out.stdout, out.stderr)
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rollout simulate: error: "), lines
    assert words in lines[0], lines


def test_a_command_source_is_refused_with_the_way_to_replay_it(repo: Path) -> None:
    (repo / "rollouts" / f"{FLAG}.yaml").write_text(
        PLAN.replace("{type: file, path: logs/metrics.json, window: 5m}",
                     "{type: command, command: [./metrics.sh]}"))
    out = _run(repo, FLAG)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "rollout simulate: error: the plan reads a command source, and a command answers only "
        "the present: record its documents in a JSONL timeline and give --timeline FILE")


def test_a_plan_with_problems_names_its_file_and_line(repo: Path, tmp_path: Path) -> None:
    (repo / "rollouts" / f"{FLAG}.yaml").write_text(PLAN.replace("wait: 10m", "wait: soon"))
    (tmp_path / "t.jsonl").write_text(_lines(1))
    out = _run(repo, FLAG, "--timeline", str(tmp_path / "t.jsonl"))
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"rollout simulate: error: rollouts/{FLAG}.yaml:3:"), lines


def test_a_gate_with_a_confidence_judges_the_timelines_step_counts(
        repo: Path, tmp_path: Path) -> None:
    """The ``step`` counts of a timeline are running totals, as the cohorts' are: a gate with
    a confidence judges what grew since the simulated step started, and a regression in them
    rolls the rollout back."""
    (repo / "rollouts" / f"{FLAG}.yaml").write_text(
        f"flag: {FLAG}\nstrategy: custom\nwait: 10m\nsteps: [0, 5, 25, 100]\n"
        "gates:\n  error_rate: {max: 1.0, confidence: 0.95}\n"
        "metrics: {type: file, path: logs/metrics.json, window: 5m}\n")
    git(repo, "commit", "-qam", "a gate with a confidence")
    rows, requests, errors = [], 0, 0
    for m in range(0, 241, 5):
        requests += 2000
        errors += 4 if m < 15 else 400  # 0.2 %, then 20 % from 15 minutes in (at 5 %)
        rows.append(json.dumps({"timestamp": _iso(T0 + timedelta(minutes=m)),
                                "step": {"requests": requests, "errors": errors}}) + "\n")
    timeline = tmp_path / "t.jsonl"
    timeline.write_text("".join(rows))
    out = _run(repo, FLAG, "--repo", str(repo), "--timeline", str(timeline), "--format", "json")
    assert out.returncode == 0, out.stderr
    looks = [lk for lk in json.loads(out.stdout)["looks"] if lk["action"] != "hold"]
    assert [(lk["action"], lk["at"], lk["from_percentage"]) for lk in looks] == [
        ("start", _iso(T0), 0), ("advance", _iso(T0 + timedelta(minutes=10)), 0),
        ("rollback", _iso(T0 + timedelta(minutes=15)), 5)]

    falling = [*rows[:2], json.dumps({"timestamp": _iso(T0 + timedelta(minutes=10)),
                                      "step": {"requests": 1, "errors": 0}}) + "\n"]
    timeline.write_text("".join(falling))
    out = _run(repo, FLAG, "--repo", str(repo), "--timeline", str(timeline))
    assert out.returncode == 1
    assert f"{timeline}:3: step.requests: 1 is less than 4000 on line 2" in out.stderr, out.stderr
    assert len(out.stderr.splitlines()) == 1
