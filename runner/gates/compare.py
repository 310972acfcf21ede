"""Comparison gates: treatment (served the rollout variant) against control (the default).

Pure: counts in, gate results out. :func:`compare_cohorts` returns, for one evaluation of a
step, first the sample-ratio check (``compare.sample_ratio``, when the cohorts have
``assigned`` counts), then one result per compared metric (``compare.error_rate``,
``compare.slow_rate``). The counts are cumulative since the current step started.

The verdict of a metric, with ``d = p_treatment - p_control`` in percentage points, ``low``
and ``high`` its always-valid lower and upper bounds (each a one-sided bound of
:mod:`runner.gates.stats.sequential`, as GrowthBook's safe rollouts use, with a standard
error that also covers the null at the margin: :mod:`runner.gates.stats.restricted`). The
proportions are of requests, or with ``compare.unit: users`` of users (the share of each
cohort's users who saw an error / a slow request, from :class:`CohortCounts`' user counts):

- ``fail`` when ``low > max_increase``: the data shows treatment worse than control by more
  than the margin;
- ``pass`` when ``high <= max_increase``: the data shows it is not;
- ``inconclusive`` while either cohort has fewer than ``min_requests`` requests, or while
  ``[low, high]`` still straddles the margin;
- ``error`` when the counts are unusable (negative, more errors than requests, not a
  number, beyond :data:`MAX_COUNT` or a nonzero count below :data:`MIN_COUNT`:
  :func:`count_problem`) or a ``slow_rate`` comparison has no slow count; the statistics
  never see such a count, and an arithmetic failure of theirs is ``error`` too.

The error budget ``1 - confidence`` holds for the whole rollout: each bound of one metric at
one step is built at ``alpha = (1 - confidence) / (looks x metrics)`` (Bonferroni over the
steps that compare and the metrics compared). Each step starts a fresh sequence (the split
changed, the counts restart); within a step the sequence is valid however often it is looked
at, so by the union bound the chance of any false ``fail`` over the whole rollout — a
rollback of a feature no worse than the margin — is at most ``1 - confidence``, and so is
the chance of any false ``pass``.

At 0 % and 100 % there is no split to compare: no result at all; the absolute gates alone
guard those steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from runner.gates.stats import sequential, srm
from runner.gates.verdicts import MAX_DETAIL
from runner.model import CohortEvidence, Comparison, GateResult, MetricComparison, Verdict
from runner.safetext import record_line

SAMPLE_RATIO = "compare.sample_ratio"
#: The largest count a cohort may hold: 2**53, where floats stop counting by ones (about
#: 9 x 10**15 requests in one step, far beyond any service); past it the arithmetic of the
#: statistics overflows or rounds to nonsense.
MAX_COUNT = float(2**53)
#: The smallest nonzero count: below it a count is noise or nonsense (a subnormal such as
#: 5e-324), and a rate divided by it overflows.
MIN_COUNT = 1e-9
#: The sequence is made tightest where the smaller cohort has this many times
#: ``min_requests``: about where a healthy comparison can first pass.
TUNING_FACTOR = 4.0


@dataclass(frozen=True, slots=True)
class CohortCounts:
    """One cohort's counts since the step started (fractional counts are fine)."""

    requests: float
    errors: float
    #: Requests slower than the objective; None: not measured.
    slow: float | None = None
    #: Users assigned by the split (OpenFeature reason SPLIT), each counted once, for the
    #: sample-ratio check (its units must be independently assigned: a user's requests
    #: share one assignment); None: the check is not run (never on ``requests``).
    assigned: float | None = None
    #: Users seen (each counted once since the step started: the split's unit); None: the
    #: source has no user counts. Needed by a comparison whose unit is users.
    users: float | None = None
    #: Of those users, the ones who saw at least one error / one slow request (unit users).
    users_with_errors: float | None = None
    users_slow: float | None = None


