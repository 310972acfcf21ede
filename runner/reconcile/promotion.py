"""Promotion between environments: when a plan may start in the next one, and what a rollback rejects.

Pure, like ``decide``: states and plans in, decisions out; time is ``now``. Only a repository
with ``[tool.rollout.environments]`` reaches this module (docs/environments.md):

- a plan starts in environment i > 0 only when environment i-1 completed it, healthy, at
  least ``promote_after`` ago (:func:`promotion_wait`); until then it is pending, no commit;
- a completed environment keeps its gates evaluated while a later one has not completed
  (:func:`monitor`); a failure there rolls it back;
- a rollback of a plan version in an earlier environment rejects that version
  (:func:`rejection`): a later environment does not start it, one that runs is paused
  (:func:`promote`), until ``rollout retry`` in the rejecting environment or a new version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

from runner.load.durations import format_duration
from runner.model import GateResult, OnFailure, Phase, RolloutPlan, RolloutState, Verdict
from runner.percent import pct
from runner.reconcile.decide import Action, Decision, aggregate, fresh_state, gate_summary
from runner.timefmt import utc_iso

#: What the reason of a rollout paused because an earlier environment rejected its version
#: holds (after "paused at 5%"): the runner starts it again once the rejection is lifted.
REJECTED_MARK = ": rejected: "

#: An earlier environment's state of the same flag: (environment, its state after this run).
Upstream = tuple[str, RolloutState | None]


def stamp(d: Decision, plan: RolloutPlan | None, now: datetime) -> Decision:
    """``d`` with its new state saying its environment, the plan version it runs and, when
    this decision completes it, when (``completed_at``: the next environment's soak counts
    from there)."""
    after = d.after
    if after is None or d.environment is None:
        return d
    changes: dict[str, object] = {"environment": d.environment}
    if plan is not None:
        changes["plan_version"] = plan.version
    if after.phase is Phase.COMPLETED and (d.before is None
                                            or d.before.phase is not Phase.COMPLETED):
        changes["completed_at"] = now
    elif after.phase is not Phase.COMPLETED:
        changes["completed_at"] = None
    return dataclasses.replace(d, after=dataclasses.replace(after, **changes))  # type: ignore[arg-type]


def rejection(plan: RolloutPlan, upstream: Sequence[Upstream]) -> str | None:
    """Why ``plan``'s version is rejected for this environment (an earlier environment
    rolled this very version back), or None."""
    for env, st in upstream:
        if st is not None and st.phase is Phase.ROLLED_BACK and st.plan_version == plan.version:
            when = utc_iso(st.step_started_at) if st.step_started_at else "an earlier run"
            return (f"rolled back in {env} at {when}; `rollout retry {plan.flag} --env {env}` "
                    "or a new plan version re-admits it")
    return None


def promotion_wait(plan: RolloutPlan, previous: Upstream | None, now: datetime) -> str | None:
    """Why ``plan`` may not start in its environment yet: the previous environment has not
    completed it, its last evaluation failed, or ``promote_after`` is not over; None: it may."""
    if previous is None:
        return None
    env, st = previous
    if st is None:
        return f"waiting for {env}: not started there"
    if st.phase is not Phase.COMPLETED:
        return f"waiting for {env}: {st.phase.value} at {pct(st.current_percentage)}%"
    if st.last_gates and aggregate(st.last_gates) is Verdict.FAIL:
        return f"waiting for {env}: completed, but its last evaluation failed"
    done = st.completed_at or st.step_started_at or now
    due = done + timedelta(seconds=plan.promote_after)
    if now < due:
        ago = format_duration(max(0, int((now - done).total_seconds())))
        return (f"waiting for {env}: completed {ago} ago, promote_after "
                f"{format_duration(plan.promote_after)} (at {utc_iso(due)})")
    return None


def refusal(plan: RolloutPlan, upstream: Sequence[Upstream], now: datetime) -> str | None:
    """Why a start of ``plan`` in its environment is refused now (rejected, or not promoted
    yet), for a person's ``rollout retry``/``resume`` as for the runner; None: it may start."""
    rejected = rejection(plan, upstream)
    if rejected is not None:
        return f"rejected: {rejected}"
    return promotion_wait(plan, upstream[-1] if upstream else None, now)


