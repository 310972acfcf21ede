"""Comparison gates (runner/gates/compare.py): cohort counts in, gate results out — the
verdict rules, the evidence, the sample-ratio check, the alpha split over a rollout's steps,
and bad counts."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats

from runner.gates.compare import (
    SAMPLE_RATIO,
    CohortCounts,
    compare_cohorts,
    comparing_steps,
    look_alpha,
    tuning,
)
from runner.gates.stats.sequential import difference
from runner.gates.verdicts import MAX_DETAIL
from runner.model import Comparison, MetricComparison, Verdict

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
ERRORS = MetricComparison("error_rate", 0.5)
SLOW = MetricComparison("slow_rate", 1.0, objective_ms=500)
SPEC = Comparison(metrics=(ERRORS, SLOW), confidence=0.95, min_requests=500)


def run(t: CohortCounts, c: CohortCounts, spec: Comparison = SPEC, percentage: float = 5,
        looks: int = 5):
    return {r.name: r for r in compare_cohorts(spec, t, c, percentage=percentage, looks=looks, now=NOW)}


def healthy(scale: int = 1) -> tuple[CohortCounts, CohortCounts]:
    """5 % of 60,000 x scale requests (3,000 x scale users, 20 requests each), 0.3 % errors
    and 1 % slow in both cohorts."""
    return (CohortCounts(3000 * scale, 9 * scale, 30 * scale, 150 * scale),
            CohortCounts(57000 * scale, 171 * scale, 570 * scale, 2850 * scale))


def test_results_come_in_order_sample_ratio_first() -> None:
    results = compare_cohorts(SPEC, *healthy(), percentage=5, looks=5, now=NOW)
    assert [r.name for r in results] == [SAMPLE_RATIO, "compare.error_rate", "compare.slow_rate"]
    assert all(r.evaluated_at == NOW and not r.dry_run for r in results)
    only_slow = Comparison(metrics=(SLOW,))
    assert [r.name for r in compare_cohorts(only_slow, *healthy(), percentage=5, looks=5, now=NOW)] == [
        SAMPLE_RATIO, "compare.slow_rate"]


@pytest.mark.parametrize("percentage", [0, -5, 100, 120])
def test_no_split_no_comparison(percentage: float) -> None:
    """At 0 % and 100 % there is no control or no treatment: the absolute gates alone guard."""
    assert compare_cohorts(SPEC, *healthy(), percentage=percentage, looks=5, now=NOW) == ()


def test_a_broken_feature_fails_with_its_evidence() -> None:
    t, c = CohortCounts(3000, 159, 30), CohortCounts(57000, 171, 570)  # 5.3 % vs 0.3 %
    r = run(t, c)["compare.error_rate"]
    assert r.verdict is Verdict.FAIL
    assert r.value == pytest.approx(5.3 - 0.3)
    assert r.threshold == "treatment - control <= +0.5 pp (95 %)"
    ev = r.cohorts
    assert ev is not None
    assert (ev.treatment_rate, ev.control_rate) == pytest.approx((5.3, 0.3))
    assert (ev.treatment_requests, ev.control_requests) == (3000, 57000)
    assert ev.margin == 0.5
    alpha = 0.05 / (5 * 2)
    assert ev.confidence == pytest.approx(1 - alpha)
    iv = difference(159, 3000, 171, 57000, alpha=alpha, tuning=tuning(SPEC, 0.05), one_sided=True)
    assert (ev.low, ev.high) == pytest.approx((100 * iv.low, 100 * iv.high))
    assert ev.low > 0.5
    assert r.detail.startswith("treatment 5.3 % (159/3,000) vs control 0.3 % (171/57,000): +5 pp, "
                               "interval [")
    assert "margin +0.5 pp: treatment is worse than control by more than the margin" in r.detail
    assert "each bound 99.5 % always-valid" in r.detail


def test_a_healthy_feature_passes_once_the_data_shows_it() -> None:
    # 3,000 treatment requests cannot yet show 0.3 % errors within +0.5 pp at 99.5 % (the
    # variance at the margin's 0.8 %); 6,000 can
    assert run(*healthy())["compare.error_rate"].verdict is Verdict.INCONCLUSIVE
    results = run(*healthy(2))
    for name in ("compare.error_rate", "compare.slow_rate"):
        r = results[name]
        assert r.verdict is Verdict.PASS, r.detail
        assert r.value == pytest.approx(0.0)
        assert r.cohorts is not None and r.cohorts.high is not None
        assert r.cohorts.high <= r.cohorts.margin
        assert "treatment is not worse by more than the margin" in r.detail
    assert results["compare.slow_rate"].threshold == "treatment - control <= +1 pp (95 %)"


def test_while_the_interval_straddles_the_margin_it_is_inconclusive() -> None:
    # +0.37 pp observed: neither shown worse than +0.5 nor shown within it
    r = run(CohortCounts(3000, 20, 30), CohortCounts(57000, 171, 570))["compare.error_rate"]
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.cohorts is not None and r.cohorts.low is not None and r.cohorts.high is not None
    assert r.cohorts.low <= 0.5 < r.cohorts.high
    assert r.detail.endswith("the interval still straddles the margin")


def test_too_few_requests_is_inconclusive_and_says_which_cohort() -> None:
    r = run(CohortCounts(300, 100, 3), CohortCounts(5700, 17, 57))
    err = r["compare.error_rate"]
    assert err.verdict is Verdict.INCONCLUSIVE  # even with 33 % errors: not before the minimum
    assert err.detail.startswith("too few requests: treatment has 300, fewer than the minimum 500")
    assert err.value == pytest.approx(100 / 3 - 100 * 17 / 5700)
    assert err.cohorts is not None
    assert (err.cohorts.low, err.cohorts.high) == (None, None)
    both = run(CohortCounts(20, 0, 0), CohortCounts(400, 1, 1))["compare.slow_rate"]
    assert "treatment has 20 and control has 400, fewer than the minimum 500" in both.detail


def test_slow_rate_without_a_slow_count_is_an_error() -> None:
    r = run(CohortCounts(6000, 18), CohortCounts(114000, 342, 1140))
    assert r["compare.slow_rate"].verdict is Verdict.ERROR
    assert r["compare.slow_rate"].detail == (
        "the source gave no slow count (treatment) for the objective 500 ms")
    assert r["compare.error_rate"].verdict is Verdict.PASS  # the other metric is unaffected


def test_dry_run_is_carried_to_every_result() -> None:
    spec = Comparison(metrics=(ERRORS,), dry_run=True)
    results = compare_cohorts(spec, CohortCounts(3000, 159, assigned=150),
                              CohortCounts(57000, 171, assigned=2850), percentage=5, looks=5, now=NOW)
    assert [r.dry_run for r in results] == [True, True]
    assert results[1].verdict is Verdict.FAIL


def test_the_verdict_follows_the_bounds_for_any_counts() -> None:
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(400):
        tn, cn = (float(x) for x in rng.integers(1, 5000, size=2))
        te = float(rng.integers(0, int(tn * 0.08) + 1))
        ce = float(rng.integers(0, int(cn * 0.08) + 1))
        r = run(CohortCounts(tn, te, te), CohortCounts(cn, ce, ce), percentage=30)["compare.error_rate"]
        ev = r.cohorts
        assert ev is not None
        if min(tn, cn) < 500:
            expected = Verdict.INCONCLUSIVE
        else:
            assert ev.low is not None and ev.high is not None and ev.low < ev.high
            expected = (Verdict.FAIL if ev.low > 0.5 else Verdict.PASS if ev.high <= 0.5
                        else Verdict.INCONCLUSIVE)
        assert r.verdict is expected
        assert r.value == pytest.approx(100 * (te / tn - ce / cn))
        assert "\n" not in r.detail and len(r.detail) <= MAX_DETAIL
        seen.add(r.verdict)
    assert seen == {Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE}


# --- the error budget over the rollout --------------------------------------------------------


def test_alpha_is_split_over_the_steps_and_metrics() -> None:
    assert look_alpha(SPEC, 5) == pytest.approx(0.005)
    assert look_alpha(SPEC, 1) == pytest.approx(0.025)
    assert look_alpha(Comparison(metrics=(ERRORS,), confidence=0.99), 4) == pytest.approx(0.0025)
    # more steps that compare: each interval wider, the same counts
    t, c = CohortCounts(3000, 20, 30), CohortCounts(57000, 171, 570)
    one = run(t, c, looks=1)["compare.error_rate"].cohorts
    many = run(t, c, looks=10)["compare.error_rate"].cohorts
    assert one is not None and many is not None
    assert many.low < one.low < one.high < many.high  # type: ignore[operator]


def test_the_looks_of_a_plan_are_its_steps_that_compare() -> None:
    assert comparing_steps((0, 5, 10, 25, 50, 75, 100)) == 5  # safe
    assert comparing_steps((0, 25, 50, 100)) == 2  # fast
    assert comparing_steps((0, 100)) == 1  # instant: nothing compares, and never zero
    assert comparing_steps((1, 1, 5, 100)) == 3  # a repeated percentage is a step of its own


@pytest.mark.parametrize("looks", [0, -1, 2.5, True])
def test_looks_must_be_a_positive_whole_number(looks: object) -> None:
    with pytest.raises(ValueError, match="looks must be a positive whole number"):
        compare_cohorts(SPEC, *healthy(), percentage=5, looks=looks, now=NOW)  # type: ignore[arg-type]


def test_a_percentage_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError, match="the percentage must be a number"):
        compare_cohorts(SPEC, *healthy(), percentage=math.nan, looks=5, now=NOW)


def test_false_rollbacks_over_a_whole_rollout_stay_within_the_budget() -> None:
    """Seeded simulation of the worst case the budget covers: treatment exactly the margin
    worse on both metrics, at every step of the safe plan, a look every 5 minutes for an
    hour a step (10,000 requests a look). A run fails when any look at any step fails."""
    rng = np.random.default_rng(11)
    z = stats.norm.ppf(0.95)
    runs, failed, failed_naive = 200, 0, 0
    steps = (5, 10, 25, 50, 75)
    for _ in range(runs):
        any_fail = any_naive = False
        for pct in steps:
            share = pct / 100
            w_t = rng.binomial(10000, share, size=12)  # treatment requests of each look
            w_c = 10000 - w_t
            n_t, n_c = np.cumsum(w_t), np.cumsum(w_c)
            e_t, e_c = np.cumsum(rng.binomial(w_t, 0.008)), np.cumsum(rng.binomial(w_c, 0.003))
            s_t, s_c = np.cumsum(rng.binomial(w_t, 0.02)), np.cumsum(rng.binomial(w_c, 0.01))
            for k in range(12):
                t = CohortCounts(float(n_t[k]), float(e_t[k]), float(s_t[k]))
                c = CohortCounts(float(n_c[k]), float(e_c[k]), float(s_c[k]))
                results = compare_cohorts(SPEC, t, c, percentage=pct, looks=len(steps), now=NOW)
                any_fail |= any(r.verdict is Verdict.FAIL for r in results)
                # the same looks with an unadjusted fixed-sample test (z at 95 %, one-sided)
                for te, ce, margin in ((e_t[k], e_c[k], 0.005), (s_t[k], s_c[k], 0.01)):
                    d = te / n_t[k] - ce / n_c[k]
                    se = math.sqrt((te / n_t[k]) * (1 - te / n_t[k]) / n_t[k]
                                   + (ce / n_c[k]) * (1 - ce / n_c[k]) / n_c[k])
                    any_naive |= n_t[k] >= 500 and d - z * se > margin
        failed += any_fail
        failed_naive += any_naive
    assert failed / runs <= 0.05
    assert failed_naive / runs > 0.25  # what the adjustment is for


# --- the sample ratio -------------------------------------------------------------------------


def test_a_healthy_split_passes_the_sample_ratio_check() -> None:
    r = run(*healthy())[SAMPLE_RATIO]
    assert r.verdict is Verdict.PASS
    assert r.value == 1.0  # the anytime-valid p-value: the data favours the expected split
    assert r.threshold == "p >= 0.001 over the rollout (sequential)"
    assert r.detail.startswith("treatment has 5 % of 3,000 assigned users, expected 5 % "
                               "(Bayes factor 0.")
    assert r.detail.endswith("; a mismatch needs p < 0.0002)")  # 0.001 over 5 steps
    assert r.cohorts is None


def test_a_broken_split_is_an_error_with_the_observed_and_expected_shares() -> None:
    t = CohortCounts(3000, 9, 30, assigned=225)  # 7.5 % of the users where 5 % is expected
    c = CohortCounts(57000, 171, 570, assigned=2775)
    r = run(t, c)[SAMPLE_RATIO]
    assert r.verdict is Verdict.ERROR
    k = 100 * 0.05, 100 * 0.95  # the prior: Beta(k q, k (1 - q)), k = 100
    log_bf = (stats.betabinom.logpmf(225, 3000, *k) - stats.binom.logpmf(225, 3000, 0.05))
    assert r.value == pytest.approx(math.exp(-log_bf), rel=1e-6)
    assert r.detail.startswith("sample ratio mismatch: treatment has 7.5 % of 3,000 assigned "
                               "users, expected 5 % (Bayes factor ")
    assert r.detail.endswith(" < 0.0002, this step's share of the level): the assignment or the "
                             "cohort telemetry is broken")


def test_the_sample_ratio_is_never_checked_on_requests() -> None:
    """Without assigned counts in both cohorts there is no sample-ratio result at all: a
    user's requests share one assignment, and on request counts a healthy split looks broken."""
    skewed_requests = CohortCounts(4500, 9, 45), CohortCounts(55500, 171, 555)
    assert SAMPLE_RATIO not in run(*skewed_requests)
    assert SAMPLE_RATIO not in run(skewed_requests[0], CohortCounts(55500, 171, 555, 2850))
    # requests skewed (treatment users make more requests), users exact: no mismatch
    t, c = CohortCounts(4500, 9, 45, assigned=150), CohortCounts(55500, 171, 555, assigned=2850)
    assert run(t, c)[SAMPLE_RATIO].verdict is Verdict.PASS


