"""From readings to verdicts: the rules every source shares.

- A reading with an error: ``error``.
- No data, NaN or ±inf: ``inconclusive``.
- ``max`` exceeded or ``min`` not reached: ``fail`` — except ``request_count``, whose
  minimum is about enough traffic, not health: fewer requests is ``inconclusive``.
- When a blocking ``request_count`` gate measured fewer requests than its minimum, every
  other gate that would pass or fail is ``inconclusive`` too: an error rate over 3 requests
  says nothing either way, and neither advancing nor rolling back on it is right. Their
  values are still reported. Errors stay errors. A dry-run ``request_count`` gate does not
  do this (dry-run gates never influence a decision).
- A gate with a ``confidence`` (``error_rate``) is judged on the errors and requests since
  the step started (:func:`judge_counts`, an always-valid bound of
  :mod:`runner.gates.stats.rate_bound`): ``fail`` when the rate is above ``max`` at that
  confidence, ``pass`` when below, ``inconclusive`` otherwise. Its bound already accounts for
  how few requests there are, so too little traffic never turns its verdict inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from runner.gates.readings import Reading, step_key
from runner.gates.stats import rate_bound
from runner.model import Gate, GateResult, StepCounts, Verdict
from runner.safetext import record_line

REQUEST_COUNT = "request_count"
#: Details go into commit messages and state files: one line, bounded.
MAX_DETAIL = 400


def judge_value(gate: Gate, value: float) -> tuple[Verdict, str]:
    if not math.isfinite(value):
        return Verdict.INCONCLUSIVE, f"value is {value} (no usable data)"
    if gate.max is not None and value > gate.max:
        return Verdict.FAIL, f"{value:g} > {gate.max:g}"
    if gate.min is not None and value < gate.min:
        if gate.name == REQUEST_COUNT and gate.query is None:
            return Verdict.INCONCLUSIVE, f"only {value:g} requests, fewer than the minimum {gate.min:g}"
        return Verdict.FAIL, f"{value:g} < {gate.min:g}"
    return Verdict.PASS, f"{value:g} within {gate.threshold}"


def judge(gates: tuple[Gate, ...], readings: Mapping[str, Reading], now: datetime, *,
          steps: int = 1) -> tuple[GateResult, ...]:
    """One result per gate, in the gates' order. ``readings`` maps gate name to a Reading
    (and the step counts, under :func:`~runner.gates.readings.step_key` names, for gates with
    a confidence); ``steps`` is the number of the plan's steps, over which a gate with a
    confidence splits its error budget."""
    results: dict[str, GateResult] = {}
    for gate in gates:
        r = readings.get(gate.name) or Reading(error="the source returned nothing for this gate")
        counts = None
        if gate.confidence is not None:
            verdict, value, why = judge_counts(gate, readings, steps)
            counts = judged_counts(readings) if verdict is not Verdict.ERROR else None
        elif r.error is not None:
            verdict, value, why = Verdict.ERROR, r.value, r.error
        elif r.value is None:
            verdict, value = Verdict.INCONCLUSIVE, None
            why = f"no data ({r.detail})" if r.detail else "no data"
        else:
            verdict, why = judge_value(gate, r.value)
            # NaN and ±Inf are no value at all: reported in the detail, not as a number
            value = r.value if math.isfinite(r.value) else None
            if r.detail:
                why = f"{why} ({r.detail})"
        results[gate.name] = GateResult(gate.name, verdict, value, gate.threshold, gate.dry_run,
                                         record_line(why, MAX_DETAIL), now, counts=counts)

    too_little = next(
        (results[g.name] for g in gates
         if g.name == REQUEST_COUNT and g.query is None and not g.dry_run and g.min is not None
         and results[g.name].verdict is Verdict.INCONCLUSIVE and results[g.name].value is not None),
        None,
    )
    if too_little is not None:
        minimum = too_little.threshold.removeprefix(">= ")
        confident = {g.name for g in gates if g.confidence is not None}
        for name, res in results.items():
            if name in confident:
                continue  # its bound already says what so few requests show
            if name != REQUEST_COUNT and res.verdict in (Verdict.PASS, Verdict.FAIL):
                why = (f"too little traffic to judge ({too_little.value:g} requests, minimum {minimum}); "
                       f"would be {res.verdict}: {res.detail}")
                results[name] = GateResult(res.name, Verdict.INCONCLUSIVE, res.value, res.threshold,
                                           res.dry_run, record_line(why, MAX_DETAIL), res.evaluated_at)
    return tuple(results[g.name] for g in gates)


#: The largest count judged: 2**53, where floats stop counting by ones.
MAX_COUNT = float(2**53)


def step_alpha(gate: Gate, steps: int) -> float:
    """The miscoverage of each bound of ``gate`` at one step: ``1 - confidence`` split evenly
    over the plan's ``steps`` (Bonferroni; within a step the bound is valid at every look)."""
    if gate.confidence is None:
        raise ValueError(f"gate {gate.name} has no confidence")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive whole number, not {steps!r}")
    return (1.0 - gate.confidence) / steps


