"""The requests an absolute gate with a confidence needs (runner/gates/sample_size.py,
``rate_need``): the answer where the runner's own verdict turns, against an independent
evaluation of Robbins' mixture with scipy, and the power it promises in a seeded simulation
of a step looked at repeatedly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from runner.gates.sample_size import (
    FAIL,
    PASS,
    PRECISION,
    rate_distance_to_decide,
    rate_need,
    rate_verdict,
)
from runner.gates.stats.rate_bound import prior
from runner.model import Gate, Verdict

GATE = Gate("error_rate", max=1.0, confidence=0.95)
STEPS = 7  # the safe strategy's


def _log_m(errors: float, n: float, t: float, alpha: float) -> float:
    """ln M_n(t), Robbins' mixture, written out with scipy's beta function."""
    a, b = prior(t, alpha)
    return (special.betaln(errors + a, n - errors + b) - special.betaln(a, b)
            - errors * math.log(t) - (n - errors) * math.log1p(-t))


@pytest.mark.parametrize(("rate", "outcome"), [(0.3, PASS), (0.5, PASS), (2.0, FAIL),
                                               (20.0, FAIL)])
@pytest.mark.parametrize("power", [0.5, 0.8])
def test_the_answer_is_where_the_runners_verdict_turns_and_scipy_agrees(
        rate: float, outcome: str, power: float) -> None:
    need = rate_need(GATE, steps=STEPS, rate=rate, outcome=outcome, power=power)
    assert need.requests is not None and need.outcome == outcome
    p, z = rate / 100, stats.norm.ppf(power)
    side = 1 if outcome == PASS else -1
    want = Verdict.PASS if outcome == PASS else Verdict.FAIL

    def seen(n: float) -> float:
        return max(p + side * z * math.sqrt(p * (1 - p) / n), 0.0) * n

    n = need.requests
    assert rate_verdict(GATE, n, seen(n), steps=STEPS) is want
    below = n * (1 - 3 * PRECISION) - 1
    assert rate_verdict(GATE, below, seen(below), steps=STEPS) is not want
    # independently: where ln M_n(t) reaches ln(1/alpha) on those counts (scipy's root finder)
    alpha = 0.05 / STEPS
    root = optimize.brentq(lambda x: _log_m(seen(x), x, 0.01, alpha) - math.log(1 / alpha),
                           max(n / 4, 2.0), n * 4)
    assert root == pytest.approx(n, rel=3 * PRECISION, abs=2)


def test_the_docs_numbers() -> None:
    # docs/metrics.md: 0.3 % against max 1 passes after about 2,000 requests (median),
    # half the threshold after about 4,500; 20 % is caught at about 35 requests
    assert 1_700 <= rate_need(GATE, steps=STEPS, rate=0.3, outcome=PASS, power=0.5).requests <= 2_300
    assert 4_000 <= rate_need(GATE, steps=STEPS, rate=0.5, outcome=PASS, power=0.5).requests <= 5_000
    caught = rate_need(GATE, steps=STEPS, rate=20.0, outcome=FAIL, power=0.5)
    assert caught.requests is not None and 25 <= caught.requests <= 45
    assert caught.seconds(3600) == pytest.approx(caught.requests)


def test_more_power_more_steps_and_a_closer_rate_cost_more() -> None:
    base = rate_need(GATE, steps=STEPS, rate=0.3, outcome=PASS, power=0.8).requests
    assert rate_need(GATE, steps=STEPS, rate=0.3, outcome=PASS, power=0.9).requests > base
    assert rate_need(GATE, steps=20, rate=0.3, outcome=PASS, power=0.8).requests > base
    assert rate_need(GATE, steps=STEPS, rate=0.6, outcome=PASS, power=0.8).requests > base


def test_what_never_decides_says_so_and_bad_input_is_refused() -> None:
    assert rate_need(GATE, steps=STEPS, rate=1.0, outcome=PASS, power=0.8).requests is None
    assert rate_need(GATE, steps=STEPS, rate=0.5, outcome=FAIL, power=0.8).requests is None
    with pytest.raises(ValueError, match="confidence"):
        rate_need(Gate("error_rate", max=1.0), steps=STEPS, rate=0.3, outcome=PASS, power=0.8)
    with pytest.raises(ValueError, match="power"):
        rate_need(GATE, steps=STEPS, rate=0.3, outcome=PASS, power=1.0)
    with pytest.raises(ValueError, match="outcome"):
        rate_need(GATE, steps=STEPS, rate=0.3, outcome="maybe", power=0.8)


@pytest.mark.parametrize(("rate", "outcome", "runs"), [(0.3, PASS, 300), (2.0, FAIL, 300)])
def test_the_promised_power_holds_in_a_seeded_simulation(rate: float, outcome: str,
                                                         runs: int) -> None:
    """A step looked at 20 times up to the planned size: by then at least ``power`` of the
    runs have decided (the plan is the last look's power; earlier looks only add)."""
    planned = rate_need(GATE, steps=STEPS, rate=rate, outcome=outcome, power=0.8).requests
    assert planned is not None
    rng = np.random.default_rng(18)
    looks = np.linspace(planned / 20, planned, 20).round()
    want = Verdict.PASS if outcome == PASS else Verdict.FAIL
    decided = 0
    for _ in range(runs):
        errors = np.cumsum(rng.binomial(np.diff(np.concatenate(([0.0], looks))).astype(int),
                                        rate / 100))
        decided += any(rate_verdict(GATE, float(n), float(e), steps=STEPS) is want
                       for n, e in zip(looks, errors, strict=True))
    share = decided / runs
    assert 0.8 - 2.5 * math.sqrt(0.16 / runs) <= share <= 0.99, share


def test_distance_to_decide_extrapolates_the_observed_rate() -> None:
    d = rate_distance_to_decide(GATE, steps=STEPS, requests=500, errors=1)
    assert d is not None and d.outcome == PASS and d.more_requests is not None
    total = 500 + d.more_requests
    assert rate_verdict(GATE, total, total / 500, steps=STEPS) is Verdict.PASS
    assert rate_verdict(GATE, total * 0.99, total * 0.99 / 500, steps=STEPS) is Verdict.INCONCLUSIVE
    worse = rate_distance_to_decide(GATE, steps=STEPS, requests=100, errors=2)
    assert worse is not None and worse.outcome == FAIL and worse.more_requests
    edge = rate_distance_to_decide(GATE, steps=STEPS, requests=500, errors=5)
    assert edge is not None and edge.more_requests is None
    assert rate_distance_to_decide(GATE, steps=STEPS, requests=0, errors=0) is None
