"""Plans that know their sample size: ``traffic`` in ``rollout plan`` (the requests each step's
comparisons need, the time, the deadline risk) and in ``rollout status`` (how far an
inconclusive comparison is from deciding), on real repositories through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.gates.sample_size import rate_distance_to_decide, rate_need
from runner.load import load_repository
from runner.model import Gate
from runner.review.plan_evidence import HINT, about
from tests.conftest import run_cli
from tests.review.helpers import commit, write

pytestmark = pytest.mark.cli_inprocess

NOW = "2026-11-27T05:00:00Z"
FLAG = """\
key: checkout_v2
description: New checkout flow
owner: payments-team
risk: high
default_variant: off
"""
PLAN = """\
flag: checkout_v2
strategy: safe
gates:
  error_rate: 1.0
  request_count: 100
compare:
  error_rate: {max_increase: 0.5}
"""


def plan_report(repo: Path) -> dict:
    out = run_cli(["plan", "--format", "json", "--now", NOW], cwd=repo)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def started(report: dict) -> dict:
    [entry] = report["rollouts"]["started"]
    return entry


def test_a_plan_with_traffic_shows_what_each_step_needs_and_the_deadline_risk(
        example_repo: Path) -> None:
    write(example_repo, "flags/checkout_v2.yaml", FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml", PLAN + "traffic: 6000/h\n")
    evidence = started(plan_report(example_repo))["evidence"]
    assert evidence["requests_per_hour"] == 6000 and evidence["power"] == 0.8
    assert [s["percentage"] for s in evidence["steps"]] == [5, 10, 25, 50, 75]
    first = evidence["steps"][0]
    [gate] = first["gates"]
    assert gate["gate"] == "compare.error_rate" and gate["regression"] == 1.0
    # at least min_requests (500) in the 5 % cohort: 10,000 requests, 1h40m at 6,000/h
    assert gate["pass"]["treatment_requests"] >= 500 and gate["pass"]["seconds"] >= 6000
    assert gate["pass"]["seconds"] == pytest.approx(gate["pass"]["requests"] / 6000 * 3600, abs=1)
    assert gate["fail"]["treatment_rate"] == 1.3 and gate["fail"]["requests"] > gate["pass"]["requests"]
    assert first["deadline_short"] and first["time"] == about(first["seconds"])
    assert evidence["request_count"] == {"window": "5m", "expected": 500, "min": 100,
                                         "short": False}
    report = plan_report(example_repo)
    [risk] = [r for r in report["risks"] if r["kind"] == "evidence_too_slow"]
    assert "progress_deadline 30m" in risk["message"] and "at 5 % (compare.error_rate" in risk["message"]

    md = run_cli(["plan", "--now", NOW], cwd=example_repo).stdout
    assert "Evidence at 6,000 requests an hour (control `error_rate` 0.3 %)" in md
    row = next(line for line in md.splitlines() if line.startswith("| 1 | 5% | `compare.error_rate`"))
    assert f"{gate['pass']['requests']:,} requests ({gate['pass']['treatment_requests']:,} treatment)" in row
    assert row.endswith("⚠️ past the 30m deadline |")
    assert "`request_count >= 100`: a 5m window holds about 500 of the flag's requests." in md


def test_enough_traffic_and_deadline_is_no_risk_and_the_object_form(example_repo: Path) -> None:
    write(example_repo, "flags/checkout_v2.yaml", FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml", PLAN + (
        "progress_deadline: 2h\ntraffic:\n  requests_per_hour: 600000\n  error_rate: 0.1\n"
        "  power: 0.9\n  regression: {error_rate: 0.7}\n"))
    report = plan_report(example_repo)
    evidence = started(report)["evidence"]
    assert evidence["baselines"] == {"error_rate": 0.1} and evidence["power"] == 0.9
    assert all(not s["deadline_short"] for s in evidence["steps"])
    assert evidence["steps"][0]["gates"][0]["fail"]["treatment_rate"] == 0.8
    assert not [r for r in report["risks"] if r["kind"].startswith(("evidence", "request_count"))]


def test_a_window_holding_fewer_requests_than_request_count_is_a_risk(example_repo: Path) -> None:
    write(example_repo, "flags/checkout_v2.yaml", FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml",
          "flag: checkout_v2\nstrategy: safe\ngates:\n  error_rate: 1.0\n  request_count: 100\n"
          "traffic: 10/m\n")
    report = plan_report(example_repo)
    evidence = started(report)["evidence"]
    assert evidence["steps"] == [] and evidence["requests_per_hour"] == 600
    [risk] = [r for r in report["risks"] if r["kind"] == "request_count_unreachable"]
    assert "holds about 50 of checkout_v2's requests, fewer than request_count >= 100" in risk["message"]


def test_without_traffic_a_plan_with_comparisons_gets_one_line_others_nothing(
        example_repo: Path) -> None:
    write(example_repo, "flags/checkout_v2.yaml", FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml", PLAN)
    assert started(plan_report(example_repo))["evidence"] == {"hint": HINT}
    md = run_cli(["plan", "--now", NOW], cwd=example_repo).stdout
    assert [line for line in md.splitlines() if "traffic" in line] == [f"Time to decide: {HINT}."]
    write(example_repo, "rollouts/checkout_v2.yaml",
          "flag: checkout_v2\nstrategy: safe\ngates:\n  error_rate: 1.0\n")
    entry = started(plan_report(example_repo))
    assert "evidence" not in entry
    assert "traffic" not in run_cli(["plan", "--now", NOW], cwd=example_repo).stdout


def test_traffic_is_outside_the_digest_but_its_edit_is_shown(example_repo: Path) -> None:
    write(example_repo, "flags/checkout_v2.yaml", FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml", PLAN)
    commit(example_repo, "a plan")
    before = load_repository(example_repo).plans["checkout_v2"].digest
    write(example_repo, "rollouts/checkout_v2.yaml", PLAN + "traffic: 6000/h\n")
    after = load_repository(example_repo).plans["checkout_v2"]
    assert after.digest == before  # correcting an expectation never replans a rollout
    report = plan_report(example_repo)
    [changed] = report["rollouts"]["changed"]
    assert changed["changes"] == [{"field": "traffic", "before": None, "after": "6000/h"}]
    assert changed["evidence"]["requests_per_hour"] == 6000


def _metrics(repo: Path, at: str, treatment: tuple[int, int], control: tuple[int, int]) -> None:
    write(repo, "logs/metrics.json", json.dumps({
        "timestamp": at, "error_rate": 0.3, "p95_latency_ms": 100, "request_count": 1000,
        "cohorts": {"treatment": {"requests": treatment[0], "errors": treatment[1]},
                    "control": {"requests": control[0], "errors": control[1]}}}))


def _advance(repo: Path, at: str) -> None:
    out = run_cli(["advance", "checkout_v2", "--now", at], cwd=repo)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("traffic", [True, False])
def test_status_says_how_far_an_inconclusive_comparison_is_from_deciding(
        example_repo: Path, traffic: bool) -> None:
    write(example_repo, "flags/checkout_v2.yaml", FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml",
          PLAN + "progress_deadline: 12h\n" + ("traffic: 3000/h\n" if traffic else ""))
    commit(example_repo, "a guarded plan")
    _metrics(example_repo, "2026-11-27T05:00:00Z", (0, 0), (500, 1))
    _advance(example_repo, "2026-11-27T05:00:00Z")
    _metrics(example_repo, "2026-11-27T05:05:00Z", (0, 0), (500, 1))
    _advance(example_repo, "2026-11-27T05:05:00Z")  # to 5 %
    # twelve hours at 3,000 requests an hour, treatment 0.5 % against 0.292 %: the deadline
    # pauses the step with the interval still straddling the margin
    _metrics(example_repo, "2026-11-27T17:05:00Z", (1800, 9), (34200, 100))
    _advance(example_repo, "2026-11-27T17:05:00Z")
    text = run_cli(["status", "checkout_v2", "--now", "2026-11-27T17:06:00Z"], cwd=example_repo)
    raw = run_cli(["status", "checkout_v2", "--format", "json", "--now", "2026-11-27T17:06:00Z"],
                  cwd=example_repo)
    assert text.returncode == 0 and raw.returncode == 0, text.stderr + raw.stderr
    gate = next(g for g in json.loads(raw.stdout)["last_gates"] if g["name"] == "compare.error_rate")
    assert gate["verdict"] == "inconclusive"
    if not traffic:  # without traffic, status is what it was
        assert "to_decide" not in gate and "more treatment requests" not in text.stdout
        return
    d = gate["to_decide"]
    assert d["outcome"] == "pass" and d["paused"] and d["rate"] == "measured"
    assert d["requests_per_hour"] == 3000  # 36,000 requests in the step's 12 hours
    assert d["more_treatment_requests"] == pytest.approx(d["more_requests"] * 0.05, abs=1)
    assert d["seconds"] == pytest.approx(d["more_requests"] / 3000 * 3600, abs=1)
    line = next(x for x in text.stdout.splitlines() if "more treatment requests" in x)
    assert line == (f"    was ~{d['more_treatment_requests']:,} more treatment requests "
                    f"(~{d['more_requests']:,} in all) from a pass (~{d['time']} at the rate it "
                    "saw); `rollout resume` restarts the step's count from zero")


CONFIDENT = """\
flag: checkout_v2
strategy: safe
gates:
  error_rate: {max: 1.0, confidence: 0.95}
  request_count: 100
