"""An always-valid confidence sequence for the difference of two proportions, p_t - p_c.

The method is the *asymptotic confidence sequence* (normal mixture boundary) of
Waudby-Smith, Arnold, Wu and Ramdas, "Time-uniform central limit theory and asymptotic
confidence sequences", Annals of Statistics 52(6), 2024 (arXiv:2103.06476): for n
observations with a consistent estimate of the per-observation variance s², the interval

    estimate ± s · sqrt( 2 (n rho² + 1) / (n² rho²) · ln( sqrt(n rho² + 1) / alpha ) )   (eq. 9)

covers the true value at every n at once with probability tending to 1 - alpha — a peek at any
time, as often as one likes, keeps the error rate (for large n). rho > 0 is a tuning
parameter that does not affect validity, only where the boundary is tightest; choosing

    rho = sqrt( (-2 ln alpha + ln(-2 ln alpha + 1)) / N* )   (eq. 161)

makes it tightest near n = N*. A one-sided bound (only ``estimate - radius`` or only
``estimate + radius`` is claimed, each valid at 1 - alpha) is narrower (eq. 134):

    s · sqrt( 2 (n rho² + 1) / (n² rho²) · ln( 1 + sqrt(n rho² + 1) / (2 alpha) ) ),

with rho from eq. 161 at 2 alpha. These are the boundaries of GrowthBook's sequential
testing; its safe rollouts use the one-sided ones (``gbstats/frequentist/tests.py``:
``sequential_interval_halfwidth``, ``sequential_interval_halfwidth_one_sided`` and
``sequential_rho``, with N* as "sequential tuning parameter", default 5000).

For two cohorts with n_t and n_c requests and n = n_t + n_c, the per-observation variance is
s² = n · SE², SE² = p_t (1 - p_t) / n_t + p_c (1 - p_c) / n_c (the inverse-propensity form of
a difference in means under a fixed split, as GrowthBook computes it), so the radius is

    SE · sqrt( 2 (n rho² + 1) / (n rho²) · ln( sqrt(n rho² + 1) / alpha ) ).

SE uses add-one proportions (x + 1) / (n + 2) per cohort (Agresti & Caffo, 2000): a cohort
that has seen no error yet still has a positive variance, so the interval never collapses
to a point at zero on a handful of requests. The estimate itself is the plain difference.

Given the ``margin`` delta the bounds are compared with, SE is instead the larger of that
and the standard error *under the null at the margin* (p_t - p_c = delta: Farrington and
Manning's restricted MLE, :mod:`runner.gates.stats.restricted`). Each bound is then valid
for the question at the margin at small counts too: the null variance keeps ``high`` from
collapsing when treatment has seen 0, 1 or 2 events (where the observed variance "shows"
treatment no worse than the margin on evidence that cannot), and the observed one keeps
``low`` from being too tight when treatment has more events than the null expects (the
binomial's right skew). Taking the larger of two consistent estimates only widens the
bounds: the guarantee stays, at the cost of some speed.

Counts may be fractional (Prometheus ``increase()`` extrapolates). Pure arithmetic, stdlib
only; bad input raises :class:`ValueError` with a sentence saying which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from runner.gates.stats.restricted import null_std_error

#: GrowthBook's default tuning parameter N* (observations at which the boundary is tightest).
DEFAULT_TUNING = 5000.0


@dataclass(frozen=True, slots=True)
class Interval:
    """An always-valid interval of p_t - p_c, in proportions (0.01 is one percentage point)."""

    estimate: float
    low: float
    high: float
    #: The half-width: ``estimate ± radius``.
    radius: float
    #: The miscoverage the interval was built for: of the whole interval (two-sided), or
    #: of each bound on its own (one-sided).
    alpha: float
    one_sided: bool = False
    #: The margin whose null the standard error also covers (see the module); None: none.
    margin: float | None = None


def _check_alpha(alpha: float) -> None:
    if not (isinstance(alpha, int | float) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be a number strictly between 0 and 1, not {alpha!r}")


def mixture_rho(alpha: float, tuning: float = DEFAULT_TUNING, *, one_sided: bool = False) -> float:
    """The mixture parameter rho that makes the boundary tightest at ``tuning``
    observations (eq. 161 of Waudby-Smith et al.; at 2 alpha for a one-sided bound)."""
    _check_alpha(alpha)
    if isinstance(tuning, bool) or not isinstance(tuning, int | float) or not (
            math.isfinite(tuning) and tuning > 0):
        raise ValueError(f"the tuning parameter must be a positive number, not {tuning!r}")
    if one_sided and alpha >= 0.5:
        raise ValueError(f"a one-sided bound needs alpha below 0.5, not {alpha!r}")
    log_term = -2.0 * math.log(2.0 * alpha if one_sided else alpha)
    return math.sqrt((log_term + math.log(log_term + 1.0)) / tuning)


def boundary(n: float, alpha: float, rho: float, *, one_sided: bool = False) -> float:
    """The radius in units of the standard error of the estimate, at n observations:
    ``sqrt(2 (n rho² + 1) / (n rho²) · ln(sqrt(n rho² + 1) / alpha))``, or one-sided
    ``sqrt(2 (n rho² + 1) / (n rho²) · ln(1 + sqrt(n rho² + 1) / (2 alpha)))``."""
    _check_alpha(alpha)
    if not (math.isfinite(n) and n > 0):
        raise ValueError(f"the number of observations must be positive, not {n!r}")
    if not (math.isfinite(rho) and rho > 0):
        raise ValueError(f"rho must be a positive number, not {rho!r}")
    v = n * rho * rho
    if one_sided:
        return math.sqrt(2.0 * (v + 1.0) / v * math.log(1.0 + math.sqrt(v + 1.0) / (2.0 * alpha)))
    return math.sqrt(2.0 * (v + 1.0) / v * math.log(math.sqrt(v + 1.0) / alpha))


def _check_counts(events: float, total: float, cohort: str) -> None:
    for name, x in (("events", events), ("total", total)):
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise ValueError(f"{cohort}: {name} must be a finite number, not {x!r}")
        if x < 0:
            raise ValueError(f"{cohort}: {name} is negative ({x:g})")
    if total <= 0:
        raise ValueError(f"{cohort}: no observations")
    if events > total:
        raise ValueError(f"{cohort}: {events:g} events out of only {total:g} observations")


def difference(t_events: float, t_total: float, c_events: float, c_total: float, *,
               alpha: float, tuning: float = DEFAULT_TUNING, one_sided: bool = False,
               margin: float | None = None) -> Interval:
    """The (1 - alpha) asymptotic confidence sequence of p_t - p_c at the current counts
    (cumulative since the sequence started: the same sequence at a later look has larger
    counts). ``one_sided``: ``low`` and ``high`` are each a (1 - alpha) one-sided bound (the
    pair is a (1 - 2 alpha) interval). ``margin`` (a difference of proportions, -1 <= margin
    <= 1): the bounds are for comparing with it, and their standard error covers the null at
    it too (see the module)."""
    _check_counts(t_events, t_total, "treatment")
    _check_counts(c_events, c_total, "control")
    rho = mixture_rho(alpha, tuning, one_sided=one_sided)
    estimate = t_events / t_total - c_events / c_total
    se = std_error(t_events, t_total, c_events, c_total)
    if margin is not None:
        se = max(se, null_std_error(t_events, t_total, c_events, c_total, margin))
    r = se * boundary(t_total + c_total, alpha, rho, one_sided=one_sided)
    return Interval(estimate, estimate - r, estimate + r, r, alpha, one_sided, margin)


def std_error(t_events: float, t_total: float, c_events: float, c_total: float) -> float:
    """The standard error of p_t - p_c, from add-one proportions (never zero)."""
    pt = (t_events + 1.0) / (t_total + 2.0)
    pc = (c_events + 1.0) / (c_total + 2.0)
    return math.sqrt(pt * (1.0 - pt) / t_total + pc * (1.0 - pc) / c_total)


__all__ = ["DEFAULT_TUNING", "Interval", "boundary", "difference", "mixture_rho", "std_error"]
