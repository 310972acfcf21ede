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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from runner.gates.readings import Reading
from runner.model import Gate, GateResult, Verdict
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


def judge(gates: tuple[Gate, ...], readings: Mapping[str, Reading], now: datetime) -> tuple[GateResult, ...]:
    """One result per gate, in the gates' order. ``readings`` maps gate name to a Reading."""
    results: dict[str, GateResult] = {}
    for gate in gates:
        r = readings.get(gate.name) or Reading(error="the source returned nothing for this gate")
        if r.error is not None:
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
                                         record_line(why, MAX_DETAIL), now)

    too_little = next(
        (results[g.name] for g in gates
         if g.name == REQUEST_COUNT and g.query is None and not g.dry_run and g.min is not None
         and results[g.name].verdict is Verdict.INCONCLUSIVE and results[g.name].value is not None),
        None,
    )
    if too_little is not None:
        minimum = too_little.threshold.removeprefix(">= ")
        for name, res in results.items():
            if name != REQUEST_COUNT and res.verdict in (Verdict.PASS, Verdict.FAIL):
                why = (f"too little traffic to judge ({too_little.value:g} requests, minimum {minimum}); "
                       f"would be {res.verdict}: {res.detail}")
                results[name] = GateResult(res.name, Verdict.INCONCLUSIVE, res.value, res.threshold,
                                           res.dry_run, record_line(why, MAX_DETAIL), res.evaluated_at)
    return tuple(results[g.name] for g in gates)


def all_with(gates: tuple[Gate, ...], verdict: Verdict, detail: str, now: datetime) -> tuple[GateResult, ...]:
    """The same verdict for every gate: a source that failed or had no data at all."""
    shown = record_line(detail, MAX_DETAIL)
    return tuple(GateResult(g.name, verdict, None, g.threshold, g.dry_run, shown, now)
                 for g in gates)