def test_the_sample_ratio_level_is_the_plans_split_over_the_steps() -> None:
    t, c = CohortCounts(3000, 0, 0, assigned=200), CohortCounts(57000, 0, 0, assigned=2800)
    p = run(t, c)[SAMPLE_RATIO].value
    assert p is not None and 0.001 < p < 0.01
    assert run(t, c)[SAMPLE_RATIO].verdict is Verdict.PASS
    lax = Comparison(metrics=(ERRORS,), srm_p_value=0.05)
    assert run(t, c, spec=lax)[SAMPLE_RATIO].verdict is Verdict.ERROR  # 0.01 a step
    assert run(t, c, spec=lax, looks=20)[SAMPLE_RATIO].verdict is Verdict.PASS  # 0.0025 a step


def test_no_traffic_is_inconclusive_everywhere() -> None:
    r = run(CohortCounts(0, 0, 0, 0), CohortCounts(0, 0, 0, 0))
    assert r[SAMPLE_RATIO].verdict is Verdict.INCONCLUSIVE
    assert r[SAMPLE_RATIO].detail == "no assigned users in either cohort yet"
    for name in ("compare.error_rate", "compare.slow_rate"):
        assert r[name].verdict is Verdict.INCONCLUSIVE
        assert r[name].value is None
        assert r[name].cohorts is not None and r[name].cohorts.treatment_rate is None
        assert "treatment none (0/0) vs control none (0/0)" in r[name].detail