def _step_count(readings: Mapping[str, Reading], count: str) -> float | str | None:
    """A step count: the number, an error's words (str), or None for no data."""
    r = readings.get(step_key(count))
    if r is None:
        return f"the source returned nothing for the step's {count}"
    if r.error is not None:
        return r.error
    if r.value is None:
        return None
    x = r.value
    if not math.isfinite(x) or x < 0 or x > MAX_COUNT:
        return f"the step's {count} is {x:g}, not a count ({r.detail})"
    return x


def judged_counts(readings: Mapping[str, Reading]) -> StepCounts | None:
    """The step's counts a gate with a confidence was judged on, when both are numbers
    (recorded in the state for ``rollout status``'s distance to a decision)."""
    requests, errors = _step_count(readings, "requests"), _step_count(readings, "errors")
    if isinstance(requests, float | int) and isinstance(errors, float | int):
        return StepCounts(float(requests), float(errors))
    return None


def judge_counts(gate: Gate, readings: Mapping[str, Reading],
                 steps: int) -> tuple[Verdict, float | None, str]:
    """The verdict, value (the rate in percent) and detail of a gate with a confidence, from
    the errors and requests since the step started."""
    requests, errors = _step_count(readings, "requests"), _step_count(readings, "errors")
    for got in (requests, errors):
        if isinstance(got, str):
            return Verdict.ERROR, None, got
    if requests is None or errors is None:
        missing = [readings[step_key(c)].detail or "no data" for c, x in
                   (("requests", requests), ("errors", errors)) if x is None]
        return Verdict.INCONCLUSIVE, None, f"no data ({'; '.join(missing)})"
    assert not isinstance(requests, str) and not isinstance(errors, str)
    if errors > requests * (1 + 1e-9) + 1e-9:
        return Verdict.ERROR, None, (f"{errors:g} errors out of only {requests:g} requests since "
                                     "the step started: the step counts are inconsistent")
    if requests <= 0:
        return Verdict.INCONCLUSIVE, None, "no requests since the step started"
    assert gate.confidence is not None
    if gate.max is None or not 0 < gate.max < 100:  # validate refuses it: never expected
        return Verdict.ERROR, None, "a gate with a confidence needs a max strictly between 0 and 100"
    alpha = step_alpha(gate, steps)
    b = rate_bound.bound(min(errors, requests), requests, threshold=gate.max / 100.0, alpha=alpha)
    rate = 100.0 * b.estimate
    seen = (f"{_count(errors)} errors in {_count(requests)} requests since the step started: "
            f"{rate:.3g} %, always-valid bounds [{100 * b.low:.3g} %, {100 * b.high:.3g} %] "
            f"(each {100 * (1 - alpha):.4g} %)")
    limit = f"{gate.max:g} % at {gate.confidence * 100:.4g} %"
    if b.above:
        return Verdict.FAIL, rate, f"{seen}: above {limit}"
    if b.below:
        return Verdict.PASS, rate, f"{seen}: below {limit}"
    return Verdict.INCONCLUSIVE, rate, f"{seen}: not yet shown above or below {limit}"


def _count(x: float) -> str:
    return f"{x:,.0f}" if abs(x - round(x)) < 1e-9 or x >= 100 else f"{x:,.1f}"


def all_with(gates: tuple[Gate, ...], verdict: Verdict, detail: str, now: datetime) -> tuple[GateResult, ...]:
    """The same verdict for every gate: a source that failed or had no data at all."""
    shown = record_line(detail, MAX_DETAIL)
    return tuple(GateResult(g.name, verdict, None, g.threshold, g.dry_run, shown, now)
                 for g in gates)
