"""Cohort counts from every source, turned into comparison results beside the gates."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import timedelta
from pathlib import Path

from runner.gates import GateRequest, assess_all, source_problems
from runner.model import Comparison, MetricComparison, Verdict
from tests.prometheus_server import COHORT_QUERIES, QUERIES, cohort_traffic

from .helpers import NOW, by_name, metrics, plan

SPEC = Comparison((MetricComparison("error_rate", 0.5), MetricComparison("slow_rate", 1.0, 500.0)),
                  confidence=0.95, min_requests=500)
STEP_START = NOW - timedelta(minutes=20)


def request(flag: str, source, *, spec=SPEC, step: int = 1, gates=(), started=STEP_START,
            treatment: str = "on", control: str = "off") -> GateRequest:
    p = dataclasses.replace(plan(flag, source, gates), compare=spec)
    return GateRequest(flag, p, step, p.steps[step].percentage, started, treatment, control)


def run(req: GateRequest, root: Path | str = ".", env=None):
    return by_name(assess_all([req], root=root, now=NOW, env=env or {})[req.flag])


def document(treatment: dict, control: dict, **extra) -> dict:
    return {"cohorts": {"treatment": treatment, "control": control}, **extra}


BROKEN = document({"requests": 6000, "errors": 300, "slow": 60, "assigned": 6000},
                  {"requests": 114000, "errors": 342, "slow": 1140, "assigned": 114000})


# --- prometheus -----------------------------------------------------------------------------


def test_prometheus_cohorts_read_per_variant_since_the_step_started(prometheus) -> None:
    start = NOW - timedelta(minutes=40)
    # 5 %: 300 + 5700 requests a minute; the broken feature fails 5 % of its own requests
    series = (cohort_traffic("broken", start=start, end=NOW, variants={"on": 300, "off": 5700},
                             error_percent={"on": 5.0, "off": 0.3},
                             slow_percent={"on": 1.0, "off": 1.0})
              + cohort_traffic("healthy", start=start, end=NOW, variants={"new": 300, "old": 5700},
                               error_percent={"new": 0.3, "old": 0.3},
                               slow_percent={"new": 1.0, "old": 1.0})
              # the split is broken: treatment gets 20 % of the traffic at a 5 % step
              + cohort_traffic("skewed", start=start, end=NOW, variants={"on": 1200, "off": 4800},
                               error_percent={"on": 0.3, "off": 0.3}))
    server = prometheus(series)
    source = metrics("prometheus", url=server.url, queries={**QUERIES, **COHORT_QUERIES},
                     window="5m", timeout=5.0)

    broken = run(request("broken", source))
    assert list(broken) == ["compare.sample_ratio", "compare.error_rate", "compare.slow_rate"]
    assert broken["compare.sample_ratio"].verdict is Verdict.PASS
    err = broken["compare.error_rate"]
    assert err.verdict is Verdict.FAIL, err.detail
    c = err.cohorts
    # 20 minutes since the step started (not the 5m window, not the 40 minutes of data)
    assert 5900 <= c.treatment_requests <= 6100 and 112000 <= c.control_requests <= 116000
    assert abs(c.treatment_rate - 5.0) < 0.01 and abs(c.control_rate - 0.3) < 0.01
    assert c.low > 0.5 and c.margin == 0.5
    # slow share read from the histogram bucket at objective_seconds (0.5): equal cohorts
    slow = broken["compare.slow_rate"]
    assert abs(slow.cohorts.treatment_rate - 1.0) < 0.01 and slow.verdict is not Verdict.FAIL

    # the variants come from the flag (here custom names), not from "on"/"off"
    healthy = run(request("healthy", source, treatment="new", control="old"))
    assert healthy["compare.error_rate"].verdict is Verdict.PASS, healthy["compare.error_rate"].detail

    skewed = run(request("skewed", source))["compare.sample_ratio"]
    assert skewed.verdict is Verdict.ERROR
    assert "treatment has 20 %" in skewed.detail and "expected 5 %" in skewed.detail

    # a step that just started: too few requests, never a verdict either way
    early = run(request("broken", source, started=NOW - timedelta(seconds=30)))
    assert early["compare.error_rate"].verdict is Verdict.INCONCLUSIVE

    # no series for a flag: no data, inconclusive; the absolute gates still evaluate beside
    silent = run(request("silent", source, gates=plan("x", None).gates))
    assert silent["compare.error_rate"].verdict is Verdict.INCONCLUSIVE
    assert "error_rate" in silent and "no cohort data" in silent["compare.error_rate"].detail


def test_prometheus_without_a_cohort_query_is_an_error_for_the_comparisons(prometheus) -> None:
    server = prometheus([])
    queries = {k: v for k, v in COHORT_QUERIES.items() if k != "cohort_slow"}
    out = run(request("f", metrics("prometheus", url=server.url, queries=queries)))
    assert {r.verdict for r in out.values()} == {Verdict.ERROR}
    assert "add cohort_slow to metrics.queries" in out["compare.slow_rate"].detail


def test_a_source_that_fails_makes_every_comparison_an_error() -> None:
    source = metrics("prometheus", url="http://127.0.0.1:9", queries=COHORT_QUERIES, timeout=2.0)
    out = run(request("f", source, gates=plan("x", None).gates))
    assert set(out) >= {"error_rate", "compare.sample_ratio", "compare.error_rate"}
    assert {r.verdict for r in out.values()} == {Verdict.ERROR}
    assert "unreachable" in out["compare.error_rate"].detail


def test_no_comparison_at_zero_and_at_full_rollout(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text(json.dumps(BROKEN))
    source = metrics("file", path="m.json")
    assert run(request("f", source, step=0), tmp_path) == {}
    assert run(request("f", source, step=6), tmp_path) == {}


# --- file -----------------------------------------------------------------------------------


def test_file_cohorts_fail_pass_and_nonsense_is_an_error(tmp_path: Path) -> None:
    source = metrics("file", path="metrics/{{ flag }}-{{ treatment_variant }}.json")
    (tmp_path / "metrics").mkdir()

    def with_doc(doc: object, **kw):
        (tmp_path / "metrics" / "f-on.json").write_text(json.dumps(doc))
        return run(request("f", source, **kw), tmp_path)

    broken = with_doc(BROKEN)
    assert broken["compare.error_rate"].verdict is Verdict.FAIL
    assert broken["compare.error_rate"].cohorts.treatment_requests == 6000

    healthy = with_doc(document({"requests": 6000, "errors": 18, "slow": 60},
                                {"requests": 114000, "errors": 342, "slow": 1140}))
    assert healthy["compare.error_rate"].verdict is Verdict.PASS
    assert "compare.sample_ratio" not in healthy  # never on requests: no assigned, no check

    for bad, words in [
        ({"requests": -1, "errors": 0, "slow": 0}, "negative"),
        ({"requests": 10, "errors": 20, "slow": 0}, "20 errors out of only 10 requests"),
        ({"requests": "many", "errors": 0, "slow": 0}, "not a number"),
        ("treatment", "not an object"),
    ]:
        out = with_doc(document(bad, {"requests": 1000, "errors": 1, "slow": 1}))
        verdicts = {out[n].verdict for n in ("compare.sample_ratio", "compare.error_rate")}
        assert verdicts == {Verdict.ERROR}, (bad, out)
        assert words in out["compare.error_rate"].detail

    for missing in ({}, {"cohorts": {"control": {"requests": 5}}},
                    document({"requests": None, "errors": 0, "slow": 0}, {"requests": 5})):
        out = with_doc(missing)
        assert {r.verdict for r in out.values()} == {Verdict.INCONCLUSIVE}, missing

    # the freshness rule of the document covers the cohorts too
    stale = with_doc({**BROKEN, "timestamp": (NOW - timedelta(hours=1)).isoformat()})
    assert {r.verdict for r in stale.values()} == {Verdict.INCONCLUSIVE}


# --- command --------------------------------------------------------------------------------


def test_command_cohorts_get_the_step_and_the_variants(tmp_path: Path) -> None:
    script = tmp_path / "cohorts.py"
    script.write_text(
        "import json, os, sys\n"
        "assert sys.argv[1:] == ['1200s', 'on', 'off'], sys.argv\n"
        "e = os.environ\n"
        "assert e['ROLLOUT_STEP_WINDOW'] == '1200s' and e['ROLLOUT_OBJECTIVE_MS'] == '500'\n"
        "assert e['ROLLOUT_STEP_STARTED_AT'].startswith('2026-01-15T11:40')\n"
        "errors = 300 if e['ROLLOUT_TREATMENT_VARIANT'] == 'on' else 0\n"
        "print(json.dumps({'cohorts': {\n"
        "  'treatment': {'requests': 6000, 'errors': errors, 'slow': 60, 'assigned': 6000},\n"
        "  'control': {'requests': 114000, 'errors': 342, 'slow': 1140, 'assigned': 114000}}}))\n")
    source = metrics("command", command=[sys.executable, str(script), "{{ step_window }}",
                                         "{{ treatment_variant }}", "{{ control_variant }}"])
    out = run(request("f", source), tmp_path)
    assert out["compare.error_rate"].verdict is Verdict.FAIL, out["compare.error_rate"].detail
    assert out["compare.slow_rate"].verdict is Verdict.PASS
    assert out["compare.sample_ratio"].verdict is Verdict.PASS

    script.write_text("import json\nprint(json.dumps({'cohorts': {'treatment': {'requests': 5, "
                      "'errors': 9}, 'control': {'requests': 5, 'errors': 0}}}))\n")
    spec = Comparison((MetricComparison("error_rate", 0.5),))
    out = run(request("f", metrics("command", command=[sys.executable, str(script)]), spec=spec),
              tmp_path)
    assert out["compare.error_rate"].verdict is Verdict.ERROR
    assert "9 errors out of only 5 requests" in out["compare.error_rate"].detail


# --- review-time checks ---------------------------------------------------------------------


def test_lint_finds_missing_and_cohort_blind_queries() -> None:
    def problems(queries: dict[str, str], spec: Comparison = SPEC) -> tuple[str, ...]:
        p = dataclasses.replace(plan("f", metrics("prometheus", url="http://p", queries=queries),
                                     ()), compare=spec)
        return source_problems(p)

    assert problems(dict(COHORT_QUERIES)) == ()
    got = problems({"cohort_requests": COHORT_QUERIES["cohort_requests"]})
    assert any(p.startswith("compare.error_rate: the prometheus source has no cohort_errors")
               for p in got), got
    assert any(p.startswith("compare.slow_rate: the prometheus source has no cohort_slow")
               for p in got), got
    only_errors = Comparison((MetricComparison("error_rate", 0.5),))
    assert problems({k: v for k, v in COHORT_QUERIES.items() if k != "cohort_slow"},
                    only_errors) == ()
    blind = {**COHORT_QUERIES, "cohort_requests": 'sum(rollout_requests_total{flag="{{ flag }}"})'}
    assert any("cohort_requests: the query is the same for both cohorts" in p
               for p in problems(blind))
    typo = {**COHORT_QUERIES, "cohort_errors": "x{v=\"{{ varient }}\"}"}
    assert any("undefined" in p for p in problems(typo))
    # an objective is only defined with slow_rate
    needs = {**COHORT_QUERIES, "cohort_requests": 'x{le="{{ objective_seconds }}",v="{{ variant }}"}'}
    assert any("objective_seconds" in p for p in problems(needs, only_errors))


ABSURD = [("1e300", "is 1e+300, more than any real count"),
          ("1.7e308", "is 1.7e+308, more than any real count"),
          ("5e-324", "a nonzero count too small to be real"),
          ("1" + "0" * 400, "is an integer of 401 digits"),
          ("-3", "is negative (-3)"),
          ("NaN", "is nan, not a number"),
          ("Infinity", "is inf, not a number")]


def test_absurd_cohort_counts_are_an_error_naming_the_count(tmp_path: Path) -> None:
    source = metrics("file", path="metrics/{{ flag }}.json")
    (tmp_path / "metrics").mkdir()
    good = {"requests": "6000", "errors": "18", "slow": "60", "assigned": "6000"}
    for text, words in ABSURD:
        for cohort in ("treatment", "control"):
            for count in good:
                counts = {c: dict(good) for c in ("treatment", "control")}
                counts["control"] = {k: str(int(v) * 19) for k, v in good.items()}
                counts[cohort][count] = text
                if count != "requests" and not text.startswith(("-", "5e", "N")):
                    counts[cohort]["requests"] = text  # errors above requests: said anyway
                doc = "{\"cohorts\": {" + ", ".join(
                    f'"{c}": {{' + ", ".join(f'"{k}": {v}' for k, v in counts[c].items()) + "}"
                    for c in counts) + "}}"
                (tmp_path / "metrics/f.json").write_text(doc)
                out = run(request("f", source), tmp_path)
                assert list(out) == ["compare.sample_ratio", "compare.error_rate",
                                     "compare.slow_rate"]
                for name, result in out.items():
                    assert result.verdict is Verdict.ERROR, (text, cohort, count, name, result)
                    assert words in result.detail, (text, cohort, count, result.detail)
                    assert f"{cohort} " in result.detail and "timeout" not in result.detail
