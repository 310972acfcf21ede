"""The earliest schedule of a plan's remaining steps, for `rollout plan` and the dashboard.

Its own module so that the dashboard (`rollout status --format markdown`) does not import
what `rollout plan` needs besides it (the evidence, the pipeline, the traffic query's HTTP
source): ~60 ms of start-up it would pay on every run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from runner.load.durations import format_duration
from runner.model import RolloutPlan, RolloutState
from runner.model.state import Phase
from runner.timefmt import utc_iso


def _number(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(v, 4)


def timeline(plan: RolloutPlan, state: RolloutState | None, now: datetime) -> dict[str, Any]:
    """The earliest schedule of the remaining steps: each step holds its wait, then the next.

    Earliest, because a step also needs passing gates and an advance run after its wait.
    """
    first = 0
    start = max(now, plan.start_at) if plan.start_at else now
    basis = "from the merge" if not plan.start_at or plan.start_at <= now else "from start_at"
    if state is not None and state.phase is Phase.PROGRESSING and state.step_started_at:
        first, start, basis = state.step, state.step_started_at, "from the current step's start"
    steps = []
    t = start
    last = len(plan.steps) - 1
    for i in range(len(plan.steps)):
        # the last step holds only a bake: gates watched for that long before completion
        wait = (plan.bake or 0.0) if i == last else plan.step_wait(i)
        if i >= first:
            steps.append({
                "index": i,
                "percentage": _number(plan.steps[i].percentage),
                "wait": format_duration(wait),
                "start": utc_iso(t),
                "end": utc_iso(t + timedelta(seconds=wait)),
                "gates": [f"{g.name} {g.threshold}" + (" (dry run)" if g.dry_run else "")
                          for g in plan.step_gates(i)],
                # a person's `rollout approve` is needed before the rollout moves here
                "approval": plan.steps[i].approval,
                "bake": i == last and bool(plan.bake),
            })
            t += timedelta(seconds=wait)
    return {"basis": basis, "start": utc_iso(start), "complete_at": utc_iso(t), "steps": steps,
            "total": format_duration((t - start).total_seconds()),
            "seconds": (t - start).total_seconds()}