def _paused_by_rejection(state: RolloutState) -> bool:
    return state.phase is Phase.PAUSED and REJECTED_MARK in state.reason


def promote(d: Decision, plan: RolloutPlan, upstream: Sequence[Upstream],
            now: datetime) -> Decision:
    """The decision of a later environment's rollout with the promotion rule applied.
    ``upstream``: the earlier environments this plan runs in, in order, with their states
    after this run's decisions. A rollback, pause or hold decided here stands."""
    if not upstream or d.action in (Action.ROLLBACK, Action.PAUSE, Action.HOLD):
        return d
    state = d.before
    rejected = rejection(plan, upstream)
    if rejected is not None:
        if state is not None and state.phase is Phase.PROGRESSING:
            at = f"{pct(state.current_percentage)}%"
            reason = f"paused at {at}{REJECTED_MARK}{rejected}"
            after = dataclasses.replace(state, phase=Phase.PAUSED, reason=reason)
            return dataclasses.replace(d, action=Action.PAUSE, after=after, reason=reason,
                                       gates=())
        if state is None or state.phase is Phase.PENDING:
            return dataclasses.replace(d, action=None, after=state, gates=(),
                                       reason=f"pending: rejected: {rejected}")
        return d
    if state is None:
        if d.action is None:  # pending for a reason of its own (start_at, kill switch)
            return d
        wait = promotion_wait(plan, upstream[-1], now)
        if wait is not None:
            return dataclasses.replace(d, action=None, after=None, gates=(),
                                       reason=f"pending: {wait}")
        return d
    if _paused_by_rejection(state) and d.action is None:
        if promotion_wait(plan, upstream[-1], now) is not None:
            return d
        reason = (f"re-admitted: {upstream[-1][0]} completed the plan again; starts again "
                  f"from step 1 ({pct(plan.steps[0].percentage)}%)")
        after = fresh_state(plan, now, Phase.PROGRESSING, 0, reason)
        return dataclasses.replace(d, action=Action.START, after=after, reason=reason)
    return d


def monitored(plan: RolloutPlan, state: RolloutState | None,
              later: Sequence[RolloutState | None]) -> bool:
    """Whether a completed rollout keeps having its gates evaluated: while a later
    environment (``later``: its states there) has not completed the plan."""
    return (state is not None and state.phase is Phase.COMPLETED and bool(later)
            and any(s is None or s.phase is not Phase.COMPLETED for s in later))


def monitor(plan: RolloutPlan, state: RolloutState, gates: Sequence[GateResult],
            now: datetime) -> Decision:
    """A completed rollout's gates, evaluated while a later environment has not completed
    it: a failure counts, and at ``failure_limit`` the plan's ``on_failure`` (a rollback
    rejects the version); anything else records nothing."""
    gates = tuple(gates)
    base = Decision(plan.flag, plan.name, None, state, state, state.reason, gates=gates,
                    plan_digest=plan.digest, environment=plan.environment)
    if state.last_evaluated_at == now or aggregate(gates) is not Verdict.FAIL:
        return base
    failures = state.failures + 1
    observed = dataclasses.replace(state, failures=failures, last_gates=gates,
                                   last_evaluated_at=now,
                                   consecutive_failures=state.consecutive_failures + 1)
    failing = gate_summary(gates, Verdict.FAIL)
    if failures < plan.failure_limit:
        reason = (f"completed, monitored: gate failed ({failures} of {plan.failure_limit} "
                  f"failed evaluations allowed): {failing}")
        return dataclasses.replace(base, action=Action.OBSERVE, reason=reason,
                                   after=dataclasses.replace(observed, reason=reason))
    at = f"{pct(state.current_percentage)}%"
    if plan.on_failure is OnFailure.PAUSE:
        reason = f"paused at {at}: gate failed after completion (monitored): {failing}"
        after = dataclasses.replace(observed, phase=Phase.PAUSED, reason=reason)
        return dataclasses.replace(base, action=Action.PAUSE, after=after, reason=reason)
    reason = f"rolled back at {at}: gate failed after completion (monitored): {failing}"
    after = dataclasses.replace(observed, phase=Phase.ROLLED_BACK, step=0,
                                current_percentage=0.0, step_started_at=now, reason=reason,
                                approved_step=None, approved_by=None)
    return dataclasses.replace(base, action=Action.ROLLBACK, after=after, reason=reason)