"""


def test_an_absolute_gate_with_a_confidence_shows_what_each_step_needs(
        example_repo: Path) -> None:
    write(example_repo, "flags/checkout_v2.yaml", FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml", CONFIDENT + "traffic: 600/h\n")
    report = plan_report(example_repo)
    evidence = started(report)["evidence"]
    # every step: the gate counts the flag's whole traffic, at 0 % and 100 % as at 5 %
    assert [s["percentage"] for s in evidence["steps"]] == [0, 5, 10, 25, 50, 75, 100]
    first = evidence["steps"][0]
    assert first["gates"] == []
    [gate] = first["absolute"]
    healthy = rate_need(Gate("error_rate", max=1.0, confidence=0.95), steps=7, rate=0.3,
                        outcome="pass", power=0.8)
    assert gate["gate"] == "error_rate" and gate["threshold"] == "<= 1 at 95 %"
    assert gate["pass"]["rate"] == 0.3 and gate["pass"]["requests"] == healthy.requests
    # at the flag's whole 600 requests an hour, not a cohort's share
    assert gate["pass"]["seconds"] == pytest.approx(healthy.requests / 600 * 3600, abs=1)
    assert gate["fail"]["rate"] == 2.0 and gate["fail"]["requests"] > 0
    assert first["deadline_short"] and first["seconds"] == gate["pass"]["seconds"]
    [risk] = [r for r in report["risks"] if r["kind"] == "evidence_too_slow"]
    assert "to pass its gates" in risk["message"] and "at 0 % (error_rate: ~2,646 requests" in risk["message"]
    assert "lower a gate's confidence" in risk["message"]

    md = run_cli(["plan", "--now", NOW], cwd=example_repo).stdout
    assert "the requests and the time each gate needs to decide" in md
    assert "| Step | Serving | Gate | To pass (healthy) |" in md
    row = next(line for line in md.splitlines() if line.startswith("| 0 | 0% | `error_rate`"))
    assert f"0.3 %: {healthy.requests:,} requests, ~{gate['pass']['time']}" in row
    assert "(all traffic)" in row and row.endswith("⚠️ past the 30m deadline |")


def test_comparisons_and_an_absolute_gate_together_hold_for_the_slower(
        example_repo: Path) -> None:
    write(example_repo, "flags/checkout_v2.yaml", FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml", CONFIDENT + (
        "compare:\n  error_rate: {max_increase: 0.5}\ntraffic: 600000/h\n"
        "progress_deadline: 4h\n"))
    evidence = started(plan_report(example_repo))["evidence"]
    first = evidence["steps"][1]
    slowest = max(g["pass"]["seconds"] for g in first["gates"] + first["absolute"])
    assert first["seconds"] == slowest > 5 * 60  # longer than the safe plan's wait: 5m
    assert not first["deadline_short"]
    md = run_cli(["plan", "--now", NOW], cwd=example_repo).stdout
    assert "| 1 | 5% | `compare.error_rate`" in md and "|  |  | `error_rate`" in md


def test_a_confident_gate_without_traffic_gets_the_hint(example_repo: Path) -> None:
    write(example_repo, "flags/checkout_v2.yaml", FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml", CONFIDENT)
    assert started(plan_report(example_repo))["evidence"] == {"hint": HINT}


def _step_metrics(repo: Path, at: str, requests: int, errors: int) -> None:
    write(repo, "logs/metrics.json", json.dumps({
        "timestamp": at, "error_rate": 0.3, "p95_latency_ms": 100, "request_count": 1000,
        "step": {"requests": requests, "errors": errors}}))


@pytest.mark.parametrize("traffic", [True, False])
def test_status_says_how_far_an_absolute_gate_with_a_confidence_is_from_deciding(
        example_repo: Path, traffic: bool) -> None:
    write(example_repo, "flags/checkout_v2.yaml", FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml",
          CONFIDENT + ("traffic: 600/h\n" if traffic else ""))
    commit(example_repo, "a plan with a confident gate")
    _step_metrics(example_repo, "2026-11-27T05:00:00Z", 0, 0)
    _advance(example_repo, "2026-11-27T05:00:00Z")
    # half an hour at 1,000 requests an hour, 1 error in 500: below 1 %, not yet shown; the
    # 30-minute progress deadline pauses the step (a hold records nothing, a pause does)
    _step_metrics(example_repo, "2026-11-27T05:30:00Z", 500, 1)
    _advance(example_repo, "2026-11-27T05:30:00Z")
    state = json.loads((example_repo / "rollouts/checkout_v2.state.json").read_text())
    assert state["phase"] == "paused"
    [recorded] = [g for g in state["last_gates"] if g["name"] == "error_rate"]
    assert recorded["counts"] == {"requests": 500, "errors": 1}
    assert all("counts" not in g for g in state["last_gates"] if g["name"] != "error_rate")
    raw = run_cli(["status", "checkout_v2", "--format", "json", "--now", "2026-11-27T05:31:00Z"],
                  cwd=example_repo)
    text = run_cli(["status", "checkout_v2", "--now", "2026-11-27T05:31:00Z"], cwd=example_repo)
    assert raw.returncode == 0 and text.returncode == 0, raw.stderr + text.stderr
    gate = next(g for g in json.loads(raw.stdout)["last_gates"] if g["name"] == "error_rate")
    assert gate["verdict"] == "inconclusive"
    if not traffic:
        assert "to_decide" not in gate and "more requests" not in text.stdout
        return
    d = gate["to_decide"]
    expected = rate_distance_to_decide(Gate("error_rate", max=1.0, confidence=0.95), steps=7,
                                       requests=500, errors=1)
    assert expected is not None and expected.more_requests is not None
    assert d["outcome"] == "pass" and d["more_requests"] == round(expected.more_requests)
    assert d["rate"] == "measured" and d["requests_per_hour"] == 1000 and d["paused"]
    line = next(x for x in text.stdout.splitlines() if "more requests" in x)
    assert line == (f"    was ~{d['more_requests']:,} more requests from a pass (~{d['time']} "
                    "at the rate it saw); `rollout resume` restarts the step's count from zero")


@pytest.mark.parametrize("traffic", [True, False])
def test_advance_dry_run_says_how_far_each_inconclusive_gate_is_from_deciding(
        example_repo: Path, traffic: bool) -> None:
    write(example_repo, "flags/checkout_v2.yaml", FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml", CONFIDENT + (
        "compare:\n  error_rate: {max_increase: 0.5}\nprogress_deadline: 12h\n"
        + ("traffic: 6000/h\n" if traffic else "")))
    commit(example_repo, "a plan")
    write(example_repo, "logs/metrics.json", json.dumps({
        "timestamp": "2026-11-27T05:00:00Z", "error_rate": 0.3, "request_count": 1000,
        "step": {"requests": 0, "errors": 0}}))
    _advance(example_repo, "2026-11-27T05:00:00Z")
    # twenty minutes at 0 %: 500 requests, 1 error (1,500 an hour)
    write(example_repo, "logs/metrics.json", json.dumps({
        "timestamp": "2026-11-27T05:20:00Z", "error_rate": 0.3, "request_count": 1000,
        "step": {"requests": 500, "errors": 1}}))
    head = (example_repo / ".git/HEAD").read_text()
    dry = run_cli(["advance", "checkout_v2", "--dry-run", "--now", "2026-11-27T05:20:00Z"],
                  cwd=example_repo)
    wet = run_cli(["advance", "checkout_v2", "--now", "2026-11-27T05:20:00Z"], cwd=example_repo)
    assert dry.returncode == 0 and wet.returncode == 0, dry.stderr + wet.stderr
    assert (example_repo / ".git/HEAD").read_text() == head
    lines = dry.stdout.splitlines()
    assert lines[0].startswith("checkout_v2: holding at 0%: inconclusive")
    assert wet.stdout.splitlines() == lines[:1]  # a real run prints what it printed
    if not traffic:
        assert lines == lines[:1]
        return
    more = rate_distance_to_decide(Gate("error_rate", max=1.0, confidence=0.95), steps=7,
                                   requests=500, errors=1)
    assert more is not None and more.more_requests is not None
    seconds = round(more.more_requests) / 1500 * 3600
    assert lines[1:] == [f"  error_rate: needs ~{round(more.more_requests):,} more requests to "
                         f"pass (~{about(seconds)} at the current rate)"]
