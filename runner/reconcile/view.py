"""What ``rollout status`` shows: one plain record per rollout (pure; renderers format it)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from runner.load.statefile import state_to_dict
from runner.model import Phase, Repository, RolloutPlan, RolloutState
from runner.reconcile.decide import awaiting_approval, bake_ends_at, next_step_at
from runner.reconcile.freeze import FROZEN, HALTED
from runner.timefmt import utc_iso

FIELDS = ("flag", "plan", "phase", "current_percentage", "step", "steps", "step_started_at",
          "next_step_at", "last_gates", "reason", "started_at", "plan_digest", "plan_changed",
          "baking", "bake_ends_at", "awaiting_approval", "approved_step", "approved_by")
#: Present only while the kill switch holds the flag off (records without it read as 0.2's).
KILL_SWITCH = "kill_switch"


def kill_switches(repo: Repository, env: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    """Which rollouts the kill switch holds and why (flag -> the hold's reason): the
    repository's ``EMERGENCY_SHUTDOWN`` (committed in ``[tool.rollout]`` or in ``env``, the
    runner's environment) holds every flag, a flag's own override in ``env`` that serves
    another variant than the rollout's holds that flag; with the error line of an
    unrecognised ``EMERGENCY_SHUTDOWN`` (it fails closed), else None. By the SDK's rules
    (``runner.evaluate.environment``); computed once per run (``runs.advance``) or status,
    and passed to ``decide`` and :func:`record`."""
    variables = {"EMERGENCY_SHUTDOWN", *(f.env_var for f in repo.flags.values())}
    if not repo.config.emergency_shutdown and not any(
            (env.get(v) or "").strip() for v in variables):
        return {}, None  # nothing set: no rule to read (start-up: the evaluate package, below)
    from runner.evaluate.environment import kill_switch, override_hold  # ~50 ms

    switch = kill_switch(repo.config.emergency_shutdown, env)
    held: dict[str, str] = {}
    for flag in sorted(set(repo.plans) | set(repo.states)):
        if switch.on:
            held[flag] = switch.reason
        elif (f := repo.flags.get(flag)) is not None and (why := override_hold(f, env)):
            held[flag] = why
    return held, switch.error


def _num(p: float) -> float | int:
    return int(p) if float(p).is_integer() else p


def record(flag: str, plan: RolloutPlan | None, state: RolloutState | None,
           now: datetime, kill_switch: str | None = None,
           stop: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The status of one rollout. ``step`` is the index in ``steps`` (as in the state file),
    so ``steps[step] == current_percentage`` while the plan is unchanged. ``kill_switch``:
    why the kill switch holds the flag off (:func:`kill_switches`), shown as it is: the
    record's ``kill_switch`` field, present only then."""
    row = _record(flag, plan, state, now, kill_switch)
    if kill_switch:
        row[KILL_SWITCH] = kill_switch
        row["next_step_at"] = None  # nothing advances while it holds
        if state is None and row["reason"].startswith("not started"):
            row["reason"] = f"not started: {kill_switch}; starts once it is lifted"
    if stop:
        _stopped(row, state, stop)
    return row


def _stopped(row: dict[str, Any], state: RolloutState | None, stop: Mapping[str, Any]) -> None:
    """A halt or a freeze window (``runner.reconcile.freeze.stop_record``) onto ``row``: said
    (``halted``, ``frozen``), and no next step before it is over."""
    row.update(stop)
    halted, frozen = stop.get(HALTED), stop.get(FROZEN)
    if halted is not None:
        row["next_step_at"] = None  # until a person lifts it
    elif frozen is not None and row["next_step_at"] is not None:
        row["next_step_at"] = max(row["next_step_at"], frozen["until"])  # both UTC ISO "Z"
    text = (halted or frozen or {}).get("text", "")
    if state is None and row["reason"].startswith("not started;"):
        row["reason"] = f"not started: {text}; starts once it is over"


def _record(flag: str, plan: RolloutPlan | None, state: RolloutState | None,
            now: datetime, kill_switch: str | None) -> dict[str, Any]:
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


def records(repo: Repository, now: datetime, held: Mapping[str, str] | None = None,
            stop: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    flags = sorted(set(repo.plans) | set(repo.states))
    return [record(f, repo.plans.get(f), repo.states.get(f), now, (held or {}).get(f), stop)
            for f in flags]


def environment_record(repo: Repository, view: Repository, row: dict[str, Any],
                       now: datetime) -> None:
    """``row`` (a record of ``view``, one environment of ``repo``) with its ``environment``
    and, while it has not started there, why: rejected, or waiting for the previous
    environment (``promotion``)."""
    # start-up: promotion only for repositories with environments
    from runner.reconcile.promotion import refusal

    env = view.environment
    row["environment"] = env
    flag = str(row["flag"])
    plan = view.plans.get(flag)
    if plan is None or flag in view.states or env is None:
        return
    names = [e.name for e in repo.environments]
    upstream = [(n, repo.environment_states.get(n, {}).get(flag))
                for n in names[:names.index(env)] if flag in repo.environment_plans.get(n, {})]
    why = refusal(plan, upstream, now) if upstream else None
    if why is not None:
        row["reason"] = f"not started: {why}"
