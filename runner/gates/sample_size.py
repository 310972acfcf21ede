"""How many requests a comparison gate needs at a step before it decides, found by asking the gate.

Pure: a plan's comparison, a step's percentage and the planning assumptions in, request
counts out. Nothing here restates the statistics: every candidate sample is judged by
:func:`runner.gates.compare.compare_cohorts` itself, the function the runner decides with
(its bounds, its ``alpha`` from ``look_alpha``, its ``min_requests``), so the answer follows
any change made there.

**Planning a step** (:func:`comparison_need`). With n requests over both cohorts at the
step's share q (treatment q·n, control (1 - q)·n), control's rate p_c (the baseline) and
treatment's p_t = p_c + the true increase (0 for a healthy feature), the observed difference
d̂ is about normal around p_t - p_c with standard deviation

    sd(n) = sqrt( p_t (1 - p_t) / (q n) + p_c (1 - p_c) / ((1 - q) n) ).

The gate *passes* at n with probability ``power`` when it passes on the counts whose d̂ sits
``z = Φ⁻¹(power)`` standard deviations on the unfavourable side (d̂ = p_t - p_c + z·sd), and
*fails* a regression with probability ``power`` when it fails on d̂ = p_t - p_c - z·sd. The
needed n is the smallest for which that holds: found by doubling, then bisection, on the
gate's verdict (the always-valid radius shrinks as n grows, so the verdict, once reached,
stays). This is the fixed-n power of the last look; the runner looks many times and stops at
the first decisive one, so the real chance of having decided by n is at least ``power``
(the seeded simulation of ``tests/gates/test_sample_size.py`` measures how much more).

**An inconclusive gate now** (:func:`distance_to_decide`). With the counts a step has
gathered, how many more requests until the gate decides if the observed rates hold: the
smallest factor k >= 1 for which the gate decides on every count times k.

**An absolute gate with a confidence** (:func:`rate_need`, :func:`rate_distance_to_decide`):
the same two questions of an ``error_rate`` gate with a ``confidence``, each candidate judged
by :func:`runner.gates.verdicts.judge_counts` (its always-valid bound, its budget split over
the plan's steps). Such a gate counts the flag's whole traffic, every variant, so n is the
flag's requests since the step started; the observed rate is taken ``z`` standard deviations
(sqrt(p (1 - p) / n)) on the unfavourable side of the true rate p.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import NormalDist

from runner.gates import compare, verdicts
from runner.gates.compare import CohortCounts
from runner.gates.readings import Reading, step_key
from runner.model import Comparison, Gate, MetricComparison, Verdict

#: The most requests (both cohorts together) a search tries: beyond it a gate never decides
#: in any rollout.
MAX_REQUESTS = 1e12
#: The bisection stops when the bracket is this close, relatively: well below what a plan
#: can promise about its traffic.
PRECISION = 1e-3
#: The results' time stamp: the verdict alone is read, and no clock is.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

PASS = "pass"
FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Need:
    """What one comparison needs at one step to reach ``outcome``."""

    gate: str  # compare.error_rate, compare.slow_rate
    #: ``pass``: a healthy treatment (no worse than control) passes; ``fail``: a treatment
    #: worse by ``treatment_rate - control_rate`` points is caught.
    outcome: str
    control_rate: float  # percent
    treatment_rate: float  # percent
    power: float
    #: Requests over both cohorts; None: the gate never reaches the outcome (a margin of 0 for
    #: a healthy feature, a regression no larger than the margin).
    requests: float | None
    #: Of those, the treatment's.
    treatment_requests: float | None

    def seconds(self, requests_per_hour: float) -> float | None:
        """How long the step takes to gather them at ``requests_per_hour`` (both cohorts)."""
        if self.requests is None or requests_per_hour <= 0:
            return None
        return self.requests / requests_per_hour * 3600.0


def smallest(decides: Callable[[float], bool], low: float, high: float = MAX_REQUESTS
             ) -> float | None:
    """The smallest n in [low, high] for which ``decides(n)`` (monotone: once true, true for
    every larger n), to :data:`PRECISION`, rounded up to a whole number; None when even
    ``high`` does not."""
    if decides(low):
        return math.ceil(low)
    lo, hi = low, low
    while not decides(hi):
        if hi >= high:
            return None
        lo, hi = hi, min(hi * 2.0, high)
    while hi - lo > PRECISION * hi:
        mid = (lo + hi) / 2.0
        if decides(mid):
            hi = mid
        else:
            lo = mid
    return math.ceil(hi)


def verdict(spec: Comparison, metric: MetricComparison, treatment: CohortCounts,
            control: CohortCounts, *, percentage: float, looks: int) -> Verdict:
    """The verdict the runner would give ``metric`` on these counts."""
    for r in compare.compare_cohorts(spec, treatment, control, percentage=percentage,
                                     looks=looks, now=_EPOCH):
        if r.name == metric.name:
            return r.verdict
    raise ValueError(f"{metric.name} is not compared at {percentage:g} %")


def _counts(requests: float, rate: float) -> CohortCounts:
    """A cohort whose ``rate`` (a proportion) of ``requests`` are errors and slow alike: each
    metric reads its own count, so one number serves both."""
    events = min(max(rate, 0.0), 1.0) * requests
    return CohortCounts(requests, events, events)


def comparison_need(spec: Comparison, metric: MetricComparison, *, percentage: float,
                    looks: int, control_rate: float, increase: float, outcome: str,
                    power: float) -> Need:
    """The requests (both cohorts) ``metric`` needs at a step of ``percentage`` to reach
    ``outcome`` with probability ``power``, when control's rate is ``control_rate`` percent
    and treatment's is ``increase`` points above it; ``looks`` as in ``compare_cohorts``."""
    if outcome not in (PASS, FAIL):
        raise ValueError(f"outcome must be {PASS!r} or {FAIL!r}, not {outcome!r}")
    if not 0 < percentage < 100:
        raise ValueError(f"a comparison needs a split, not {percentage:g} %")
    if not 0 < power < 1:
        raise ValueError(f"power must lie strictly between 0 and 1, not {power!r}")
    q = percentage / 100.0
    pc, pt = control_rate / 100.0, (control_rate + increase) / 100.0
    if not (0 <= pc <= 1 and 0 <= pt <= 1):
        raise ValueError(f"the rates {control_rate:g} % and {control_rate + increase:g} % must "
                         "lie within 0-100 %")
    z = NormalDist().inv_cdf(power)
    side = 1.0 if outcome == PASS else -1.0  # the unfavourable side of the outcome
    wanted = Verdict.PASS if outcome == PASS else Verdict.FAIL

    def decides(n: float) -> bool:
        nt, nc = q * n, (1.0 - q) * n
        sd = math.sqrt(pt * (1.0 - pt) / nt + pc * (1.0 - pc) / nc)
        treatment = _counts(nt, pt + side * z * sd)
        return verdict(spec, metric, treatment, _counts(nc, pc), percentage=percentage,
                       looks=looks) is wanted

    # below this the smaller cohort has fewer than min_requests: inconclusive whatever it saw
    low = max(spec.min_requests, 1) / min(q, 1.0 - q)
    n = smallest(decides, low)
    return Need(metric.name, outcome, control_rate, control_rate + increase, power, n,
                None if n is None else q * n)


