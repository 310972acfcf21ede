"""``rollout plan``'s measured traffic: a plan's ``traffic.query`` read from its Prometheus source.

A plan may say how to measure its flag's traffic instead of (or besides) declaring it:
``traffic: {query: 'sum(rate(rollout_requests_total{flag="{{ flag }}"}[7d])) * 3600'}``,
requests an hour. ``rollout plan`` reads it here, once per plan, through the Prometheus
source the gates use (:func:`runner.gates.sources.prometheus.read`: the template rendered
like every query template, ``url_env`` and ``bearer_token_env`` from the command's
environment and never shown, the whole exchange bounded by ``metrics.timeout``, the
answer's rules), as a custom gate's query at the injected ``now``. A plan review must never
fail for want of a Prometheus (a pull request's CI may have none): when it cannot be read,
or answers nothing usable, :class:`Measured` says so in one line, and the evidence falls back
to the declared ``requests_per_hour`` if there is one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from runner.gates.readings import SourceCall, SourceError
from runner.gates.sources import prometheus
from runner.model import Gate, RolloutPlan
from runner.safetext import record_line

#: The name the query is read under (in the source's messages: ``gate traffic.query``).
QUERY = "traffic.query"
#: The longest note: one line of a pull-request comment.
MAX_NOTE = 300


@dataclass(frozen=True, slots=True)
class Measured:
    """What ``traffic.query`` answered: requests an hour, or why there are none (one line)."""

    requests_per_hour: float | None
    note: str | None = None


def _fallback(plan: RolloutPlan) -> str:
    declared = plan.traffic.requests_per_hour if plan.traffic is not None else None
    if declared is None:
        return "no evidence section without a declared traffic.requests_per_hour"
    return f"using the declared {declared:,.0f} requests an hour"


def measure(plan: RolloutPlan, root: Path, env: Mapping[str, str], now: datetime
            ) -> Measured | None:
    """``plan``'s measured traffic at ``now``; None for a plan without ``traffic.query``."""
    query = plan.traffic.query if plan.traffic is not None else None
    if query is None:
        return None
    m = plan.metrics
    if m is None or m.type != "prometheus":  # `rollout validate` says so at its line
        return Measured(None, record_line(f"traffic.query not read: the plan's metrics source is "
                                          f"not prometheus; {_fallback(plan)}", MAX_NOTE))
    call = SourceCall(plan.flag, 0.0, m, (Gate(QUERY, query=query),), root, now, env)
    try:
        reading = prometheus.read(call)[QUERY]
    except SourceError as e:  # unreachable, refused, no answer in time: secrets redacted
        return Measured(None, record_line(f"traffic.query not read: {e}; {_fallback(plan)}",
                                          MAX_NOTE))
    value = reading.value
    if reading.error is not None:
        why = reading.error
    elif value is None or not math.isfinite(value):
        why = f"no answer ({reading.detail or 'no data'})"
    elif value <= 0:
        why = f"it answered {value:g} requests an hour ({reading.detail})"
    else:
        return Measured(value)
    return Measured(None, record_line(f"traffic.query not read: {why}; {_fallback(plan)}",
                                      MAX_NOTE))


__all__ = ["QUERY", "Measured", "measure"]
