"""The always-valid bound on one rate (runner/gates/stats/rate_bound.py) against independent
values: scipy's beta function and numerical integration for the mixture, exact binomial
(Clopper-Pearson) bounds for the interval, and an exact dynamic program over every path of
Bernoulli outcomes for the time-uniform error (a look after every single request)."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from runner.gates.stats import rate_bound
from runner.gates.stats.rate_bound import bound, log_mixture, prior

ALPHA = 0.05 / 7  # the safe plan's budget at 95 %: Bonferroni over its 7 steps


@pytest.mark.parametrize(("events", "total", "rate"), [
    (0, 100, 0.01), (1, 100, 0.01), (2, 100, 0.01), (3, 1000, 0.01), (30, 150, 0.01),
    (0, 40, 0.05), (7, 2000, 0.002), (2.5, 310.7, 0.01),
])
def test_the_mixture_is_the_integral_of_the_likelihood_ratio_over_the_prior(events, total, rate) -> None:
    a, b = prior(0.01, ALPHA)

    def ratio(q: float) -> float:  # the likelihood ratio of q against rate, weighted by the prior
        log_lr = events * (math.log(q) - math.log(rate)) + (total - events) * (
            math.log1p(-q) - math.log1p(-rate))
        return math.exp(log_lr) * stats.beta.pdf(q, a, b)

    # the prior's mass sits near 0 for a = t m < 1: integrate in pieces, finely near the ends
    cuts = [0.0, 1e-6, 1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5, 1.0]
    mixed = sum(integrate.quad(ratio, lo, hi, limit=200, epsabs=0, epsrel=1e-10)[0]
                for lo, hi in itertools.pairwise(cuts))
    assert log_mixture(events, total, rate, a, b) == pytest.approx(math.log(mixed), abs=1e-6)
    # and the closed form with scipy's beta function
    closed = (special.betaln(events + a, total - events + b) - special.betaln(a, b)
              - events * math.log(rate) - (total - events) * math.log1p(-rate))
    assert log_mixture(events, total, rate, a, b) == pytest.approx(closed, rel=1e-12, abs=1e-9)


def test_the_prior_is_centred_at_the_threshold_and_tuned_by_the_expected_events() -> None:
    a, b = prior(0.01, ALPHA)
    assert a / (a + b) == pytest.approx(0.01)
    log_term = -2 * math.log(ALPHA)
    assert a + b == pytest.approx(rate_bound.TUNING_EVENTS / 0.01 / (log_term + math.log(log_term + 1)) - 1)


@pytest.mark.parametrize("events", [0, 1, 2, 5])
@pytest.mark.parametrize("total", [50, 100, 500, 3000])
def test_the_bounds_are_where_the_mixture_reaches_one_over_alpha(events, total) -> None:
    b = bound(events, total, threshold=0.01, alpha=ALPHA)
    a_, b_ = prior(0.01, ALPHA)

    def excess(r: float) -> float:
        return (special.betaln(events + a_, total - events + b_) - special.betaln(a_, b_)
                - special.xlogy(events, r) - special.xlog1py(total - events, -r) - math.log(1 / ALPHA))

    estimate = events / total
    high = optimize.brentq(excess, estimate + 1e-15, 1 - 1e-15, xtol=1e-15)
    assert b.high == pytest.approx(high, rel=1e-9)
    if events == 0:
        assert b.low == 0.0
    else:
        low = optimize.brentq(excess, 1e-300, estimate, xtol=1e-300)
        assert b.low == pytest.approx(low, rel=1e-9)
        assert excess(b.low) >= -1e-9  # rounded outwards: on the edge or beyond
    assert excess(b.high) >= -1e-9


@pytest.mark.parametrize("events", [0, 1, 2])
@pytest.mark.parametrize("total", [50, 100, 500, 3000])
def test_the_always_valid_interval_holds_the_exact_fixed_sample_one(events, total) -> None:
    """Valid at every look, so at least as wide as the exact (Clopper-Pearson) one-sided
    bounds at the same alpha for one fixed look — and never collapsed at 0 events."""
    b = bound(events, total, threshold=0.01, alpha=ALPHA)
    cp_high = stats.beta.ppf(1 - ALPHA, events + 1, total - events)
    cp_low = stats.beta.ppf(ALPHA, events, total - events + 1) if events else 0.0
    assert b.high >= cp_high
    assert b.low <= cp_low
    assert b.high > events / total  # 0 errors in 50 requests does not show 0 %
    # the price of looking at any time, not a blow-up: within a factor of 2.2 at these counts
    assert b.high < 2.2 * cp_high


@functools.lru_cache(maxsize=8192)
def _above_and_below(n: int, threshold: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """For every event count 0..n after n trials: the rule says above / below the threshold
    (its own arithmetic, written again with scipy over arrays)."""
    a, b = prior(threshold, alpha)
    s = np.arange(n + 1, dtype=float)
    log_m = (special.betaln(s + a, n - s + b) - special.betaln(a, b)
             - s * math.log(threshold) - (n - s) * math.log1p(-threshold))
    decided = log_m >= math.log(1 / alpha)
    return decided & (s > n * threshold), decided & (s < n * threshold)


def _ever(true_rate: float, side: str, trials: int, threshold: float, alpha: float) -> float:
    """The exact chance that the rule says ``side`` at some look, with a look after every
    trial up to ``trials``: the event counts' distribution, the mass that crossed removed."""
    mass = np.zeros(trials + 2)
    mass[0] = 1.0
    crossed = 0.0
    for n in range(1, trials + 1):
        mass[1:n + 1] = mass[1:n + 1] * (1 - true_rate) + mass[0:n] * true_rate
        mass[0] *= 1 - true_rate
        above, below = _above_and_below(n, threshold, alpha)
        hit = above if side == "above" else below
        crossed += mass[:n + 1][hit].sum()
        mass[:n + 1][hit] = 0.0
    return crossed


