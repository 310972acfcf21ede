"""The requests a comparison needs to decide (runner/gates/sample_size.py): the inversion
against scipy, the answer against the runner's own verdicts, and the power it promises
against a seeded simulation of the step, looked at repeatedly as the runner does."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from runner.gates.compare import CohortCounts
from runner.gates.sample_size import (
    FAIL,
    PASS,
    PRECISION,
    comparison_need,
    distance_to_decide,
    smallest,
    verdict,
)
from runner.model import Comparison, MetricComparison, Verdict

ERRORS = MetricComparison("error_rate", 0.5)
SLOW = MetricComparison("slow_rate", 1.0, 500.0)
SPEC = Comparison((ERRORS,))
SAFE_LOOKS = 5  # the safe strategy's steps that compare: 5, 10, 25, 50, 75


def need(outcome: str, increase: float, *, percentage: float = 5.0, power: float = 0.8,
         spec: Comparison = SPEC, metric: MetricComparison = ERRORS, control: float = 0.3):
    return comparison_need(spec, metric, percentage=percentage, looks=SAFE_LOOKS,
                           control_rate=control, increase=increase, outcome=outcome,
                           power=power)


@pytest.mark.parametrize("target", [3.0, 1234.5, 98765.4321, 5e9])
def test_smallest_finds_the_root_scipy_finds(target: float) -> None:
    # a smooth decreasing "radius": 1/sqrt(n) <= 1/sqrt(target) exactly from target on
    def radius(n: float) -> float:
        return 1.0 / math.sqrt(n) - 1.0 / math.sqrt(target)

    root = optimize.brentq(radius, 1.0, 1e12, xtol=1e-9)
    found = smallest(lambda n: radius(n) <= 0, 1.0)
    assert found is not None
    assert root * (1 - 1e-9) <= found <= math.ceil(root * (1 + PRECISION)) + 1


def test_smallest_says_never_and_takes_the_low_end() -> None:
    assert smallest(lambda n: False, 10.0, 1e6) is None
    assert smallest(lambda n: True, 10.5) == 11


def test_the_answer_is_where_the_runners_own_verdict_turns() -> None:
    n = need(PASS, 0.0)
    assert n.requests is not None and n.treatment_requests is not None
    assert n.treatment_requests == pytest.approx(0.05 * n.requests)
    z = stats.norm.ppf(0.8)  # the unfavourable quantile the plan is made for

    def verdict_at(total: float) -> Verdict:
        nt, nc = 0.05 * total, 0.95 * total
        sd = math.sqrt(0.003 * 0.997 / nt + 0.003 * 0.997 / nc)
        te = nt * (0.003 + z * sd)
        return verdict(SPEC, ERRORS, CohortCounts(nt, te, te), CohortCounts(nc, nc * 0.003),
                       percentage=5, looks=SAFE_LOOKS)

    assert verdict_at(n.requests) is Verdict.PASS
    assert verdict_at(n.requests * (1 - 3 * PRECISION)) is Verdict.INCONCLUSIVE


def test_more_traffic_share_more_power_and_smaller_margins_cost_what_they_should() -> None:
    at5, at25 = need(PASS, 0.0).requests, need(PASS, 0.0, percentage=25).requests
    assert at5 is not None and at25 is not None and at25 < at5
    median, strict = need(PASS, 0.0, power=0.5).requests, need(PASS, 0.0, power=0.95).requests
    assert median is not None and strict is not None and median < at5 < strict
    wide = comparison_need(Comparison((MetricComparison("error_rate", 1.0),)),
                           MetricComparison("error_rate", 1.0), percentage=5, looks=SAFE_LOOKS,
                           control_rate=0.3, increase=0.0, outcome=PASS, power=0.8).requests
    assert wide is not None and wide < at5
    # a second compared metric splits alpha: each comparison needs more
    two = need(PASS, 0.0, spec=Comparison((ERRORS, SLOW))).requests
    assert two is not None and two > at5
    # never less than min_requests in the smaller cohort
    assert at5 >= SPEC.min_requests / 0.05


def test_what_never_decides_says_so() -> None:
    no_margin = MetricComparison("error_rate", 0.0)
    spec = Comparison((no_margin,))
    healthy = comparison_need(spec, no_margin, percentage=5, looks=1, control_rate=0.3,
                              increase=0.0, outcome=PASS, power=0.8)
    assert healthy.requests is None and healthy.seconds(6000) is None
    # a regression no larger than the margin is never shown to exceed it
    assert need(FAIL, 0.5).requests is None
    with pytest.raises(ValueError, match="outcome"):
        need("maybe", 0.0)
    with pytest.raises(ValueError, match="split"):
        need(PASS, 0.0, percentage=100)
    with pytest.raises(ValueError, match="power"):
        need(PASS, 0.0, power=1.0)


def test_the_issues_subtle_regression() -> None:
    # issue 18: 1 % errors against 0.3 %, margin +0.5 pp, at 5 %: about 17,000-37,000
    # treatment requests (the median: half the runs have caught it by then)
    caught = need(FAIL, 0.7, power=0.5)
    assert caught.treatment_requests is not None
    assert 17_000 <= caught.treatment_requests <= 37_000
    assert caught.seconds(60_000) == pytest.approx(caught.requests / 60_000 * 3600)


def _first_decision(rng: np.random.Generator, want: Verdict, pct: float, t_rate: float,
                    c_rate: float, looks: np.ndarray) -> float | None:
    """The total requests at the first look where the runner's verdict is ``want``."""
    q = pct / 100
    tn = cn = te = ce = 0.0
    previous = 0.0
    for total in looks:
        batch = int(total - previous)
        previous = total
        nt = rng.binomial(batch, q)
        tn, cn = tn + nt, cn + batch - nt
        te += rng.binomial(nt, t_rate)
        ce += rng.binomial(batch - nt, c_rate)
        got = verdict(SPEC, ERRORS, CohortCounts(tn, te, te), CohortCounts(cn, ce, ce),
                      percentage=pct, looks=SAFE_LOOKS)
        if got is want:
            return float(total)
    return None


