"""Sample-ratio mismatch, sequentially: does the split put the rollout's share in treatment?

The method is the anytime-valid multinomial test of Lindon and Malek, "Anytime-Valid
Inference for Multinomial Count Data", NeurIPS 2022 (arXiv:2011.03567): the sequential SRM
test of Optimizely (its ``ssrm`` package) and Eppo. For two cohorts the multinomial is a
binomial and the Dirichlet prior a beta: under the null hypothesis the treatment's share of
the assigned units is the expected ``q``; the alternative puts a Beta(k q, k (1 - q)) prior
on that share (centred on ``q``, concentration ``k``). With ``t`` treatment and ``c`` control
units assigned so far, the Bayes factor of the alternative against the null is

    BF = B(k q + t, k (1 - q) + c) / B(k q, k (1 - q))  /  ( q^t (1 - q)^c )

(B the beta function; the binomial coefficient is common to both and cancels). Under the
null, BF is a nonnegative martingale in the units as they arrive, starting at 1, so by
Ville's inequality P(BF ever reaches 1 / alpha) <= alpha: rejecting when BF >= 1 / alpha is
a test of level alpha however many times, and whenever, one looks. BF depends only on the
cumulative counts, so evaluating it on the counts a look sees is evaluating the martingale
at that moment; ``p = min(1, 1 / BF)`` is a valid p-value at any stopping time (Markov's
inequality), the "anytime-valid p-value" of the look.

``k`` tunes which deviations are found soonest and never affects validity: the prior's
spread is about sqrt(q (1 - q) / k), so the test is most sensitive once about ``k`` units have
been assigned. :data:`CONCENTRATION` = 100 is the default of the first author's reference
code (``dirichlet_alpha = 100 * assignment_probabilities``); Optimizely's ``ssrm`` defaults
to 10,000, for experiments with many visitors. Rollout steps see hundreds to thousands of
users, and k = 100 finds a gross mismatch (a cohort losing half its users) within a few
hundred assigned users.

The units must be independently assigned: users counted once each, not requests (a user's
requests share one assignment, and the test would take their clustering for a mismatch).
Counts may be fractional (Prometheus ``increase()`` extrapolates): the beta function is
computed with ``lgamma``. Pure arithmetic, stdlib only; bad input raises ValueError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The prior's concentration ``k`` (see the module's docstring): the test is most sensitive
#: around this many assigned units.
CONCENTRATION = 100.0


@dataclass(frozen=True, slots=True)
class SampleRatio:
    """One look of the sequential test."""

    observed_share: float  # treatment / (treatment + control), 0..1
    expected_share: float  # 0..1
    total: float  # treatment + control
    #: ln BF: the evidence for a mismatch, in nats (negative: the split looks as expected).
    log_bayes_factor: float

    @property
    def bayes_factor(self) -> float:
        """BF itself (``inf`` past the float range: overwhelming evidence)."""
        return math.exp(self.log_bayes_factor) if self.log_bayes_factor < 709.0 else math.inf

    @property
    def p_value(self) -> float:
        """The anytime-valid p-value of this look, min(1, 1 / BF)."""
        return 1.0 if self.log_bayes_factor <= 0 else math.exp(-self.log_bayes_factor)

    def mismatch(self, alpha: float) -> bool:
        """Whether BF >= 1 / ``alpha``: a mismatch at level ``alpha`` (compared in logs, so an
        overwhelming BF never overflows)."""
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha!r}")
        return self.log_bayes_factor >= -math.log(alpha)


def sample_ratio(treatment: float, control: float, expected_share: float, *,
                 concentration: float = CONCENTRATION) -> SampleRatio:
    """The sequential test of ``treatment : control`` assigned units against
    ``expected_share : 1 - expected_share``."""
    for name, x in (("treatment", treatment), ("control", control)):
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise ValueError(f"{name}: the count must be a finite number, not {x!r}")
        if x < 0:
            raise ValueError(f"{name}: the count is negative ({x:g})")
    if isinstance(expected_share, bool) or not isinstance(expected_share, int | float) \
            or not 0.0 < expected_share < 1.0:
        raise ValueError(f"the expected share must lie strictly between 0 and 1, not {expected_share!r}")
    if not (isinstance(concentration, int | float) and 0.0 < concentration < math.inf):
        raise ValueError(f"the concentration must be a positive number, not {concentration!r}")
    total = float(treatment) + float(control)
    if total <= 0:
        raise ValueError("no traffic in either cohort")
    if not math.isfinite(total):
        raise ValueError(f"the counts are too large to add up ({treatment:g} + {control:g})")
    return SampleRatio(treatment / total, float(expected_share), total,
                       log_bayes_factor(treatment, control, expected_share, concentration))


def log_bayes_factor(treatment: float, control: float, q: float, k: float) -> float:
    """ln BF of a Beta(k q, k (1 - q)) alternative against the share ``q`` (counts >= 0)."""
    a, b = k * q, k * (1.0 - q)
    return (_log_beta(a + treatment, b + control) - _log_beta(a, b)
            - _xlogy(treatment, q) - _xlogy(control, 1.0 - q))


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _xlogy(x: float, y: float) -> float:
    """x ln y, 0 when x is 0 (no units of that cohort contribute nothing)."""
    return 0.0 if x == 0 else x * math.log(y)


__all__ = ["CONCENTRATION", "SampleRatio", "log_bayes_factor", "sample_ratio"]
