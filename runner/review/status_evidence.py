"""``rollout status``: how far each inconclusive comparison is from deciding, for plans with ``traffic``.

From the cohorts the state's last evaluation recorded (``last_gates[].cohorts``), the
requests still needed if the observed rates hold (:func:`runner.gates.sample_size.distance_to_decide`,
which asks the runner's own comparison), and the time at the current rate: the requests the
step has gathered over the time it took, or, before there are any, the plan's ``traffic`` at
the step's share. Only plans that declare ``traffic`` (the opt-in to sample-size planning)
get it; the others' status stays as it was.

An absolute gate with a confidence gets the same from the step's counts its result recorded
(``last_gates[].counts``, :func:`runner.gates.sample_size.rate_distance_to_decide`); its rate
is the flag's whole traffic (every variant), the plan's ``traffic`` before there are any.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.gates.compare import comparing_steps
from runner.gates.sample_size import distance_to_decide, rate_distance_to_decide
from runner.model import Gate, RolloutPlan
from runner.review.plan_evidence import about
from runner.timefmt import parse_iso

#: The key a comparison's entry in ``last_gates`` gets.
TO_DECIDE = "to_decide"


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _measured_rate(row: Mapping[str, Any], gate: Mapping[str, Any], requests: float
                   ) -> float | None:
    """Requests an hour over both cohorts since the step started, from the evaluation's
    time: None when the times are missing or not in order."""
    try:
        start = parse_iso(str(row["step_started_at"]))
        at = parse_iso(str(gate["evaluated_at"]))
    except (KeyError, ValueError):
        return None
    hours = (at - start).total_seconds() / 3600.0
    return requests / hours if hours > 0 and requests > 0 else None


def _confident_gate(plan: RolloutPlan, row: Mapping[str, Any], name: Any) -> Gate | None:
    step = row.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < len(plan.steps):
        return None
    return next((g for g in plan.step_gates(step) if g.name == name
                 and g.confidence is not None and g.max is not None and 0 < g.max < 100), None)


def _rate_to_decide(plan: RolloutPlan, gate: Gate, row: Mapping[str, Any],
                    result: Mapping[str, Any]) -> dict[str, Any] | None:
    counts = result.get("counts")
    if not isinstance(counts, Mapping):
        return None
    requests, errors = _number(counts.get("requests")), _number(counts.get("errors"))
    if requests is None or errors is None:
        return None
    distance = rate_distance_to_decide(gate, steps=len(plan.steps), requests=requests,
                                       errors=errors)
    if distance is None:
        return None
    measured = _measured_rate(row, result, requests)
    declared = plan.traffic.requests_per_hour if plan.traffic is not None else None
    rate = measured if measured is not None else declared
    seconds = (None if distance.more_requests is None or not rate
               else distance.more_requests / rate * 3600.0)
    return {"outcome": distance.outcome,
            "more_requests": None if distance.more_requests is None
            else round(distance.more_requests),
            "requests_per_hour": None if rate is None else round(rate, 1),
            "rate": "measured" if measured is not None else "traffic",
            "seconds": None if seconds is None else round(seconds), "time": about(seconds)}


def to_decide(plan: RolloutPlan, row: Mapping[str, Any], gate: Mapping[str, Any]
              ) -> dict[str, Any] | None:
    """The distance of one inconclusive comparison, or absolute gate with a confidence, from
    a decision; None when it is no such gate, or its counts give nothing to extrapolate from."""
    spec, traffic = plan.compare, plan.traffic
    if traffic is None or gate.get("verdict") != "inconclusive":
        return None
    confident = _confident_gate(plan, row, gate.get("name"))
    if confident is not None:
        return _rate_to_decide(plan, confident, row, gate)
    if spec is None:
        return None
    metric = next((m for m in spec.metrics if m.name == gate.get("name")), None)
    cohorts = gate.get("cohorts")
    percentage = _number(row.get("current_percentage"))
    if metric is None or not isinstance(cohorts, Mapping) or percentage is None:
        return None
    counts = [_number(cohorts.get(k)) for k in ("treatment_requests", "treatment_rate",
                                                 "control_requests", "control_rate")]
    tn, t_rate, cn, c_rate = counts
    if tn is None or t_rate is None or cn is None or c_rate is None \
            or not 0 < percentage < 100:
        return None
    distance = distance_to_decide(spec, metric, percentage=percentage,
                                  looks=comparing_steps(plan.percentages),
                                  treatment_requests=tn, treatment_rate=t_rate,
                                  control_requests=cn, control_rate=c_rate)
    if distance is None:
        return None
    measured = _measured_rate(row, gate, tn + cn)
    rate = measured if measured is not None else traffic.requests_per_hour
    seconds = (None if distance.more_requests is None or not rate
               else distance.more_requests / rate * 3600.0)
    return {"outcome": distance.outcome,
            "more_requests": None if distance.more_requests is None
            else round(distance.more_requests),
            "more_treatment_requests": None if distance.more_treatment_requests is None
            else round(distance.more_treatment_requests),
            "requests_per_hour": None if rate is None else round(rate, 1),
            "rate": "measured" if measured is not None else "traffic",
            "seconds": None if seconds is None else round(seconds), "time": about(seconds)}


def with_distances(row: dict[str, Any], plan: RolloutPlan | None) -> None:
    """Adds ``to_decide`` to each inconclusive comparison and absolute gate with a confidence
    of ``row`` (a status record), when
    the plan declares ``traffic`` and the state was written under it."""
    if plan is None or plan.traffic is None or row.get("plan_changed") \
            or row.get("phase") not in ("progressing", "paused"):
        return
    for gate in row.get("last_gates") or ():
        if isinstance(gate, dict):
            distance = to_decide(plan, row, gate)
            if distance is not None:
                # paused (the progress deadline, a person): `rollout resume` restarts the
                # step's count, so what it was short of is history, and the step needs
                # everything again at the plan's traffic
                distance["paused"] = row.get("phase") == "paused"
                gate[TO_DECIDE] = distance


def distance_text(d: Mapping[str, Any]) -> str:
    """``needs ~620 more treatment requests (~12,400 in all) to pass (~2h10m at the current
    rate)``; for an absolute gate ``needs ~860 more requests to pass (~…)``."""
    if d.get("more_requests") is None:
        if "more_treatment_requests" not in d:  # an absolute gate with a confidence
            return "the observed rate sits at the threshold: it may never decide"
        return "the observed difference sits at the margin: it may never decide"
    rate = ("the rate it saw" if d.get("paused") else "the current rate") \
        if d.get("rate") == "measured" else "the plan's traffic"
    time = f" (~{d['time']} at {rate})" if d.get("time") else ""
    said = (f"~{d['more_requests']:,} more requests" if d.get("more_treatment_requests") is None
            else f"~{d['more_treatment_requests']:,} more treatment requests "
            f"(~{d['more_requests']:,} in all)")
    if d.get("paused"):
        return (f"was {said} from a {d['outcome']}{time}; `rollout resume` restarts the "
                "step's count from zero")
    return f"needs {said} to {d['outcome']}{time}"


__all__ = ["TO_DECIDE", "distance_text", "to_decide", "with_distances"]