@dataclass(frozen=True, slots=True)
class Distance:
    """How far an inconclusive comparison is from deciding, if the observed rates hold."""

    outcome: str  # pass or fail: where the observed difference leads
    #: More requests over both cohorts, and of them the treatment's; None: the observed
    #: difference sits where the gate never decides (exactly at the margin).
    more_requests: float | None
    more_treatment_requests: float | None


def distance_to_decide(spec: Comparison, metric: MetricComparison, *, percentage: float,
                       looks: int, treatment_requests: float, treatment_rate: float,
                       control_requests: float, control_rate: float) -> Distance | None:
    """The distance of an inconclusive ``metric`` from a decision, from the cohorts it last
    saw (rates in percent); None without requests in a cohort (nothing to extrapolate)."""
    if treatment_requests <= 0 or control_requests <= 0 or not 0 < percentage < 100:
        return None
    pt, pc = treatment_rate / 100.0, control_rate / 100.0
    heading = PASS if treatment_rate - control_rate <= metric.max_increase else FAIL

    def decides(k: float) -> bool:
        v = verdict(spec, metric, _counts(k * treatment_requests, pt),
                    _counts(k * control_requests, pc), percentage=percentage, looks=looks)
        return v in (Verdict.PASS, Verdict.FAIL)

    total = treatment_requests + control_requests
    k = smallest(lambda x: decides(x / total), total, max(MAX_REQUESTS, 2 * total))
    if k is None:
        return Distance(heading, None, None)
    more = max(k - total, 0.0)
    return Distance(heading, more, more * treatment_requests / total)


