"""The sequential sample-ratio test (runner/gates/stats/srm.py): its Bayes factor against
scipy's beta-binomial and binomial, and its level under many looks in a seeded simulation."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import special, stats

from runner.gates.stats.srm import CONCENTRATION, log_bayes_factor, sample_ratio


def scipy_log_bf(t: float, c: float, q: float, k: float = CONCENTRATION) -> float:
    """ln BF computed independently: beta-binomial marginal over the binomial likelihood
    (integer counts: the binomial coefficient cancels)."""
    n = t + c
    return float(stats.betabinom.logpmf(t, n, k * q, k * (1 - q)) - stats.binom.logpmf(t, n, q))


@pytest.mark.parametrize(("treatment", "control", "share"), [
    (500, 9500, 0.05),  # exactly the split
    (560, 9440, 0.05),  # a little high
    (750, 9250, 0.05),  # broken: 7.5 % where 5 %
    (0, 600, 0.05),  # treatment lost entirely
    (2, 1998, 0.01),
    (30000, 10000, 0.75),
    (1, 0, 0.5),
    (0, 1, 0.001),
    (48, 52, 0.5),
])
def test_the_bayes_factor_matches_the_beta_binomial_over_the_binomial(
        treatment: int, control: int, share: float) -> None:
    got = sample_ratio(treatment, control, share)
    assert got.log_bayes_factor == pytest.approx(scipy_log_bf(treatment, control, share),
                                                 rel=1e-9, abs=1e-9)
    assert got.observed_share == pytest.approx(treatment / (treatment + control))
    assert got.expected_share == share and got.total == treatment + control


@pytest.mark.parametrize(("treatment", "control", "share", "k"), [
    (5012.5, 4987.25, 0.5, 100.0),  # fractional, from increase()
    (31.7, 568.4, 0.05, 100.0),
    (1e9 * 0.05, 1e9 * 0.95, 0.05, 100.0),  # a billion users: lgamma stays exact enough
    (120.0, 880.0, 0.1, 10_000.0),  # Optimizely's default concentration
])
def test_fractional_counts_match_scipy_betaln(treatment: float, control: float, share: float,
                                              k: float) -> None:
    expected = (special.betaln(k * share + treatment, k * (1 - share) + control)
                - special.betaln(k * share, k * (1 - share))
                - special.xlogy(treatment, share) - special.xlogy(control, 1 - share))
    assert log_bayes_factor(treatment, control, share, k) == pytest.approx(expected, rel=1e-9,
                                                                           abs=1e-6)


def test_the_p_value_is_one_over_the_bayes_factor_and_the_rule_is_bf_at_least_one_over_alpha() -> None:
    broken = sample_ratio(750, 9250, 0.05)
    assert broken.log_bayes_factor > 50
    assert broken.p_value == pytest.approx(1 / broken.bayes_factor)
    assert broken.mismatch(1e-6) and broken.mismatch(0.001)
    exact = sample_ratio(500, 9500, 0.05)
    assert exact.log_bayes_factor < 0  # the data favours the expected split
    assert exact.p_value == 1.0 and not exact.mismatch(0.5)
    # the boundary: BF = 1/alpha is a mismatch (Ville's inequality: P(sup BF >= 1/alpha) <= alpha)
    alpha = math.exp(-broken.log_bayes_factor)
    assert broken.mismatch(alpha) and not broken.mismatch(alpha / 1.0001)


def test_overwhelming_evidence_never_overflows() -> None:
    got = sample_ratio(10**9, 10**9, 0.01)
    assert got.log_bayes_factor > 1e8
    assert got.bayes_factor == math.inf and got.p_value == 0.0 and got.mismatch(1e-12)


def test_the_concentration_tunes_power_not_validity() -> None:
    # a treatment that lost every user of 600 at 5 %: found at once with k = 100, not yet
    # with Optimizely's 10,000 (the prior then sits within 0.2 pp of 5 %)
    assert sample_ratio(0, 600, 0.05).mismatch(0.0002)
    assert not sample_ratio(0, 600, 0.05, concentration=10_000).mismatch(0.0002)


@pytest.mark.parametrize(("args", "message"), [
    ((-1, 10, 0.5), "treatment: the count is negative"),
    ((1, float("nan"), 0.5), "control: the count must be a finite number, not nan"),
    ((None, 1, 0.5), "treatment: the count must be a finite number, not None"),
    ((True, 1, 0.5), "treatment: the count must be a finite number, not True"),
    ((0, 0, 0.5), "no traffic in either cohort"),
    ((1, 1, 0.0), "the expected share must lie strictly between 0 and 1"),
    ((1, 1, 1.0), "the expected share must lie strictly between 0 and 1"),
    ((1e308, 1e308, 0.5), "the counts are too large to add up"),
])
def test_bad_input_is_refused_with_a_sentence(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        sample_ratio(*args)


def test_a_bad_alpha_or_concentration_is_refused() -> None:
    with pytest.raises(ValueError, match="alpha must lie strictly between 0 and 1"):
        sample_ratio(1, 1, 0.5).mismatch(0)
    with pytest.raises(ValueError, match="the concentration must be a positive number"):
        sample_ratio(1, 1, 0.5, concentration=0)


# --- the level under many looks (seeded) ------------------------------------------------------


def false_alarms(users_per_look: int, looks: int, runs: int, alpha: float, seed: int,
                 share: float = 0.05) -> tuple[float, float]:
    """The share of healthy runs (users assigned at exactly ``share``) the sequential test
    ever flags over ``looks`` looks, and the share a chi-square at p < alpha flags."""
    rng = np.random.default_rng(seed)
    treatment = rng.binomial(users_per_look, share, size=(runs, looks)).cumsum(axis=1)
    total = users_per_look * np.arange(1, looks + 1)
    flagged = flagged_fixed = 0
    for run in range(runs):
        row = treatment[run]
        flagged += any(sample_ratio(int(t), int(n - t), share).mismatch(alpha)
                       for t, n in zip(row, total, strict=True))
        expected = share * total
        chi2 = (row - expected) ** 2 / expected + (row - expected) ** 2 / (total - expected)
        flagged_fixed += bool((stats.chi2.sf(chi2, 1) < alpha).any())
    return flagged / runs, flagged_fixed / runs


@pytest.mark.parametrize(("users_an_hour", "name"), [(6000, "1-minute looks at 6,000 users an hour"),
                                                     (600, "1-minute looks at 600 users an hour")])
def test_the_false_alarm_rate_stays_under_the_level_however_many_looks(users_an_hour: int,
                                                                       name: str) -> None:
    """A 3-hour step at 5 %, a look every minute (180 looks), 1,000 healthy runs: the test at
    alpha = 5 % flags at most 5 % of them (Ville's inequality), a chi-square at p < 5 % at
    every look many more (what a fixed test looked at often does)."""
    alpha = 0.05
    sequential, fixed = false_alarms(users_an_hour // 60, 180, 1000, alpha, seed=users_an_hour)
    assert sequential <= alpha, name
    assert fixed > 2 * alpha, name  # the simulation can tell


def test_a_broken_split_is_found_within_the_step() -> None:
    """The same simulation with treatment getting 3.5 % of the users instead of 5 %, at
    6,000 users an hour: found in every run within the 3 hours at the runner's per-step level."""
    rng = np.random.default_rng(7)
    treatment = rng.binomial(100, 0.035, size=(50, 180)).cumsum(axis=1)
    total = 100 * np.arange(1, 181)
    found = [next((i for i, (t, n) in enumerate(zip(row, total, strict=True))
                   if sample_ratio(int(t), int(n - t), 0.05).mismatch(0.0002)), None)
             for row in treatment]
    assert all(i is not None for i in found)
