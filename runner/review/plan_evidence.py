"""``rollout plan``'s evidence section: per step, the requests each gate needs and how long that takes.

Pure over one plan: from its ``traffic`` (the author's expectation; the runner never reads
it), each step that compares gets, per comparison, the requests needed to pass a healthy
feature and to catch a regression at the plan's power (:mod:`runner.gates.sample_size`,
which asks the runner's own comparison), the time that takes at the step's share of the
traffic, and whether the progress deadline pauses the step first. Each absolute gate with a
``confidence`` (``error_rate: {max: 1, confidence: 0.95}``) gets the flag's requests it needs
to pass the plan's healthy rate (``traffic.error_rate``) and to catch a breach at twice its
threshold (:func:`runner.gates.sample_size.rate_need`, which asks the runner's own
``judge_counts``), at the flag's whole traffic: such a gate counts every variant.
``request_count`` gates get the requests a window holds. A plan with comparisons or
confident gates and no ``traffic`` gets one line saying how to declare it; a plan with
neither gets nothing.
"""

from __future__ import annotations

from typing import Any

from runner.gates.compare import comparing_steps
from runner.gates.sample_size import FAIL, PASS, Need, RateNeed, comparison_need, rate_need
from runner.load.durations import format_duration, parse_duration
from runner.model import Gate, RolloutPlan, Traffic

#: What ``rollout plan`` says of a plan with comparisons and no ``traffic``.
HINT = ("declare the flag's expected traffic (traffic: 6000/h, requests an hour) to see how "
        "long each step needs to gather its evidence")


def about(seconds: float | None) -> str | None:
    """A planned duration, as precise as a plan can be: to the minute under an hour, to ten
    minutes under a day, to the hour beyond (``25m``, ``9h40m``, ``4d6h``)."""
    if seconds is None:
        return None
    step = 60.0 if seconds < 3600 else 600.0 if seconds < 86400 else 3600.0
    return format_duration(max(round(seconds / step), 1) * step)


def _need(n: Need, rate: float) -> dict[str, Any]:
    seconds = n.seconds(rate)
    return {"requests": None if n.requests is None else round(n.requests),
            "treatment_requests": None if n.treatment_requests is None
            else round(n.treatment_requests),
            "control_rate": n.control_rate, "treatment_rate": round(n.treatment_rate, 6),
            "seconds": None if seconds is None else round(seconds), "time": about(seconds)}


def breach_rate(gate: Gate) -> float:
    """The breach a plan shows the time to catch for an absolute gate: twice its threshold
    (halfway to 100 % for a threshold of 50 % or more), in percent."""
    assert gate.max is not None
    return min(2.0 * gate.max, (gate.max + 100.0) / 2.0)


def _rate_need(n: RateNeed, rate: float) -> dict[str, Any]:
    seconds = n.seconds(rate)
    return {"requests": None if n.requests is None else round(n.requests), "rate": n.rate,
            "seconds": None if seconds is None else round(seconds), "time": about(seconds)}


def confident_gates(plan: RolloutPlan, index: int) -> list[Gate]:
    """The blocking absolute gates with a confidence of step ``index`` (a dry-run gate never
    holds a step)."""
    return [g for g in plan.step_gates(index) if g.confidence is not None and not g.dry_run
            and g.max is not None and 0 < g.max < 100]


def _absolute(plan: RolloutPlan, traffic: Traffic, index: int, rate: float
              ) -> list[dict[str, Any]]:
    out = []
    for g in confident_gates(plan, index):
        healthy, caught = (rate_need(g, steps=len(plan.steps), rate=r, outcome=outcome,
                                     power=traffic.power)
                           for r, outcome in ((traffic.baseline(g.name), PASS),
                                              (breach_rate(g), FAIL)))
        out.append({"gate": g.name, "threshold": g.threshold, "pass": _rate_need(healthy, rate),
                    "fail": _rate_need(caught, rate)})
    return out


def _comparisons(plan: RolloutPlan, traffic: Traffic, percentage: float, rate: float
                 ) -> list[dict[str, Any]]:
    spec = plan.compare
    assert spec is not None
    looks = comparing_steps(plan.percentages)
    out = []
    for m in spec.metrics:
        base = traffic.baseline(m.metric)
        regression = min(traffic.regression_of(m), 100.0 - base)
        healthy, caught = (comparison_need(spec, m, percentage=percentage, looks=looks,
                                           control_rate=base, increase=increase,
                                           outcome=outcome, power=traffic.power)
                           for increase, outcome in ((0.0, PASS), (regression, FAIL)))
        out.append({"gate": m.name, "margin": m.max_increase, "regression": regression,
                    "pass": _need(healthy, rate), "fail": _need(caught, rate)})
    return out


def _window_requests(plan: RolloutPlan, rate: float) -> dict[str, Any] | None:
    """The ``request_count`` gates against the requests a metrics window holds (the gates
    read the source's window; the flag's traffic is a lower bound of what it counts)."""
    floors = {g.min for i in range(len(plan.steps)) for g in plan.step_gates(i)
              if g.name == "request_count" and g.min is not None and not g.dry_run}
    if not floors or plan.metrics is None:
        return None
    try:
        window = parse_duration(plan.metrics.window)
    except ValueError:
        return None
    expected = rate * window / 3600.0
    return {"window": plan.metrics.window, "expected": round(expected),
            "min": max(floors), "short": expected < max(floors)}


