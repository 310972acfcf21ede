"""The variance of p_t - p_c under the null at a margin: Farrington and Manning's restricted MLE.

A test of ``H0: p_t - p_c = delta`` (the boundary of both of the comparison's questions,
"worse by more than the margin?" and "not worse by more than the margin?") needs the
variance of the observed difference *where the null puts it*, not where the data happens to
be: with 0 or 1 errors in treatment the observed variance is near zero, and an interval
built on it "shows" treatment no worse than the margin on evidence that cannot show it.

The restricted maximum-likelihood estimates ``(p̃_t, p̃_c)`` maximise the two binomial
likelihoods subject to ``p̃_t - p̃_c = delta``; they are the root of a cubic with the closed
form of Farrington & Manning, "Test statistics and sample size formulae for comparative
binomial trials with null hypothesis of non-zero risk difference or non-unity relative
risk", Statistics in Medicine 9(12), 1990, pp. 1447-1454 (the estimates of Miettinen &
Nurminen, "Comparative analysis of two rates", Statistics in Medicine 4(2), 1985, whose
score statistic also multiplies the variance by n / (n - 1); Farrington and Manning, and
the runner, leave that factor out). With ``theta = n_c / n_t``:

    a = 1 + theta
    b = -(1 + theta + p̂_t + theta p̂_c + delta (theta + 2))
    c = delta² + delta (2 p̂_t + theta + 1) + p̂_t + theta p̂_c
    d = -p̂_t delta (1 + delta)
    v = b³ / (27 a³) - b c / (6 a²) + d / (2 a)
    u = sign(v) sqrt( b² / (9 a²) - c / (3 a) )
    w = (pi + arccos(v / u³)) / 3
    p̃_t = 2 u cos(w) - b / (3 a),   p̃_c = p̃_t - delta

and the variance ``p̃_t (1 - p̃_t) / n_t + p̃_c (1 - p̃_c) / n_c``. Pure arithmetic, stdlib only.
"""

from __future__ import annotations

import math


def restricted_rates(t_events: float, t_total: float, c_events: float, c_total: float,
                     delta: float) -> tuple[float, float]:
    """``(p̃_t, p̃_c)``: the maximum-likelihood rates with ``p̃_t - p̃_c = delta``.

    Counts as :func:`runner.gates.stats.sequential.difference` checks them (totals > 0,
    0 <= events <= total); ``-1 <= delta <= 1``. Raises ValueError otherwise."""
    if not (t_total > 0 and c_total > 0):
        raise ValueError("each cohort needs observations")
    if not (0 <= t_events <= t_total and 0 <= c_events <= c_total):
        raise ValueError("events must lie between 0 and the total")
    if not (math.isfinite(delta) and -1.0 <= delta <= 1.0):
        raise ValueError(f"the margin must lie between -1 and 1, not {delta!r}")
    if abs(delta) == 1.0:  # a margin of 100 points: the only rates that differ by it
        return (1.0, 0.0) if delta > 0 else (0.0, 1.0)
    pt, pc = t_events / t_total, c_events / c_total
    theta = c_total / t_total
    a = 1.0 + theta
    b = -(1.0 + theta + pt + theta * pc + delta * (theta + 2.0))
    c = delta * delta + delta * (2.0 * pt + theta + 1.0) + pt + theta * pc
    d = -pt * delta * (1.0 + delta)
    v = b ** 3 / (27.0 * a ** 3) - b * c / (6.0 * a * a) + d / (2.0 * a)
    u = math.copysign(math.sqrt(max(b * b / (9.0 * a * a) - c / (3.0 * a), 0.0)), v)
    # u = 0 only when the cubic has a triple root: -b / (3 a) is then the estimate
    cosine = 1.0 if u == 0 else max(-1.0, min(1.0, v / u ** 3))
    w = (math.pi + math.acos(cosine)) / 3.0
    p_t = 2.0 * u * math.cos(w) - b / (3.0 * a)
    # rounding can leave the root a hair outside the parameter space
    p_t = min(max(p_t, max(0.0, delta)), min(1.0, 1.0 + delta))
    return p_t, min(max(p_t - delta, 0.0), 1.0)


def null_std_error(t_events: float, t_total: float, c_events: float, c_total: float,
                   delta: float) -> float:
    """The standard error of p_t - p_c at the restricted estimates (0 when both are 0 or 1:
    no events at all and ``delta`` 0, say)."""
    p_t, p_c = restricted_rates(t_events, t_total, c_events, c_total, delta)
    return math.sqrt(p_t * (1.0 - p_t) / t_total + p_c * (1.0 - p_c) / c_total)


__all__ = ["null_std_error", "restricted_rates"]