def test_the_sequential_test_needs_no_minimum_traffic() -> None:
    # 3 of 10 users in treatment where 0.5 were expected: no evidence yet either way (the
    # Bayes factor is valid at any count; Pearson's chi-square was not trusted below 5)
    r = run(CohortCounts(3, 0, 0, 3), CohortCounts(7, 0, 0, 7))[SAMPLE_RATIO]
    assert r.verdict is Verdict.PASS
    assert r.detail.startswith("treatment has 30 % of 10 assigned users, expected 5 %")
    # every one of 400 users in control: a treatment that lost its users is found early
    gone = run(CohortCounts(0, 0, 0, 0), CohortCounts(8000, 0, 0, 400))[SAMPLE_RATIO]
    assert gone.verdict is Verdict.ERROR


# --- bad counts -------------------------------------------------------------------------------


@pytest.mark.parametrize(("t", "message"), [
    (CohortCounts(-3000, 9, 30), "unusable counts: treatment requests is negative (-3000)"),
    (CohortCounts(3000, -1, 30), "unusable counts: treatment errors is negative (-1)"),
    (CohortCounts(3000, 3001, 30), "unusable counts: treatment has 3001 errors out of only 3000 requests"),
    (CohortCounts(3000, math.nan, 30), "unusable counts: treatment errors is nan, not a number"),
    (CohortCounts(math.inf, 9, 30), "unusable counts: treatment requests is inf, not a number"),
])
def test_bad_counts_are_an_error_that_names_them(t: CohortCounts, message: str) -> None:
    r = run(t, healthy()[1])["compare.error_rate"]
    assert r.verdict is Verdict.ERROR
    assert r.detail == message
    assert r.value is None and r.cohorts is None