# --- absolute gates with a confidence ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateNeed:
    """What one absolute gate with a confidence needs at one step to reach ``outcome``."""

    gate: str  # error_rate
    #: ``pass``: a healthy rate (``rate`` below ``threshold``) is shown below it; ``fail``: a
    #: breach (``rate`` above it) is shown above it.
    outcome: str
    rate: float  # the true rate assumed, percent
    threshold: float  # the gate's max, percent
    power: float
    #: The flag's requests since the step started (every variant); None: never (a rate at or
    #: on the wrong side of the threshold).
    requests: float | None

    def seconds(self, requests_per_hour: float) -> float | None:
        """How long the step takes to gather them at the flag's ``requests_per_hour``."""
        if self.requests is None or requests_per_hour <= 0:
            return None
        return self.requests / requests_per_hour * 3600.0


def rate_verdict(gate: Gate, requests: float, errors: float, *, steps: int) -> Verdict:
    """The verdict the runner would give ``gate`` (with a confidence) on these step counts."""
    readings = {step_key("requests"): Reading(requests), step_key("errors"): Reading(errors)}
    return verdicts.judge_counts(gate, readings, steps)[0]


def _check_confident(gate: Gate) -> float:
    if gate.confidence is None or gate.max is None or not 0 < gate.max < 100:
        raise ValueError(f"{gate.name} has no confidence and max strictly between 0 and 100")
    return gate.max


def rate_need(gate: Gate, *, steps: int, rate: float, outcome: str, power: float) -> RateNeed:
    """The flag's requests ``gate`` (an absolute gate with a confidence) needs since the step
    started to reach ``outcome`` with probability ``power`` when the true rate is ``rate``
    percent; ``steps`` the plan's, over which the gate splits its budget."""
    if outcome not in (PASS, FAIL):
        raise ValueError(f"outcome must be {PASS!r} or {FAIL!r}, not {outcome!r}")
    if not 0 < power < 1:
        raise ValueError(f"power must lie strictly between 0 and 1, not {power!r}")
    threshold = _check_confident(gate)
    if not 0 <= rate <= 100:
        raise ValueError(f"the rate {rate:g} % must lie within 0-100 %")
    p = rate / 100.0
    if (outcome == PASS and rate >= threshold) or (outcome == FAIL and rate <= threshold):
        return RateNeed(gate.name, outcome, rate, threshold, power, None)
    z = NormalDist().inv_cdf(power)
    side = 1.0 if outcome == PASS else -1.0  # the unfavourable side of the outcome
    wanted = Verdict.PASS if outcome == PASS else Verdict.FAIL

    def decides(n: float) -> bool:
        seen = min(max(p + side * z * math.sqrt(p * (1.0 - p) / n), 0.0), 1.0)
        return rate_verdict(gate, n, seen * n, steps=steps) is wanted

    return RateNeed(gate.name, outcome, rate, threshold, power, smallest(decides, 1.0))


def rate_distance_to_decide(gate: Gate, *, steps: int, requests: float, errors: float
                            ) -> Distance | None:
    """The distance of an inconclusive absolute gate with a confidence from a decision, from
    the step's counts (the observed rate held); None without requests."""
    threshold = _check_confident(gate)
    if requests <= 0 or errors < 0 or errors > requests:
        return None
    seen = errors / requests
    heading = PASS if 100.0 * seen < threshold else FAIL

    def decides(n: float) -> bool:
        return rate_verdict(gate, n, seen * n, steps=steps) in (Verdict.PASS, Verdict.FAIL)

    n = smallest(decides, requests, max(MAX_REQUESTS, 2 * requests))
    if n is None or 100.0 * seen == threshold:
        return Distance(heading, None, None)
    return Distance(heading, max(n - requests, 0.0), None)


__all__ = ["FAIL", "MAX_REQUESTS", "PASS", "Distance", "Need", "RateNeed", "comparison_need",
           "distance_to_decide", "rate_distance_to_decide", "rate_need", "rate_verdict",
           "smallest", "verdict"]