def needs_evidence(plan: RolloutPlan) -> bool:
    """Whether a step of ``plan`` waits for evidence: comparisons, or an absolute gate with
    a confidence."""
    return plan.compare is not None or any(confident_gates(plan, i)
                                           for i in range(len(plan.steps)))


def _step(plan: RolloutPlan, traffic: Traffic, rate: float, i: int) -> dict[str, Any] | None:
    compares = plan.compare is not None and 0 < plan.steps[i].percentage < 100
    absolute = _absolute(plan, traffic, i, rate)
    if not compares and not absolute:
        return None
    gates = _comparisons(plan, traffic, plan.steps[i].percentage, rate) if compares else []
    passing = [g["pass"]["seconds"] for g in gates + absolute]
    needs = None if None in passing else max(passing, default=0)
    last = len(plan.steps) - 1
    wait = plan.step_wait(i) if i < last else (plan.bake or 0.0)
    hold = None if needs is None else max(needs, wait)
    return {"index": i, "percentage": plan.steps[i].percentage, "wait": format_duration(wait),
            "gates": gates, **({"absolute": absolute} if absolute else {}),
            "seconds": hold, "time": about(hold),
            "deadline_short": needs is None or needs > plan.progress_deadline}


def plan_evidence(plan: RolloutPlan, measured: float | None = None) -> dict[str, Any] | None:
    """The evidence section of ``plan`` (JSON-ready); None for a plan with neither evidence
    to wait for nor ``traffic``; ``{"hint": …}`` for one without ``traffic`` (or whose only
    traffic is a query that answered nothing). ``measured``: requests an hour that
    ``traffic.query`` answered (:mod:`runner.review.plan_traffic`), used before the declared
    ``requests_per_hour``."""
    traffic = plan.traffic
    rate = measured if measured is not None else (traffic.requests_per_hour if traffic else None)
    if traffic is None or rate is None:
        return {"hint": HINT} if needs_evidence(plan) else None
    steps = [st for i in range(len(plan.steps))
             if (st := _step(plan, traffic, rate, i)) is not None]
    last = len(plan.steps) - 1
    holds: dict[int, float | None] = {s["index"]: s["seconds"] for s in steps}
    total: float | None = 0.0
    for i in range(len(plan.steps)):
        hold = holds[i] if i in holds else (plan.step_wait(i) if i < last else (plan.bake or 0.0))
        total = None if total is None or hold is None else total + hold
    return {"requests_per_hour": rate,
            **({"measured": True} if measured is not None else {}),
            "expected_seconds": total, "expected_time": about(total),
            "baselines": {m.metric: traffic.baseline(m.metric)
                          for m in (plan.compare.metrics if plan.compare else ())},
            "power": traffic.power, "progress_deadline": format_duration(plan.progress_deadline),
            "steps": steps, "request_count": _window_requests(plan, rate)}


def _count(x: float) -> str:
    return f"{x:,.0f}"


def evidence_risks(flag: str, plan: RolloutPlan, evidence: dict[str, Any] | None
                   ) -> list[dict[str, str]]:
    """The risks of ``plan``'s evidence section: steps whose comparisons need longer than
    the progress deadline to pass a healthy feature (the rollout would pause there), and a
    ``request_count`` floor above what a window holds (every look inconclusive)."""
    if not evidence or "steps" not in evidence:
        return []
    out = []
    rate = f"{_count(evidence['requests_per_hour'])} requests an hour"
    short = [s for s in evidence["steps"] if s["deadline_short"]]
    if short:
        parts = []
        absolute = any(s.get("absolute") for s in short)
        for s in short:
            slowest = max(s["gates"] + s.get("absolute", []),
                          key=lambda g: g["pass"]["seconds"] or float("inf"))
            parts.append(f"{s['percentage']:g} % ({slowest['gate']}: "
                         + (f"~{_count(slowest['pass']['requests'])} requests, ~{s['time']})"
                            if s["time"] else "never passes)"))
        # the words of plans without confident gates stay as they were
        what, fix = (("its gates", "lower a gate's confidence or widen max_increase") if absolute
                     else ("its comparisons", "widen max_increase or start at a larger share"))
        out.append({"level": "warning", "kind": "evidence_too_slow", "flag": flag,
                    "message": f"at {rate}, a healthy {flag} needs longer than "
                    f"progress_deadline {evidence['progress_deadline']} to pass {what} "
                    f"({evidence['power'] * 100:.4g} % of the time) at " + ", ".join(parts)
                    + f": the rollout would pause there; raise progress_deadline, {fix}"})
    counts = evidence.get("request_count")
    if counts and counts["short"]:
        out.append({"level": "warning", "kind": "request_count_unreachable", "flag": flag,
                    "message": f"at {rate}, a {counts['window']} window holds about "
                    f"{_count(counts['expected'])} of {flag}'s requests, fewer than "
                    f"request_count >= {counts['min']:g}: unless the source counts more "
                    "traffic than the flag's, every look is inconclusive and the rollout "
                    "pauses at the progress deadline"})
    return out


__all__ = ["HINT", "about", "breach_rate", "confident_gates", "evidence_risks", "needs_evidence",
           "plan_evidence"]