def test_bad_counts_in_the_sample_ratio_are_an_error_too() -> None:
    r = run(CohortCounts(1, 0, 0, -1), CohortCounts(5, 0, 0, 5))[SAMPLE_RATIO]
    assert r.verdict is Verdict.ERROR
    assert r.detail == "unusable counts of assigned users: treatment: the count is negative (-1)"
    nan = run(CohortCounts(3000, 9, 30, assigned=math.nan), CohortCounts(57000, 171, 570, assigned=5))
    assert nan[SAMPLE_RATIO].verdict is Verdict.ERROR
    assert "unusable counts of assigned users: treatment: the count must be a finite number, not nan" in (
        nan[SAMPLE_RATIO].detail)


def test_slow_counts_above_requests_are_an_error() -> None:
    r = run(CohortCounts(3000, 9, 3500), healthy()[1])["compare.slow_rate"]
    assert r.verdict is Verdict.ERROR
    assert r.detail == "unusable counts: treatment has 3500 slow out of only 3000 requests"


def test_fractional_counts_are_used_as_they_are() -> None:
    t, c = CohortCounts(6001.6, 18.4, 60.2, 300.3), CohortCounts(113998.1, 341.7, 1139.9, 5699.6)
    results = run(t, c)
    assert all(r.verdict is Verdict.PASS for r in results.values())
    ev = results["compare.error_rate"].cohorts
    assert ev is not None and (ev.treatment_requests, ev.control_requests) == (6002, 113998)
