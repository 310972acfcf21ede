"""The sample-ratio mismatch test (runner/gates/stats/srm.py) against scipy's chi-square."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats

from runner.gates.stats.srm import MIN_EXPECTED, chi2_1_sf, sample_ratio


@pytest.mark.parametrize(("treatment", "control", "share"), [
    (500, 9500, 0.05),
    (560, 9440, 0.05),  # a little high
    (800, 9200, 0.05),  # broken
    (5012.5, 4987.25, 0.5),  # fractional, from increase()
    (2, 1998, 0.01),
    (30000, 10000, 0.75),
    (1, 0, 0.5),
])
def test_statistic_and_p_value_match_scipy(treatment: float, control: float, share: float) -> None:
    total = treatment + control
    scipy_stat, scipy_p = stats.chisquare([treatment, control],
                                                     [share * total, (1 - share) * total])
    got = sample_ratio(treatment, control, share)
    assert got.statistic == pytest.approx(scipy_stat, rel=1e-9, abs=1e-12)
    assert got.p_value == pytest.approx(scipy_p, rel=1e-9, abs=1e-300)
    assert got.observed_share == pytest.approx(treatment / total)
    assert got.expected_share == share
    assert got.total == total


def test_the_p_value_is_the_chi_square_one_degree_survival_function() -> None:
    for x in np.concatenate([np.linspace(0, 40, 81), [1e-9, 3.84145882, 10.8275662, 100.0]]):
        assert chi2_1_sf(float(x)) == pytest.approx(stats.chi2.sf(x, 1), rel=1e-9, abs=1e-300)
    # the two thresholds people know: 3.84 is p = 0.05, 10.83 is p = 0.001
    assert chi2_1_sf(3.841458820694124) == pytest.approx(0.05)
    assert chi2_1_sf(10.827566170662733) == pytest.approx(0.001)
    assert chi2_1_sf(-1.0) == 1.0


def test_an_exact_split_has_no_evidence_of_mismatch() -> None:
    got = sample_ratio(250, 4750, 0.05)
    assert got.statistic == pytest.approx(0.0, abs=1e-12)
    assert got.p_value == pytest.approx(1.0)


def test_a_broken_split_is_far_below_the_usual_threshold() -> None:
    # 7.5 % observed where 5 % is expected, on 10,000: chi-square 131.6
    got = sample_ratio(750, 9250, 0.05)
    assert got.observed_share == 0.075
    assert got.p_value < 1e-20


def test_enough_traffic_means_five_expected_in_each_cell() -> None:
    assert MIN_EXPECTED == 5
    assert not sample_ratio(3, 96, 0.05).enough  # 4.95 expected in treatment
    assert sample_ratio(3, 97, 0.05).enough  # 5
    assert not sample_ratio(96, 3, 0.95).enough  # the other cell


@pytest.mark.parametrize(("args", "message"), [
    ((-1, 10, 0.5), "treatment: the count is negative"),
    ((1, float("nan"), 0.5), "control: the count must be a finite number, not nan"),
    ((None, 1, 0.5), "treatment: the count must be a finite number, not None"),
    ((0, 0, 0.5), "no traffic in either cohort"),
    ((1, 1, 0.0), "the expected share must lie strictly between 0 and 1"),
    ((1, 1, 1.0), "the expected share must lie strictly between 0 and 1"),
])
def test_bad_input_is_refused_with_a_sentence(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        sample_ratio(*args)
