"""Sample-ratio mismatch: is the treatment's share of split-assigned traffic the rollout's?

Pearson's chi-square goodness of fit with one degree of freedom, of the treatment and
control counts against the expected shares ``q`` and ``1 - q`` (``q`` = percentage / 100):

    X² = (t - q N)² / (q N) + (c - (1 - q) N)² / ((1 - q) N),   N = t + c

and its p-value P(χ²₁ ≥ X²) = erfc(sqrt(X² / 2)). A tiny p-value (GrowthBook and the
experimentation literature use p < 0.001) says the assignment or the telemetry is broken:
the cohorts are not the random split they claim to be, and comparing them says nothing.

The approximation needs some traffic: :func:`enough` is False while either expected count
is below 5 (the usual rule for Pearson's test); a verdict on fewer is noise. Counts may be
fractional. Pure arithmetic, stdlib only; bad input raises :class:`ValueError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The smallest expected count in a cell for the chi-square approximation to be trusted.
MIN_EXPECTED = 5.0


@dataclass(frozen=True, slots=True)
class SampleRatio:
    observed_share: float  # treatment / (treatment + control), 0..1
    expected_share: float  # 0..1
    statistic: float  # X²
    p_value: float
    total: float

    @property
    def enough(self) -> bool:
        """Whether both expected counts reach :data:`MIN_EXPECTED`."""
        q = self.expected_share
        return min(q, 1.0 - q) * self.total >= MIN_EXPECTED


def sample_ratio(treatment: float, control: float, expected_share: float) -> SampleRatio:
    """The chi-square test of ``treatment : control`` against ``expected_share : 1 - it``."""
    for name, x in (("treatment", treatment), ("control", control)):
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise ValueError(f"{name}: the count must be a finite number, not {x!r}")
        if x < 0:
            raise ValueError(f"{name}: the count is negative ({x:g})")
    if not (isinstance(expected_share, int | float) and 0.0 < expected_share < 1.0):
        raise ValueError(f"the expected share must lie strictly between 0 and 1, not {expected_share!r}")
    total = treatment + control
    if total <= 0:
        raise ValueError("no traffic in either cohort")
    if not math.isfinite(total):
        raise ValueError(f"the counts are too large to add up ({treatment:g} + {control:g})")
    q = float(expected_share)
    et, ec = q * total, (1.0 - q) * total
    # (x - e) / e first: the square of a huge difference alone would overflow
    stat = (treatment - et) * ((treatment - et) / et) + (control - ec) * ((control - ec) / ec)
    return SampleRatio(treatment / total, q, stat, chi2_1_sf(stat), total)


def chi2_1_sf(x: float) -> float:
    """P(χ² with one degree of freedom ≥ x) = erfc(sqrt(x / 2))."""
    if x <= 0:
        return 1.0
    return math.erfc(math.sqrt(x / 2.0))


__all__ = ["MIN_EXPECTED", "SampleRatio", "chi2_1_sf", "sample_ratio"]
