"""Comparison gates from the plan file to the decision and its evidence: the loader, the
decision, the commit, the state, status and history."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from runner.load.assemble import build_plan
from runner.load.statefile import dump_state, state_from_dict
from runner.model import CohortEvidence, GateResult, Phase, RepoConfig, Verdict
from runner.reconcile.decide import Action, decide
from runner.reconcile.message import message
from tests.runner.helpers import HEALTHY, advance, commit_all, rollout, state, trailer, write_plan
from tests.runner.test_decide import T0, at, started

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


COMPARE = {"error_rate": {"max_increase": 0.5},
           "slow_rate": {"objective_ms": 500, "max_increase": 1.0},
           "confidence": 0.95, "min_requests": 500}
PLAN = ("flag: phase_4_deployment\nstrategy: custom\nsteps: [0, 5, 100]\nwait: 5m\n"
        "gates:\n  error_rate: 1.0\n  request_count: 100\n"
        "compare:\n  error_rate: {max_increase: 0.5}\n"
        "  slow_rate: {objective_ms: 500, max_increase: 1.0}\n  min_requests: 500\n")
BROKEN = {"treatment": {"requests": 6000, "errors": 300, "slow": 60, "assigned": 6000},
          "control": {"requests": 114000, "errors": 342, "slow": 1140, "assigned": 114000}}


def plan(**compare: object):
    doc = {"flag": "checkout", "strategy": "safe", "wait": "5m",
           "gates": {"error_rate": 1.0, "request_count": 100},
           "compare": {**COMPARE, **compare}}
    return build_plan("checkout", doc, RepoConfig())


# --- the loader ----------------------------------------------------------------------------


def test_the_compare_block_loads_and_is_part_of_the_digest() -> None:
    p = plan()
    c = p.compare
    assert [(m.metric, m.max_increase, m.objective_ms) for m in c.metrics] == [
        ("error_rate", 0.5, None), ("slow_rate", 1.0, 500.0)]
    assert (c.confidence, c.min_requests, c.srm_p_value, c.dry_run) == (0.95, 500, 0.001, False)
    assert c.unit == "requests"
    users = plan(unit="users")
    assert users.compare.unit == "users" and users.digest != p.digest
    assert plan(confidence=0.99).digest != p.digest
    assert plan(error_rate={"max_increase": 1.0}).digest != p.digest
    without = build_plan("checkout", {"flag": "checkout", "strategy": "safe",
                                      "gates": {"error_rate": 1.0, "request_count": 100}},
                         RepoConfig())
    assert without.compare is None and without.digest != p.digest


def test_bad_compare_blocks_are_one_line_at_file_line_col(example_repo: Path) -> None:
    cases = [
        ("compare:\n  error_rate: {max_increase: -1}\n", "compare.error_rate.max_increase"),
        ("compare:\n  slow_rate: {max_increase: 1}\n", "objective_ms"),
        ("compare:\n  error_rate: {max_increase: 0.5}\n  confidence: 1.5\n", "compare.confidence"),
        ("compare:\n  confidence: 0.9\n", "compare"),
        ("compare:\n  error_rate: {max_increase: 0.5}\n  typo: 1\n", "typo"),
        ("compare:\n  error_rate: {max_increase: 0.5}\n  unit: sessions\n", "compare.unit"),
    ]
    base = ("flag: phase_4_deployment\nstrategy: safe\n"
            "gates:\n  error_rate: 1.0\n  request_count: 100\n")
    for block, words in cases:
        write_plan(example_repo, base + block)
        out = rollout(example_repo, "validate")
        assert out.returncode == 1, (block, out.stdout, out.stderr)
        lines = [ln for ln in (out.stdout + out.stderr).splitlines()
                 if ln.startswith("rollouts/phase_4_deployment.yaml:")]
        assert lines and any(words in ln for ln in lines), (block, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
        assert lines[0].split(":")[1] in {"6", "7", "8"}, lines  # the line of the block


def test_validate_finds_a_prometheus_plan_without_cohort_queries(example_repo: Path) -> None:
    write_plan(example_repo, PLAN + "metrics:\n  type: prometheus\n  url: http://127.0.0.1:9\n"
               "  queries:\n    error_rate: 'vector(0)'\n    request_count: 'vector(1000)'\n"
               "    cohort_requests: 'sum(x{variant=\"{{ variant }}\"})'\n")
    out = rollout(example_repo, "validate")
    assert out.returncode == 1
    assert "rollouts/phase_4_deployment.yaml:9:3: compare.error_rate:" in out.stdout
    assert "no cohort_errors query" in out.stdout + out.stderr


def test_validate_finds_a_comparison_of_users_without_user_queries(example_repo: Path) -> None:
    q = 'sum(x{variant=\"{{ variant }}\"})'
    write_plan(example_repo, PLAN + "  unit: users\nmetrics:\n  type: prometheus\n"
               "  url: http://127.0.0.1:9\n  queries:\n    error_rate: 'vector(0)'\n"
               f"    request_count: 'vector(1000)'\n    cohort_requests: '{q}'\n"
               f"    cohort_errors: '{q}'\n    cohort_slow: '{q}'\n")
    out = rollout(example_repo, "validate")
    assert out.returncode == 1
    text = out.stdout + out.stderr
    assert "compare.unit: the prometheus source has no cohort_users query" in text
    assert "compare.error_rate: the prometheus source has no cohort_users_with_errors query" in text
    assert "compare.slow_rate: the prometheus source has no cohort_users_slow query" in text


# --- the decision ---------------------------------------------------------------------------


def results(error: Verdict = Verdict.PASS, srm: Verdict = Verdict.PASS, dry: bool = False,
            when=T0) -> tuple[GateResult, ...]:
    evidence = CohortEvidence(5.0, 0.3, 6000, 114000, 4.2, 5.4, 0.5, 0.99)
    return (GateResult("error_rate", Verdict.PASS, 0.5, "<= 1", False, "", when),
            GateResult("request_count", Verdict.PASS, 500, ">= 100", False, "", when),
            GateResult("compare.sample_ratio", srm, 0.4, "p >= 0.001 (chi-square)", dry,
                       "sample ratio mismatch: treatment has 20 % of 120,000 split-assigned "
                       "requests, expected 5 %" if srm is Verdict.ERROR else "", when),
            GateResult("compare.error_rate", error, 4.7, "treatment - control <= +0.5 pp (95 %)",
                       dry, "treatment 5 % vs control 0.3 %", when, evidence))


def at_five(p):
    p, s = started(p)
    d = decide(p, s, results(when=at(5)), at(5))
    assert d.action is Action.ADVANCE and d.after.current_percentage == 5
    return p, d.after


def test_a_sample_ratio_mismatch_pauses_at_once_naming_the_shares() -> None:
    p, s = at_five(plan())
    d = decide(p, s, results(srm=Verdict.ERROR, when=at(7)), at(7))
    assert d.action is Action.PAUSE and d.after.phase is Phase.PAUSED
    assert "compare.sample_ratio" in d.reason
    assert "treatment has 20 %" in d.reason and "expected 5 %" in d.reason
    # a failure is conclusive and still acts first: rolling back is the safe side
    d = decide(p, s, results(srm=Verdict.ERROR, error=Verdict.FAIL, when=at(7)), at(7))
    assert d.action is Action.ROLLBACK
    # a dry-run comparison never pauses
    p2, s2 = at_five(plan(dry_run=True))
    d = decide(p2, s2, results(srm=Verdict.ERROR, dry=True, when=at(7)), at(7))
    assert d.action is not Action.PAUSE and d.after.phase is Phase.PROGRESSING


def test_a_failed_comparison_rolls_back_inconclusive_holds_dry_run_never_blocks() -> None:
    p, s = at_five(plan())
    d = decide(p, s, results(error=Verdict.FAIL, when=at(7)), at(7))
    assert d.action is Action.ROLLBACK and "compare.error_rate" in d.reason

    d = decide(p, s, results(error=Verdict.INCONCLUSIVE, when=at(11)), at(11))
    assert d.after.current_percentage == 5 and d.after.phase is Phase.PROGRESSING
    assert "inconclusive" in d.reason

    p2, s2 = at_five(plan(dry_run=True))
    d = decide(p2, s2, results(error=Verdict.FAIL, dry=True, when=at(11)), at(11))
    assert d.action is Action.ADVANCE and d.after.current_percentage == 10


def test_the_commit_and_the_state_carry_the_cohort_evidence() -> None:
    p, s = at_five(plan())
    d = decide(p, s, results(error=Verdict.FAIL, when=at(7)), at(7))
    text = message(d, p)
    compare = [ln for ln in text.splitlines() if ln.startswith("Rollout-Compare: ")]
    assert compare == ["Rollout-Compare: error_rate treatment 5% (n=6,000) control 0.3% "
                       "(n=114,000) diff +4.7 pp [+4.2, +5.4] at 99% margin 0.5 pp: fail"]
    assert ("compare.error_rate = 4.7 (threshold treatment - control <= +0.5 pp (95 %), window "
            "since the step started): fail") in text
    # the state round-trips the evidence, and states without comparisons are unchanged
    written = dump_state(d.after)
    back = state_from_dict(json.loads(written))
    assert back.last_gates == d.after.last_gates
    assert back.last_gates[3].cohorts == CohortEvidence(5.0, 0.3, 6000, 114000, 4.2, 5.4, 0.5, 0.99)
    plain = dataclasses.replace(d.after, last_gates=d.after.last_gates[:2])
    assert '"cohorts"' not in dump_state(plain)


# --- end to end: the CLI, a real repository, the file source --------------------------------


def test_a_broken_feature_the_global_gate_misses_is_rolled_back_at_five_percent(
        example_repo: Path) -> None:
    write_plan(example_repo, PLAN)
    commit_all(example_repo, "compare treatment with control")
    (example_repo / "logs").mkdir(exist_ok=True)
    metrics = example_repo / "logs" / "metrics.json"
    metrics.write_text(json.dumps({**HEALTHY, "error_rate": 0.54, "cohorts": BROKEN}))
    assert rollout(example_repo, "validate").returncode == 0
    assert advance(example_repo, 0).returncode == 0
    out = advance(example_repo, 6)
    assert out.returncode == 0, out.stdout + out.stderr
    assert state(example_repo)["current_percentage"] == 5

    out = advance(example_repo, 8)
    assert out.returncode == 4, out.stdout + out.stderr  # rolled back
    st = state(example_repo)
    assert (st["phase"], st["current_percentage"]) == ("rolled_back", 0)
    gates = {g["name"]: g for g in st["last_gates"]}
    assert gates["error_rate"]["verdict"] == "pass"  # 0.54 % overall: the global gate passes
    assert gates["compare.error_rate"]["verdict"] == "fail"
    c = gates["compare.error_rate"]["cohorts"]
    assert (c["treatment_requests"], c["control_requests"], c["treatment_rate"]) == (6000, 114000, 5)
    assert c["low"] > 0.5 and c["margin"] == 0.5

    compare = trailer(example_repo, "Rollout-Compare")
    assert compare.splitlines()[0].startswith("error_rate treatment 5% (n=6,000) control 0.3% "
                                              "(n=114,000) diff +4.7 pp [")
    assert compare.splitlines()[0].endswith("margin 0.5 pp: fail")

    text = rollout(example_repo, "status").stdout
    assert "compare.error_rate = 4.7 (" in text  # as the commit writes it, not 4.70000…1
    assert "    treatment 5% (n=6,000) control 0.3% (n=114,000) diff +4.7 pp [" in text
    js = json.loads(rollout(example_repo, "status", "phase_4_deployment", "--format", "json").stdout)
    assert {g["name"]: g for g in js["last_gates"]}["compare.error_rate"]["cohorts"] == c

    history = rollout(example_repo, "history", "phase_4_deployment").stdout
    assert "compare: error_rate treatment 5% (n=6,000)" in history
    hj = json.loads(rollout(example_repo, "history", "phase_4_deployment", "--format", "json").stdout)
    back = next(e for e in hj if e["action"] == "rollback")
    assert back["compare"] and back["compare"][0].startswith("error_rate treatment 5%")


def test_an_absurd_cohort_count_is_an_error_naming_it_in_the_state(example_repo: Path) -> None:
    write_plan(example_repo, PLAN)
    commit_all(example_repo, "compare treatment with control")
    (example_repo / "logs").mkdir(exist_ok=True)
    metrics = example_repo / "logs" / "metrics.json"
    metrics.write_text(json.dumps({**HEALTHY, "cohorts": BROKEN}))
    assert advance(example_repo, 0).returncode == 0
    assert advance(example_repo, 6).returncode == 0
    absurd = json.dumps({**HEALTHY, "cohorts": {**BROKEN, "treatment": {
        **BROKEN["treatment"], "requests": 1e300, "errors": 1e300}}})
    metrics.write_text(absurd.replace("1e+300, \"errors\": 1e+300", "1" + "0" * 400 + ", "
                                      "\"errors\": 1e+300"))
    out = advance(example_repo, 8)
    assert "Traceback" not in out.stdout + out.stderr
    assert out.returncode == 0, out.stdout + out.stderr  # an error holds, it never advances
    st = state(example_repo)
    assert st["current_percentage"] == 5
    gates = {g["name"]: g for g in st["last_gates"]}
    for name in ("compare.sample_ratio", "compare.error_rate", "compare.slow_rate"):
        assert gates[name]["verdict"] == "error", gates[name]
        assert "treatment requests" in gates[name]["detail"], gates[name]
        assert "integer of 401 digits" in gates[name]["detail"], gates[name]
        assert "timeout" not in gates[name]["detail"]
