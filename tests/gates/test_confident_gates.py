"""Gates with a confidence (``error_rate: {max: 1, confidence: 0.95}``): judged on the step's
errors and requests by the verdict rules, read from every source (a real file, a real
command, the real Prometheus the tests start), checked by validate's source lint."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from runner.gates import GateRequest, assess_all, source_problems
from runner.gates.readings import Reading, step_key
from runner.gates.verdicts import judge, step_alpha
from runner.model import Gate, Verdict
from tests.prometheus_server import QUERIES, traffic

from .helpers import NOW, by_name, metrics, plan

CONFIDENT = Gate("error_rate", max=1.0, confidence=0.95)
GATES = (CONFIDENT, Gate("request_count", min=100.0))
STEP_START = NOW - timedelta(minutes=20)
#: The step counts over traffic()'s series (docs/metrics.md, "Gates with a confidence").
STEP_QUERIES = {
    "step_requests": 'sum(increase(http_requests_total{flag="{{ flag }}"}[{{ step_window }}]))',
    "step_errors": 'sum(increase(http_requests_total{flag="{{ flag }}",code=~"5.."}'
                   '[{{ step_window }}])) or vector(0)',
}


def counts(requests: float | None, errors: float | None, **gates: Reading) -> dict[str, Reading]:
    return {step_key("requests"): Reading(requests, detail="step.requests"),
            step_key("errors"): Reading(errors, detail="step.errors"), **gates}


def verdicts(readings: dict[str, Reading], gates=GATES, steps: int = 7):
    return by_name(judge(gates, readings, NOW, steps=steps))


def test_the_threshold_says_the_confidence() -> None:
    assert CONFIDENT.threshold == "<= 1 at 95 %"
    assert Gate("error_rate", max=1.0).threshold == "<= 1"  # without one: as before


def test_a_large_breach_fails_at_the_first_look_even_below_the_request_minimum() -> None:
    got = verdicts(counts(40, 8, request_count=Reading(40.0)))
    assert got["error_rate"].verdict is Verdict.FAIL
    assert got["error_rate"].value == pytest.approx(20.0)
    assert "8 errors in 40 requests since the step started: 20 %" in got["error_rate"].detail
    assert "above 1 % at 95 %" in got["error_rate"].detail
    assert "(each 99.29 %)" in got["error_rate"].detail  # 0.05 over the plan's 7 steps
    # too little traffic holds the point-estimate gates, never the bound that counted
    assert got["request_count"].verdict is Verdict.INCONCLUSIVE


def test_noise_at_a_healthy_rate_does_not_fail_it() -> None:
    # 2 errors in 100 requests: 2 % as a point estimate (a breach), nothing shown here
    got = verdicts(counts(100, 2, request_count=Reading(100.0)))["error_rate"]
    assert got.verdict is Verdict.INCONCLUSIVE
    assert "not yet shown above or below 1 % at 95 %" in got.detail


def test_a_healthy_rate_passes_once_shown_below() -> None:
    got = verdicts(counts(2000, 6, request_count=Reading(2000.0)))["error_rate"]
    assert got.verdict is Verdict.PASS and got.value == pytest.approx(0.3)
    assert "below 1 % at 95 %" in got.detail


@pytest.mark.parametrize(("readings", "verdict", "why"), [
    (counts(None, 3), Verdict.INCONCLUSIVE, "no data (step.requests)"),
    (counts(0, 0), Verdict.INCONCLUSIVE, "no requests since the step started"),
    (counts(10, 11), Verdict.ERROR, "11 errors out of only 10 requests"),
    (counts(-1, 0), Verdict.ERROR, "the step's requests is -1, not a count"),
    (counts(float("nan"), 0), Verdict.ERROR, "not a count"),
    ({step_key("requests"): Reading(error="boom"), step_key("errors"): Reading(1.0)},
     Verdict.ERROR, "boom"),
    ({}, Verdict.ERROR, "the source returned nothing for the step's requests"),
])
def test_missing_or_nonsensical_counts(readings, verdict, why) -> None:
    got = verdicts(readings, gates=(CONFIDENT,))["error_rate"]
    assert got.verdict is verdict
    assert why in got.detail


def test_the_rate_reading_itself_is_not_what_is_judged() -> None:
    got = verdicts(counts(2000, 6, error_rate=Reading(50.0)), gates=(CONFIDENT,))["error_rate"]
    assert got.verdict is Verdict.PASS


def test_the_budget_is_split_over_the_plans_steps() -> None:
    assert step_alpha(CONFIDENT, 7) == pytest.approx(0.05 / 7)
    assert step_alpha(CONFIDENT, 1) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        step_alpha(CONFIDENT, 0)
    with pytest.raises(ValueError):
        step_alpha(Gate("error_rate", max=1.0), 7)
    # more steps, a stricter bound: 9 errors in 150 shown above 1 % at 1 step, not at 7
    assert verdicts(counts(150, 9), gates=(CONFIDENT,), steps=1)["error_rate"].verdict is Verdict.FAIL
    assert verdicts(counts(150, 9), gates=(CONFIDENT,), steps=7)["error_rate"].verdict is Verdict.INCONCLUSIVE


def _request(flag: str, source, gates=GATES) -> GateRequest:
    p = plan(flag, source, gates)
    return GateRequest(flag, p, 3, p.steps[3].percentage, STEP_START)


def _run(req: GateRequest, root: Path | str = "."):
    return by_name(assess_all([req], root=root, now=NOW, env={})[req.flag])


def test_file_source_reads_the_step_object(tmp_path: Path) -> None:
    doc = {"error_rate": 20.0, "request_count": 40, "step": {"requests": 40, "errors": 8}}
    (tmp_path / "m.json").write_text(json.dumps(doc))
    got = _run(_request("f", metrics("file", path="m.json")), tmp_path)
    assert got["error_rate"].verdict is Verdict.FAIL
    assert got["error_rate"].threshold == "<= 1 at 95 %"
    (tmp_path / "m.json").write_text(json.dumps({"error_rate": 0.3, "request_count": 900}))
    got = _run(_request("f", metrics("file", path="m.json")), tmp_path)
    assert got["error_rate"].verdict is Verdict.INCONCLUSIVE
    assert "m.json: no step object" in got["error_rate"].detail
    (tmp_path / "m.json").write_text(json.dumps({"step": [1, 2]}))
    got = _run(_request("f", metrics("file", path="m.json")), tmp_path)
    assert got["error_rate"].verdict is Verdict.ERROR
    assert "field step is not an object" in got["error_rate"].detail
    (tmp_path / "m.json").write_text(json.dumps({"step": {"requests": "many", "errors": 1}}))
    got = _run(_request("f", metrics("file", path="m.json")), tmp_path)
    assert got["error_rate"].verdict is Verdict.ERROR
    assert "field step.requests is not a number" in got["error_rate"].detail


def test_command_source_reads_the_step_object(tmp_path: Path) -> None:
    script = tmp_path / "m.py"
    script.write_text("import json, os\nprint(json.dumps({'request_count': 2000, 'step': "
                      "{'requests': 2000, 'errors': 6}, "
                      "'started': os.environ['ROLLOUT_STEP_STARTED_AT']}))\n")
    got = _run(_request("f", metrics("command", command=[sys.executable, str(script)], timeout=10.0)),
               tmp_path)
    assert got["error_rate"].verdict is Verdict.PASS


def test_prometheus_reads_step_requests_and_step_errors(prometheus) -> None:
    start = NOW - timedelta(hours=1)
    server = prometheus(
        traffic("broken", start=start, end=NOW, requests_per_minute=10, error_percent=20.0)
        + traffic("healthy", start=start, end=NOW, requests_per_minute=200, error_percent=0.3))
    # no error_rate query at all: a gate with a confidence does not read one
    queries = {k: v for k, v in QUERIES.items() if k != "error_rate"} | STEP_QUERIES
    source = metrics("prometheus", url=server.url, queries=queries, window="5m", timeout=5.0)
    broken = _run(_request("broken", source))
    assert broken["error_rate"].verdict is Verdict.FAIL, broken["error_rate"].detail
    # 20 minutes since the step started at 10 a minute: about 200 requests, not the window's 50
    assert "in 200 requests since the step started" in broken["error_rate"].detail
    healthy = _run(_request("healthy", source))
    assert healthy["error_rate"].verdict is Verdict.PASS, healthy["error_rate"].detail
    missing = metrics("prometheus", url=server.url, queries=QUERIES, window="5m", timeout=5.0)
    got = _run(_request("healthy", missing))["error_rate"]
    assert got.verdict is Verdict.ERROR
    assert "no PromQL for step_requests: add step_requests to metrics.queries" in got.detail


def test_source_lint_wants_the_step_queries_not_a_rate_query() -> None:
    queries = {k: v for k, v in QUERIES.items() if k != "error_rate"}
    source = metrics("prometheus", url="http://prometheus:9090", queries=queries)
    problems = source_problems(plan("f", source, GATES))
    assert problems == (
        "metrics.queries.step_requests: no PromQL for the step's requests, which gate error_rate "
        "(with a confidence) reads",
        "metrics.queries.step_errors: no PromQL for the step's errors, which gate error_rate "
        "(with a confidence) reads")
    assert source_problems(plan("f", dataclasses.replace(source, queries={**queries, **STEP_QUERIES}),
                                GATES)) == ()
    bad = {**queries, **STEP_QUERIES, "step_errors": "sum({{ nope }})"}
    problems = source_problems(plan("f", dataclasses.replace(source, queries=bad), GATES))
    assert len(problems) == 1 and "nope" in problems[0]