@pytest.mark.parametrize(("threshold", "trials"), [(0.01, 3000), (0.05, 1500)])
def test_false_fail_and_false_pass_stay_within_alpha_however_often_one_looks(threshold, trials) -> None:
    alpha = 0.05
    at = _ever(threshold, "above", trials, threshold, alpha)
    assert at <= alpha
    assert _ever(threshold / 2, "above", trials, threshold, alpha) <= at  # healthier: rarer
    assert _ever(threshold, "below", trials, threshold, alpha) <= alpha
    # and the rule agrees with the module at a few points
    above, below = _above_and_below(400, threshold, alpha)
    for s in (0, 1, 2, 4, int(400 * threshold) + 5, 40, 100):
        got = bound(s, 400, threshold=threshold, alpha=alpha)
        assert (got.above, got.below) == (bool(above[s]), bool(below[s]))


def test_a_large_breach_fails_at_the_first_look_on_a_few_dozen_requests() -> None:
    # 20 % errors against a 1 % threshold: shown after 34 requests (7 errors)
    first = next(n for n in range(1, 1000) if bound(0.2 * n, n, threshold=0.01, alpha=ALPHA).above)
    assert first <= 40
    assert bound(8, 40, threshold=0.01, alpha=ALPHA).above


def test_a_healthy_rate_passes_once_the_count_shows_it() -> None:
    assert not bound(3, 1000, threshold=0.01, alpha=ALPHA).below  # 0.3 % on 1,000: not yet
    assert bound(6, 2000, threshold=0.01, alpha=ALPHA).below  # on 2,000: shown
    assert not bound(0, 100, threshold=0.01, alpha=ALPHA).below


@pytest.mark.parametrize(("events", "total", "why"), [
    (-1, 10, "events"), (1, -1, "total"), (float("nan"), 10, "events"), (True, 10, "events"),
    (0, 0, "no observations"), (11, 10, "11 events out of only 10"),
])
def test_bad_counts_raise_value_error(events, total, why) -> None:
    with pytest.raises(ValueError, match=why):
        bound(events, total, threshold=0.01, alpha=0.05)


@pytest.mark.parametrize(("threshold", "alpha"), [(0.0, 0.05), (1.0, 0.05), (0.01, 0.0), (0.01, 1.0)])
def test_bad_threshold_or_alpha_raise_value_error(threshold, alpha) -> None:
    with pytest.raises(ValueError):
        bound(1, 10, threshold=threshold, alpha=alpha)
