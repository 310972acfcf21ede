"""Replay one rollout plan over past looks: the runner's decisions, stepped in memory.

Pure: the state starts where given (none: before the rollout starts), each look asks the
injected evaluator for the gate results at that moment (``rollout simulate`` reads a
Prometheus range or a recorded timeline through ``runner.gates.assess``) and
:func:`runner.reconcile.decide.decide` steps the state, as ``rollout advance`` would have
at each of those runs. Nothing is written, nothing read here.

What the replay assumes, and says so:

- a step that needs a person's approval is approved in advance: the rollout moves there as
  soon as the step before's wait is over and its gates pass (:data:`ASSUMED_APPROVER`);
- nobody pauses, resumes, reverts or edits the plan, no kill switch holds the flag and
  nobody halts the line (the freeze windows, when the caller gives them, hold as they do);
- the rollout stops at its first completion, rollback or pause (a person would take over).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from runner.errors import UsageError
from runner.gates.request import GateRequest
from runner.model import GateResult, Phase, RolloutPlan, RolloutState
from runner.reconcile.decide import Action, Decision, awaiting_approval, decide, needs_evaluation

#: Gate results of one request at one past moment.
Evaluate = Callable[[GateRequest, datetime], Sequence[GateResult]]

#: Who the replay records as the approver of a step that needs approval.
ASSUMED_APPROVER = "rollout simulate (assumed)"

#: The most looks one replay takes (a week at 5-minute looks is 2,016).
MAX_LOOKS = 100_000


class TooManyLooks(UsageError):
    """The range asked for holds more than :data:`MAX_LOOKS` looks (exit 2)."""


def look_times(since: datetime, until: datetime, every: timedelta) -> list[datetime]:
    """The runs from ``since`` to ``until`` inclusive, every ``every``."""
    if every <= timedelta(0):
        raise ValueError("the interval between looks must be positive")
    if until < since:
        raise ValueError("the range ends before it starts")
    count = int((until - since) / every) + 1
    if count > MAX_LOOKS:
        raise TooManyLooks(f"{count:,} looks, more than {MAX_LOOKS:,}")
    return [since + i * every for i in range(count)]


#: What each look did, as the simulation names it: the runner's action, or ``hold`` when
#: it records no change of phase (waiting, holding on no data, a failure below the limit).
KINDS = {Action.START: "start", Action.ADVANCE: "advance", Action.COMPLETE: "complete",
         Action.ROLLBACK: "rollback", Action.PAUSE: "pause"}


@dataclass(frozen=True, slots=True)
class Look:
    """One run of the runner in the replay."""

    at: datetime
    decision: Decision
    #: The step (an index) this look moved to under an approval the replay assumed.
    assumed_approval: int | None = None

    @property
    def kind(self) -> str:
        action = self.decision.action
        if action is None and self.decision.before is None:
            return "pending"
        return KINDS.get(action, "hold") if action is not None else "hold"


@dataclass(frozen=True, slots=True)
class Replay:
    """Every look of one rollout's replay, and where it ended."""

    plan: RolloutPlan
    looks: tuple[Look, ...]
    #: The state after the last look (None: it never started).
    final: RolloutState | None

    @property
    def outcome(self) -> str:
        """``completed``, ``rolled_back``, ``paused``, ``progressing`` (still running at the
        end of the range) or ``pending`` (never started)."""
        return self.final.phase.value if self.final is not None else "pending"

    @property
    def ended_at(self) -> datetime | None:
        """When it completed, was rolled back or paused (None: it was still running)."""
        if self.final is None or self.final.phase is Phase.PROGRESSING:
            return None
        return self.looks[-1].at

    @property
    def started_at(self) -> datetime | None:
        return next((look.at for look in self.looks if look.kind == "start"), None)


def _approved_ahead(plan: RolloutPlan, state: RolloutState) -> RolloutState:
    """``state`` with the next step's approval recorded, when it needs one."""
    step = awaiting_approval(plan, state)
    if step is None:
        return state
    return dataclasses.replace(state, approved_step=step, approved_by=ASSUMED_APPROVER)


def replay(plan: RolloutPlan, looks: Sequence[datetime], evaluate: Evaluate, *,
           treatment_variant: str = "on", control_variant: str = "off",
           state: RolloutState | None = None,
           line_stop: Callable[[datetime], str | None] | None = None) -> Replay:
    """The decisions of ``plan``'s rollout at each of ``looks`` (in time order), from
    ``state`` (None: not started yet), until it completes, is rolled back or paused.
    ``line_stop``: why nothing may move forward at a moment (a freeze window:
    ``runner.reconcile.freeze.line_stop``), held as the runner holds it; None: nothing holds."""
    done: list[Look] = []
    for now in looks:
        if state is not None:
            state = _approved_ahead(plan, state)
        gates = None
        if needs_evaluation(plan, state, None, now):
            assert state is not None
            request = GateRequest(plan.flag, plan, state.step, state.current_percentage,
                                  state.step_started_at, treatment_variant, control_variant)
            gates = tuple(evaluate(request, now))
        decision = decide(plan, state, gates, now,
                          line_stop=line_stop(now) if line_stop is not None else None)
        assumed = None
        after = decision.after
        if (decision.action in (Action.ADVANCE, Action.COMPLETE) and after is not None
                and decision.before is not None and after.step != decision.before.step
                and plan.steps[after.step].approval):
            assumed = after.step
        done.append(Look(now, decision, assumed))
        if decision.action is not None:  # no action: nothing committed, the next run
            state = after                  # reads the state as it was
        if state is not None and state.phase is not Phase.PROGRESSING:
            break
    return Replay(plan, tuple(done), state)


def promotion_look(upstream: Replay, plan: RolloutPlan, looks: Sequence[datetime]
                   ) -> int | None:
    """The index in ``looks`` of the first run at which ``plan`` may start in the next
    environment after ``upstream`` (the previous environment's replay): once it completed and
    ``promote_after`` is over (``runner.reconcile.promotion``); None when it never may in
    ``looks`` (the upstream rolled back — the version is rejected —, paused, still ran at the
    end of its range, or the soak ends after the last look)."""
    if upstream.outcome != "completed" or upstream.ended_at is None:
        return None
    due = upstream.ended_at + timedelta(seconds=plan.promote_after)
    return next((i for i, t in enumerate(looks) if t >= due), None)


__all__ = ["ASSUMED_APPROVER", "KINDS", "MAX_LOOKS", "Evaluate", "Look", "Replay",
           "TooManyLooks", "look_times", "promotion_look", "replay"]
