"""What ``rollout status`` shows: one plain record per rollout (pure; renderers format it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runner.load.statefile import state_to_dict
from runner.model import Phase, Repository, RolloutPlan, RolloutState
from runner.reconcile.decide import awaiting_approval, bake_ends_at, next_step_at
from runner.timefmt import utc_iso

FIELDS = ("flag", "plan", "phase", "current_percentage", "step", "steps", "step_started_at",
          "next_step_at", "last_gates", "reason", "started_at", "plan_digest", "plan_changed",
          "baking", "bake_ends_at", "awaiting_approval", "approved_step", "approved_by")


def _num(p: float) -> float | int:
    return int(p) if float(p).is_integer() else p


def record(flag: str, plan: RolloutPlan | None, state: RolloutState | None,
           now: datetime) -> dict[str, Any]:
    """The status of one rollout. ``step`` is the index in ``steps`` (as in the state file),
    so ``steps[step] == current_percentage`` while the plan is unchanged."""
    steps = [_num(p) for p in plan.percentages] if plan else []
    if state is None:
        assert plan is not None
        waiting = plan.start_at is not None and now < plan.start_at
        reason = (f"starts at {utc_iso(plan.start_at)}" if waiting
                  else "not started; the next `rollout advance` starts it")
        return {"flag": flag, "plan": plan.name, "phase": Phase.PENDING.value,
                "current_percentage": 0, "step": 0, "steps": steps, "step_started_at": None,
                "next_step_at": utc_iso(plan.start_at) if waiting else None, "last_gates": [],
                "reason": reason, "started_at": None, "plan_digest": plan.digest,
                "plan_changed": False, "baking": False, "bake_ends_at": None,
                "awaiting_approval": None, "approved_step": None, "approved_by": None}
    d = state_to_dict(state)
    current = plan is not None and plan.digest == state.plan_digest
    bake_end = bake_ends_at(plan, state) if plan is not None and current else None
    awaiting = awaiting_approval(plan, state) if plan is not None and current else None
    nxt = next_step_at(plan, state) if plan and state.step + 1 < len(plan.steps) else None
    return {
        "flag": flag, "plan": state.plan, "phase": state.phase.value,
        "current_percentage": d["current_percentage"], "step": state.step, "steps": steps,
        "step_started_at": d["step_started_at"], "next_step_at": utc_iso(nxt),
        "last_gates": d["last_gates"],
        "reason": state.reason if plan else "orphaned: the plan was removed; the next "
        "`rollout advance` removes this state",
        "started_at": d["started_at"], "plan_digest": state.plan_digest,
        "plan_changed": plan is not None and plan.digest != state.plan_digest,
        # at 100 % with a bake: the gates are still watched until bake_ends_at
        "baking": bake_end is not None, "bake_ends_at": utc_iso(bake_end),
        # the index of the next step when it waits for a person's `rollout approve`
        "awaiting_approval": awaiting, "approved_step": state.approved_step,
        "approved_by": state.approved_by,
    }


def records(repo: Repository, now: datetime) -> list[dict[str, Any]]:
    flags = sorted(set(repo.plans) | set(repo.states))
    return [record(f, repo.plans.get(f), repo.states.get(f), now) for f in flags]