def count_problem(x: object) -> str | None:
    """Why ``x`` is no usable count, as words after its name (``is negative (-1)``); None
    when it is one: a finite number from 0 to :data:`MAX_COUNT`, 0 or at least
    :data:`MIN_COUNT`."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return f"is {x!r:.60}, not a number"
    if isinstance(x, int) and abs(x) > MAX_COUNT:  # 10**400 has no float
        return f"is an integer of {math.ceil(x.bit_length() * math.log10(2))} digits, more " \
               "than any real count (at most 2**53)"
    if not math.isfinite(x):
        return f"is {x!r}, not a number"
    if x < 0:
        return f"is negative ({x:g})"
    if x > MAX_COUNT:
        return f"is {x:g}, more than any real count (at most 2**53)"
    if 0 < x < MIN_COUNT:
        return f"is {x:g}, a nonzero count too small to be real (below {MIN_COUNT:g})"
    return None


def look_alpha(spec: Comparison, looks: int) -> float:
    """The miscoverage of one metric's interval at one step: ``(1 - confidence)`` split
    evenly over the ``looks`` steps that compare and the metrics compared."""
    if isinstance(looks, bool) or not isinstance(looks, int) or looks < 1:
        raise ValueError(f"looks must be a positive whole number, not {looks!r}")
    if not (0.0 < spec.confidence < 1.0):
        raise ValueError(f"confidence must lie strictly between 0 and 1, not {spec.confidence!r}")
    return (1.0 - spec.confidence) / (looks * max(len(spec.metrics), 1))


def tuning(spec: Comparison, share: float) -> float:
    """N*, the total requests at which the sequence is tightest (see :data:`TUNING_FACTOR`)."""
    smaller = min(share, 1.0 - share)
    return TUNING_FACTOR * max(spec.min_requests, 1) / smaller


def comparing_steps(percentages: Iterable[float]) -> int:
    """The ``looks`` of a plan: its steps that compare (0 < percentage < 100), at least 1."""
    return max(1, sum(1 for p in percentages if 0 < p < 100))


def compare_cohorts(spec: Comparison, treatment: CohortCounts, control: CohortCounts, *,
                    percentage: float, looks: int, now: datetime) -> tuple[GateResult, ...]:
    """The sample-ratio result (with ``assigned`` counts), then one result per
    ``spec.metrics``; () at 0 % or 100 %.

    ``treatment`` and ``control`` are counted since the current step started; ``percentage``
    is the rollout's current percentage; ``looks`` is the number of the plan's steps that
    compare (:func:`comparing_steps`), the same at every evaluation of the rollout — not the
    number of evaluations, which the sequence absorbs. Raises ValueError only for a bad
    ``looks`` or ``percentage`` (the caller's mistake); bad counts are ``error`` results."""
    if not math.isfinite(percentage):
        raise ValueError(f"the percentage must be a number, not {percentage!r}")
    if percentage <= 0 or percentage >= 100:
        return ()
    alpha = look_alpha(spec, looks)
    share = percentage / 100.0
    ratio = _sample_ratio(spec, treatment, control, share, looks, now)
    results = [ratio] if ratio is not None else []
    for m in spec.metrics:
        results.append(_metric(spec, m, treatment, control, alpha, tuning(spec, share), now))
    return tuple(results)


# --- the sample ratio ----------------------------------------------------------------------


def sample_ratio_threshold(spec: Comparison) -> str:
    """The sample-ratio result's threshold, in words: the level is the whole rollout's."""
    return f"p >= {spec.srm_p_value:g} over the rollout (sequential)"


def sample_ratio_alpha(spec: Comparison, looks: int) -> float:
    """The level of one step's sequential test: ``srm_p_value`` split evenly over the ``looks``
    steps that compare (each step starts a fresh test), so that a healthy rollout is paused
    by the check with probability at most ``srm_p_value``, however often the runner looks."""
    return spec.srm_p_value / looks


def _sample_ratio(spec: Comparison, treatment: CohortCounts, control: CohortCounts,
                  share: float, looks: int, now: datetime) -> GateResult | None:
    """The sequential sample-ratio test (:mod:`runner.gates.stats.srm`) on the assigned
    users; None (no result: not applicable) when a cohort has no ``assigned`` count: on
    request counts a user's requests share one assignment, and a healthy split would look
    broken."""
    t, c = treatment.assigned, control.assigned
    if t is None or c is None:
        return None
    alpha = sample_ratio_alpha(spec, looks)
    threshold = sample_ratio_threshold(spec)
    what = "assigned users"

    def result(verdict: Verdict, detail: str, value: float | None = None) -> GateResult:
        return GateResult(SAMPLE_RATIO, verdict, value, threshold, spec.dry_run,
                          record_line(detail, MAX_DETAIL), now)

    for cohort, x in (("treatment", t), ("control", c)):
        problem = count_problem(x)
        if problem is not None and isinstance(x, int | float) and not isinstance(x, bool) \
                and math.isfinite(x) and x >= 0:  # too large or too small: srm says the rest
            return result(Verdict.ERROR, f"unusable counts of {what}: the {cohort} count "
                                         f"{problem}")
    try:
        test = srm.sample_ratio(t, c, share)
    except (ValueError, ArithmeticError) as e:
        if _is_zero(t) and _is_zero(c):
            return result(Verdict.INCONCLUSIVE, f"no {what} in either cohort yet")
        return result(Verdict.ERROR, f"unusable counts of {what}: {e}")
    shares = (f"treatment has {_pct(test.observed_share * 100)} % of {_count(test.total)} {what}, "
              f"expected {_pct(share * 100)} %")
    evidence = (f"Bayes factor {_factor(test.log_bayes_factor)}, anytime-valid p = "
                f"{test.p_value:.2g}")
    if test.mismatch(alpha):
        return result(Verdict.ERROR,
                      f"sample ratio mismatch: {shares} ({evidence} < {alpha:.2g}, this step's "
                      "share of the level): the assignment or the cohort telemetry is broken",
                      test.p_value)
    return result(Verdict.PASS, f"{shares} ({evidence}; a mismatch needs p < {alpha:.2g})",
                  test.p_value)


def _factor(log_bf: float) -> str:
    """A Bayes factor for people: 0.31, 12, 4.1e+23, even past the float range."""
    if log_bf < 700:
        return f"{math.exp(log_bf):.2g}"
    exponent = math.floor(log_bf / math.log(10))
    return f"{10 ** (log_bf / math.log(10) - exponent):.1f}e+{exponent}"


# --- one metric ----------------------------------------------------------------------------


def _threshold(m: MetricComparison, spec: Comparison) -> str:
    return f"treatment - control <= {_pp(m.max_increase)} pp ({_pct(spec.confidence * 100)} %)"


#: What a comparison counts, by unit: (its totals, errors, slow) in CohortCounts, and the
#: words for them.
_UNIT_COUNTS = {"requests": ("requests", "errors", "slow"),
                "users": ("users", "users_with_errors", "users_slow")}
_UNIT_WORDS = {("requests", "error_rate"): "errors", ("requests", "slow_rate"): "slow",
               ("users", "error_rate"): "users with errors", ("users", "slow_rate"): "users slow"}


def _unit_counts(spec: Comparison, m: MetricComparison, treatment: CohortCounts,
                 control: CohortCounts) -> tuple[tuple[float, float, float, float] | None, str]:
    """``((te, tn, ce, cn), label)``: each cohort's events and total in the comparison's unit,
    and the events' name; ``(None, why)`` when the source did not give them."""
    unit = spec.unit if spec.unit in _UNIT_COUNTS else "requests"
    total_name, errors_name, slow_name = _UNIT_COUNTS[unit]
    events_name = errors_name if m.metric == "error_rate" else slow_name
    label = _UNIT_WORDS[(unit, m.metric)]
    t = (getattr(treatment, events_name), getattr(treatment, total_name))
    c = (getattr(control, events_name), getattr(control, total_name))
    if m.metric == "slow_rate" and unit == "requests" and (t[0] is None or c[0] is None):
        missing = " and ".join(n for n, x in (("treatment", t[0]), ("control", c[0])) if x is None)
        return None, (f"the source gave no slow count ({missing}) for the objective "
                      f"{m.objective_ms:g} ms")
    if None in (*t, *c):
        missing = ", ".join(f"{cohort} {name}" for cohort, one in (("treatment", treatment),
                                                                    ("control", control))
                            for name in (total_name, events_name) if getattr(one, name) is None)
        return None, f"the source gave no user counts ({missing}) for a comparison of users"
    return (t[0], t[1], c[0], c[1]), label


def _metric(spec: Comparison, m: MetricComparison, treatment: CohortCounts, control: CohortCounts,
            alpha: float, n_star: float, now: datetime) -> GateResult:
    threshold = _threshold(m, spec)

    def result(verdict: Verdict, detail: str, value: float | None = None,
               evidence: CohortEvidence | None = None) -> GateResult:
        return GateResult(m.name, verdict, value, threshold, spec.dry_run,
                          record_line(detail, MAX_DETAIL), now, evidence)

    if m.metric not in ("error_rate", "slow_rate"):
        return result(Verdict.ERROR, f"unknown compared metric {m.metric!r}")
    found, label = _unit_counts(spec, m, treatment, control)
    if found is None:
        return result(Verdict.ERROR, label)
    te, t_total, ce, c_total = found
    noun = "users" if spec.unit == "users" else "requests"
    problem = _bad_counts(t_total, te, "treatment", label, noun) or _bad_counts(
        c_total, ce, "control", label, noun)
    if problem:
        return result(Verdict.ERROR, f"unusable counts: {problem}")
    tn, cn = float(t_total), float(c_total)
    t_rate = 100.0 * te / tn if tn > 0 else None
    c_rate = 100.0 * ce / cn if cn > 0 else None
    value = t_rate - c_rate if t_rate is not None and c_rate is not None else None
    of_users = " of users" if spec.unit == "users" else ""
    counts = (f"treatment {_rate(t_rate)}{of_users} ({_count(te)}/{_count(tn)}) vs control "
              f"{_rate(c_rate)}{of_users} ({_count(ce)}/{_count(cn)})")
    margin = f"margin {_pp(m.max_increase)} pp"

    def evidence(low: float | None, high: float | None) -> CohortEvidence:
        return CohortEvidence(t_rate, c_rate, round(tn), round(cn), low, high, m.max_increase,
                              1.0 - alpha)

    short = [n for n, x in (("treatment", tn), ("control", cn)) if x < spec.min_requests]
    if short:
        which = " and ".join(f"{n} has {_count(x)}" for n, x in (("treatment", tn), ("control", cn))
                             if n in short)
        return result(Verdict.INCONCLUSIVE,
                      f"too few {noun}: {which}, fewer than the minimum {spec.min_requests}; "
                      f"{counts}; {margin}", value, evidence(None, None))
    return _judged(m, (te, tn, ce, cn), alpha, n_star, (counts, margin), value,
                   evidence, result)


def _judged(m: MetricComparison, counted: tuple[float, float, float, float], alpha: float,
            n_star: float, words: tuple[str, str], value: float | None,
            evidence: Callable[[float | None, float | None], CohortEvidence],
            result: Callable[..., GateResult]) -> GateResult:
    """The verdict of the bounds against the margin."""
    te, tn, ce, cn = counted
    counts, margin = words
    try:
        iv = sequential.difference(te, tn, ce, cn, alpha=alpha, tuning=n_star, one_sided=True,
                                   margin=m.max_increase / 100.0)
    except (ValueError, ArithmeticError) as e:  # counts checked above: never expected
        return result(Verdict.ERROR, f"the comparison could not be computed ({e}): {counts}")
    low, high = 100.0 * iv.low, 100.0 * iv.high
    if not (math.isfinite(low) and math.isfinite(high)):
        return result(Verdict.ERROR, f"the comparison could not be computed (interval "
                                     f"[{low}, {high}]): {counts}")
    assert value is not None
    seen = (f"{counts}: {_pp(value)} pp, interval [{_pp(low)}, {_pp(high)}] pp "
            f"(each bound {_pct(100 * (1 - alpha))} % always-valid), {margin}")
    if low > m.max_increase:
        return result(Verdict.FAIL, f"{seen}: treatment is worse than control by more than the "
                                    "margin", value, evidence(low, high))
    if high <= m.max_increase:
        return result(Verdict.PASS, f"{seen}: treatment is not worse by more than the margin",
                      value, evidence(low, high))
    return result(Verdict.INCONCLUSIVE, f"{seen}: the interval still straddles the margin",
                  value, evidence(low, high))


def _bad_counts(total: float, events: float, cohort: str, label: str,
                noun: str = "requests") -> str | None:
    for name, x in ((noun, total), (label, events)):
        problem = count_problem(x)
        if problem is not None:
            return f"{cohort} {name} {problem}"
    if events > total:
        return f"{cohort} has {events:g} {label} out of only {total:g} {noun}"
    return None


def _is_zero(x: float) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and x == 0


# --- numbers for people --------------------------------------------------------------------


def _pp(x: float) -> str:
    """A signed difference in points: +0.5, -0.12, +0."""
    return f"{x:+.3g}" if abs(x) >= 0.001 or x == 0 else f"{x:+.1e}"


def _pct(x: float) -> str:
    return f"{x:.4g}"


def _rate(x: float | None) -> str:
    return "none" if x is None else f"{x:.3g} %"


def _count(x: float) -> str:
    return f"{x:,.0f}" if abs(x - round(x)) < 1e-9 or x >= 100 else f"{x:,.1f}"


__all__ = ["MAX_COUNT", "MIN_COUNT", "SAMPLE_RATIO", "CohortCounts", "compare_cohorts",
           "comparing_steps", "count_problem", "look_alpha", "sample_ratio_alpha",
           "sample_ratio_threshold", "tuning"]
