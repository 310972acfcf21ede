"""The always-valid confidence sequence of p_t - p_c (runner/gates/stats/sequential.py):
values derived by hand and with scipy, its coverage under repeated looks in a seeded
simulation, and its refusal of bad counts."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
from scipy import stats

from runner.gates.stats.sequential import DEFAULT_TUNING, boundary, difference, mixture_rho, std_error


def test_rho_is_the_mixture_parameter_tightest_at_the_tuning_parameter() -> None:
    # eq. 161, alpha 0.05, N* 5000 (GrowthBook's defaults), by hand:
    # -2 ln 0.05 = 5.991465; ln(5.991465 + 1) = 1.944690; sqrt(7.936155 / 5000) = 0.0398401
    assert mixture_rho(0.05, 5000) == pytest.approx(0.0398401, rel=1e-5)
    assert DEFAULT_TUNING == 5000
    # one-sided: the same at 2 alpha
    assert mixture_rho(0.05, 5000, one_sided=True) == pytest.approx(mixture_rho(0.10, 5000))
    # and the boundary is indeed narrowest near n = N*
    rho = mixture_rho(0.05, 20000)
    ns = np.geomspace(1000, 400000, 400)
    widths = [boundary(float(n), 0.05, rho) * math.sqrt(1 / n) for n in ns]  # radius for s = 1
    per_n = [boundary(float(n), 0.05, rho) for n in ns]
    assert 10000 < ns[int(np.argmin(per_n))] < 40000
    assert all(a > b for a, b in itertools.pairwise(widths))  # the radius shrinks


def test_boundary_by_hand() -> None:
    # n rho² = 10000 x 0.04² = 16: sqrt(17) / 0.05 = 82.46211, ln = 4.412339,
    # 2 x 17 / 16 = 2.125, sqrt(2.125 x 4.412339) = 3.062061
    assert boundary(10000, 0.05, 0.04) == pytest.approx(3.062061, rel=1e-6)
    # one-sided (eq. 134): ln(1 + 4.1231056 / 0.1) = 3.743156, sqrt(2.125 x 3.743156) = 2.820320
    assert boundary(10000, 0.05, 0.04, one_sided=True) == pytest.approx(2.820320, rel=1e-6)


def test_the_interval_is_the_published_halfwidth_of_the_difference() -> None:
    """GrowthBook's form, transcribed independently: halfwidth = sqrt(s2) · sqrt(2 (n rho² + 1)
    ln(sqrt(n rho² + 1) / alpha) / (n rho)²) with s2 = n · SE² and n = n_t + n_c."""
    t_e, t_n, c_e, c_n, alpha, n_star = 42.0, 3000.0, 171.0, 57000.0, 0.01, 20000.0
    iv = difference(t_e, t_n, c_e, c_n, alpha=alpha, tuning=n_star)
    pt, pc = (t_e + 1) / (t_n + 2), (c_e + 1) / (c_n + 2)
    se2 = pt * (1 - pt) / t_n + pc * (1 - pc) / c_n
    n = t_n + c_n
    rho = np.sqrt((-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / n_star)
    half = np.sqrt(n * se2) * np.sqrt(2 * (n * rho**2 + 1) * np.log(np.sqrt(n * rho**2 + 1) / alpha)
                                      / (n * rho) ** 2)
    assert iv.estimate == pytest.approx(t_e / t_n - c_e / c_n)
    assert iv.radius == pytest.approx(float(half), rel=1e-12)
    assert (iv.low, iv.high) == pytest.approx((iv.estimate - half, iv.estimate + half))
    assert iv.alpha == alpha and not iv.one_sided


def test_always_valid_is_wider_than_a_fixed_sample_interval() -> None:
    # the price of looking at any time: the boundary exceeds the normal quantile everywhere
    for alpha in (0.05, 0.01, 0.001):
        z2 = stats.norm.ppf(1 - alpha / 2)
        z1 = stats.norm.ppf(1 - alpha)
        rho2, rho1 = mixture_rho(alpha, 5000), mixture_rho(alpha, 5000, one_sided=True)
        for n in (10, 100, 5000, 10**6, 10**9):
            assert boundary(n, alpha, rho2) > z2
            assert boundary(n, alpha, rho1, one_sided=True) > z1
            if n >= 100:  # far below N* the two rhos differ enough to swap them
                assert boundary(n, alpha, rho1, one_sided=True) < boundary(n, alpha, rho2)
        # but not absurdly: near N*, within 60 % of the fixed-sample quantile
        assert boundary(5000, alpha, rho2) < 1.6 * z2


def test_more_data_narrows_the_interval() -> None:
    radii = [difference(0.01 * k, k, 0.01 * 19 * k, 19 * k, alpha=0.01, tuning=20000).radius
             for k in (500, 1000, 5000, 50000, 500000)]
    assert all(a > b for a, b in itertools.pairwise(radii))


def test_no_events_yet_still_leaves_an_interval() -> None:
    iv = difference(0, 600, 0, 11400, alpha=0.01)
    assert iv.estimate == 0
    assert iv.low < 0 < iv.high
    assert std_error(0, 600, 0, 11400) > 0


def test_fractional_counts_from_prometheus_increase() -> None:
    iv = difference(12.4, 3001.7, 170.9, 57011.2, alpha=0.01)
    assert iv.estimate == pytest.approx(12.4 / 3001.7 - 170.9 / 57011.2)
    assert iv.low < iv.estimate < iv.high


def _miscoverage(alpha: float, radius_of: str, sims: int = 2000, looks: int = 40) -> tuple[float, float]:
    """Seeded simulation: treatment 10 % of 2,000 requests per look, p_t = 1.2 %, p_c = 1 %,
    cumulative counts, ``looks`` looks. The share of runs whose interval misses the truth at
    any look (two-sided), and whose lower bound ever exceeds it (one-sided)."""
    rng = np.random.default_rng(20261202)
    pt, pc, truth = 0.012, 0.010, 0.002
    n_t = rng.binomial(2000, 0.10, size=(sims, looks))
    n_c = 2000 - n_t
    e_t = rng.binomial(n_t, pt)
    e_c = rng.binomial(n_c, pc)
    nt, nc, et, ec = (np.cumsum(a, axis=1).astype(float).tolist() for a in (n_t, n_c, e_t, e_c))
    ever_out = np.zeros(sims, dtype=bool)
    ever_low = np.zeros(sims, dtype=bool)
    z2, z1 = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(1 - alpha)
    for k in range(looks):
        for i in range(sims):
            if radius_of == "sequence":
                iv = difference(et[i][k], nt[i][k], ec[i][k], nc[i][k], alpha=alpha, tuning=20000)
                one = difference(et[i][k], nt[i][k], ec[i][k], nc[i][k], alpha=alpha, tuning=20000,
                                 one_sided=True)
                lo2, hi2, lo1 = iv.low, iv.high, one.low
            else:  # the fixed-sample interval, peeked at every look
                est = et[i][k] / nt[i][k] - ec[i][k] / nc[i][k]
                se = std_error(et[i][k], nt[i][k], ec[i][k], nc[i][k])
                lo2, hi2, lo1 = est - z2 * se, est + z2 * se, est - z1 * se
            ever_out[i] |= not (lo2 <= truth <= hi2)
            ever_low[i] |= lo1 > truth
    return float(ever_out.mean()), float(ever_low.mean())


def test_covers_the_truth_under_repeated_looks() -> None:
    two_sided, one_sided = _miscoverage(0.05, "sequence")
    assert two_sided <= 0.05
    assert one_sided <= 0.05


def test_a_fixed_sample_interval_peeked_at_does_not() -> None:
    # what the sequence is for: the same simulation with z-intervals misses far more often
    two_sided, one_sided = _miscoverage(0.05, "fixed", sims=1000)
    assert two_sided > 0.12
    assert one_sided > 0.08


@pytest.mark.parametrize(("args", "message"), [
    ((-1, 100, 1, 100), "treatment: events is negative"),
    ((1, 100, 1, -5), "control: total is negative"),
    ((5, 0, 1, 100), "treatment: no observations"),
    ((0, 0, 0, 0), "treatment: no observations"),
    ((101, 100, 1, 100), "treatment: 101 events out of only 100 observations"),
    ((float("nan"), 100, 1, 100), "treatment: events must be a finite number, not nan"),
    ((1, 100, 1, float("inf")), "control: total must be a finite number, not inf"),
    ((True, 100, 1, 100), "treatment: events must be a finite number, not True"),
    (("3", 100, 1, 100), "treatment: events must be a finite number, not '3'"),
])
def test_bad_counts_are_refused_with_a_sentence(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        difference(*args, alpha=0.05)


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5, float("nan")])
def test_alpha_outside_zero_one_is_refused(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha must be a number strictly between 0 and 1"):
        difference(1, 100, 1, 100, alpha=alpha)


def test_other_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="tuning parameter must be a positive number"):
        mixture_rho(0.05, 0)
    with pytest.raises(ValueError, match=r"one-sided bound needs alpha below 0\.5"):
        mixture_rho(0.6, 100, one_sided=True)
    with pytest.raises(ValueError, match="number of observations must be positive"):
        boundary(0, 0.05, 0.1)
    with pytest.raises(ValueError, match="rho must be a positive number"):
        boundary(10, 0.05, float("nan"))