@pytest.mark.parametrize(("outcome", "increase", "runs"), [(PASS, 0.0, 300), (FAIL, 0.7, 150)])
def test_the_promised_power_holds_in_a_seeded_simulation(outcome: str, increase: float,
                                                         runs: int) -> None:
    """A step at 5 % looked at 20 times up to the planned size (the runner looks every run):
    by the planned size, at least ``power`` of the runs have decided; the plan is the power
    of the last look, so repeated looks only add (but not wildly: the estimate is useful)."""
    planned = need(outcome, increase)
    median = need(outcome, increase, power=0.5)
    assert planned.requests is not None and median.requests is not None
    rng = np.random.default_rng(18)
    looks = np.linspace(planned.requests / 20, planned.requests, 20).round()
    want = Verdict.PASS if outcome == PASS else Verdict.FAIL
    firsts = [_first_decision(rng, want, 5.0, (0.3 + increase) / 100, 0.003, looks)
              for _ in range(runs)]
    by_planned = sum(f is not None for f in firsts) / runs
    by_median = sum(f is not None and f <= median.requests for f in firsts) / runs
    noise = 2.5 * math.sqrt(0.8 * 0.2 / runs)
    assert 0.8 - noise <= by_planned <= 0.98, by_planned
    assert 0.5 - 2.5 * math.sqrt(0.25 / runs) - 0.05 <= by_median <= 0.8, by_median


def test_distance_to_decide_scales_the_observed_cohorts() -> None:
    # 1,800 treatment requests at 0.5 % against 34,200 at 0.292 %: heading for a pass
    d = distance_to_decide(SPEC, ERRORS, percentage=5, looks=SAFE_LOOKS,
                           treatment_requests=1800, treatment_rate=0.5,
                           control_requests=34200, control_rate=0.292)
    assert d is not None and d.outcome == PASS and d.more_requests is not None
    assert d.more_treatment_requests == pytest.approx(d.more_requests * 0.05)
    k = 1 + d.more_requests / 36000
    at = verdict(SPEC, ERRORS, CohortCounts(1800 * k, 9 * k, 9 * k),
                 CohortCounts(34200 * k, 99.864 * k, 99.864 * k), percentage=5, looks=SAFE_LOOKS)
    assert at is Verdict.PASS
    # worse than the margin: heading for a fail
    worse = distance_to_decide(SPEC, ERRORS, percentage=5, looks=SAFE_LOOKS,
                               treatment_requests=600, treatment_rate=1.5,
                               control_requests=11400, control_rate=0.3)
    assert worse is not None and worse.outcome == FAIL and worse.more_requests
    # exactly at the margin: never
    edge = distance_to_decide(SPEC, ERRORS, percentage=5, looks=SAFE_LOOKS,
                              treatment_requests=600, treatment_rate=0.8,
                              control_requests=11400, control_rate=0.3)
    assert edge is not None and edge.more_requests is None
    assert distance_to_decide(SPEC, ERRORS, percentage=5, looks=SAFE_LOOKS,
                              treatment_requests=0, treatment_rate=0,
                              control_requests=100, control_rate=0.3) is None
