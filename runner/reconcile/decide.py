"""The decision: (plan, state, gate results, who last changed the state, now) -> what to do.

Pure: no I/O, no clock. The state machine (inspired by Argo Rollouts' steps and analysis):

    (no state) --start--> progressing --advance--> progressing ... --complete--> completed
    progressing at 100 % with a bake --bake over, gates passing--> completed
    progressing --next step has approval: true, none recorded--> progressing (waits there)
    progressing|paused --approve (a person)--> the same, the next approval step approved
    progressing --failure_limit failed evaluations--> rolled_back (on_failure rollback) |
        paused (pause); neither a pass in between nor an advance resets the count
    progressing --error x error_limit / no data past the deadline--> paused
    progressing --plan edited--> progressing (replan: analysis of the step restarts)
    any --state changed by someone else (git revert...)--> paused (hold), until `resume`
    progressing --kill switch holds the flag off--> progressing, held (recorded once; gates
        still watched: a failure still rolls back) --switch lifted--> progressing (resume:
        the step's analysis restarts at the same percentage); no start while it holds
    paused --resume--> progressing;  rolled_back|paused --retry--> progressing at step 0

One transition per rollout per run. ``observe`` records counters that must survive to the
next run (failures below ``failure_limit``, source errors below ``error_limit``) without
changing the phase.

Time: ``now`` is whatever the run says. A time recorded by an earlier run that lies after
``now`` (a run with a ``--now`` in the future) never blinds a later one: only an evaluation
at exactly the recorded moment counts as already taken, so a failing gate always acts.
Beyond :data:`CLOCK_SKEW`, such a time cannot be counted from (a wait measured from it would
never end, or end early), so anything but a failure pauses the rollout for a person.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from runner.errors import Declined
from runner.load.durations import format_duration
from runner.model import (
    Flag,
    GateResult,
    OnFailure,
    Phase,
    RolloutPlan,
    RolloutState,
    Verdict,
)
from runner.percent import pct
from runner.timefmt import utc_iso

#: How much later than a run's ``now`` a recorded time may be and still be counted from:
#: the clocks of two runners differ a little. The CLI refuses to record a ``--now`` further
#: ahead of the machine's clock than this.
CLOCK_SKEW = timedelta(minutes=5)


class Action(StrEnum):
    START = "start"
    ADVANCE = "advance"
    COMPLETE = "complete"
    ROLLBACK = "rollback"
    PAUSE = "pause"
    RESUME = "resume"
    RETRY = "retry"
    HOLD = "hold"
    REPLAN = "replan"
    CLEANUP = "cleanup"
    #: A person approved the next step that needs approval (``rollout approve``).
    APPROVE = "approve"
    #: Not a phase change: counters that must persist (failure/error streaks).
    OBSERVE = "observe"


@dataclass(frozen=True, slots=True)
class LastChange:
    """The last commit that changed a rollout's state file, as git history tells it."""

    sha: str
    author: str  # "Name <email>"
    #: The runner's own commit (it carries Rollout-Action trailers).
    by_runner: bool
    #: For a ``git revert``: the commit it reverts, and whether that was the runner's.
    reverted_sha: str | None = None
    reverted_by_runner: bool = False
    subject: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    flag: str
    plan: str  # the plan's name (state file stem)
    #: None: nothing to record (waiting, pending, finished...).
    action: Action | None
    before: RolloutState | None
    #: The state to write; None with CLEANUP (the file is removed) or when there is none.
    after: RolloutState | None
    reason: str
    gates: tuple[GateResult, ...] = ()
    reverted_commit: str | None = None
    reverted_by: str | None = None
    requested_by: str | None = None
    #: APPROVE only: who approved (``Rollout-Approved-By``).
    approved_by: str | None = None
    #: The plan digest the commit records.
    plan_digest: str = ""
    #: False for rollouts outside the run's FLAG selection (kept for the dependents rule).
    selected: bool = True
    #: Why, for machines (notifications): ``progress_deadline`` for the pause of a rollout
    #: that had no conclusive evaluation in time; "" otherwise.
    cause: str = ""
    #: The environment the rollout runs in (the plan's); None without environments.
    environment: str | None = None

    @property
    def key(self) -> str:
        """The rollout this decision is of, as a run's report keys it: the flag, or
        ``flag@environment`` in a repository with environments."""
        return self.flag if self.environment is None else f"{self.flag}@{self.environment}"

    @property
    def changes(self) -> bool:
        return self.action is not None

    @property
    def from_percentage(self) -> float:
        return self.before.current_percentage if self.before else 0.0

    @property
    def to_percentage(self) -> float:
        return self.after.current_percentage if self.after else 0.0


# --- helpers -------------------------------------------------------------------------------


#: The comparison gates' sample-ratio check (runner.gates.compare.SAMPLE_RATIO; named here
#: so that deciding never imports the gates).
SAMPLE_RATIO = "compare.sample_ratio"


def aggregate(gates: Sequence[GateResult]) -> Verdict:
    """The verdict of an evaluation: dry-run gates never count; a failure beats an error
    (it is conclusive evidence), an error beats no data, and no blocking gate passes."""
    blocking = [g.verdict for g in gates if not g.dry_run]
    for v in (Verdict.FAIL, Verdict.ERROR, Verdict.INCONCLUSIVE):
        if v in blocking:
            return v
    return Verdict.PASS


def gate_summary(gates: Sequence[GateResult], verdict: Verdict | None = None) -> str:
    chosen = [g for g in gates if verdict is None or (g.verdict is verdict and not g.dry_run)]
    parts = []
    for g in chosen:
        value = "none" if g.value is None else f"{g.value:g}"
        # the detail says why when there is no value (no data, the source's error)
        detail = f": {g.detail}" if g.detail and g.value is None else ""
        parts.append(f"{g.name} = {value} ({g.threshold or 'no threshold'}){detail}")
    return "; ".join(parts)


def step_for_percentage(plan: RolloutPlan, percentage: float) -> int:
    """The step holding ``percentage``, else the nearest lower one (step 0 when none)."""
    best = 0
    for i, p in enumerate(plan.percentages):
        if p <= percentage:
            best = i
    return best


def next_step_at(plan: RolloutPlan, state: RolloutState) -> datetime | None:
    """When the current step may advance (its wait is over), for a progressing rollout."""
    if state.phase is not Phase.PROGRESSING or state.step_started_at is None:
        return None
    if state.step >= len(plan.steps):
        return None
    return state.step_started_at + timedelta(seconds=plan.step_wait(state.step))


def bake_ends_at(plan: RolloutPlan, state: RolloutState) -> datetime | None:
    """When the bake of a progressing rollout at its last step ends (None: not baking)."""
    if (not plan.bake or state.phase is not Phase.PROGRESSING or state.step_started_at is None
            or state.step != len(plan.steps) - 1
            or state.current_percentage < plan.steps[-1].percentage):
        return None
    return state.step_started_at + timedelta(seconds=plan.bake)


def awaiting_approval(plan: RolloutPlan, state: RolloutState) -> int | None:
    """The index of the step the rollout moves to next when that step needs an approval
    not yet recorded; None when it needs none (or has it)."""
    if state.phase not in (Phase.PROGRESSING, Phase.PAUSED) or state.step >= len(plan.steps):
        return None
    nxt = next_step_index(plan, state)
    if nxt is None or not plan.steps[nxt].approval or state.approved_step == nxt:
        return None
    return nxt


def next_step_index(plan: RolloutPlan, state: RolloutState) -> int | None:
    """The step the rollout moves to next: its own step while below that step's percentage
    (after a replan, see ``_restart``), else the following one; None at the last."""
    if state.current_percentage < plan.steps[state.step].percentage:
        return state.step
    return state.step + 1 if state.step + 1 < len(plan.steps) else None


def _unapproved(state: RolloutState) -> RolloutState:
    return dataclasses.replace(state, approved_step=None, approved_by=None)


def fresh_state(plan: RolloutPlan, now: datetime, phase: Phase, step: int, reason: str,
                started_at: datetime | None = None) -> RolloutState:
    return RolloutState(
        flag=plan.flag, plan=plan.name, phase=phase, step=step,
        current_percentage=plan.steps[step].percentage,
        started_at=started_at or now, step_started_at=now, plan_digest=plan.digest,
        last_evaluated_at=None, reason=reason,
    )


def _restart(state: RolloutState, plan: RolloutPlan, now: datetime, phase: Phase, reason: str,
             step: int | None = None) -> RolloutState:
    """The same rollout with a new analysis of a step: counters and clocks reset."""
    step = step_for_percentage(plan, state.current_percentage) if step is None else step
    # below the new plan's first step: stay there (never more exposure without a gate);
    # the next advance moves to the first step
    percentage = min(plan.steps[step].percentage, state.current_percentage)
    return dataclasses.replace(
        state, plan=plan.name, phase=phase, step=step,
        current_percentage=percentage, step_started_at=now,
        plan_digest=plan.digest, consecutive_failures=0, consecutive_inconclusive=0,
        consecutive_errors=0, failures=0, last_evaluated_at=None, reason=reason,
    )


def _decision(plan: RolloutPlan, action: Action | None, before: RolloutState | None,
              after: RolloutState | None, reason: str, *, gates: tuple[GateResult, ...] = (),
              reverted_commit: str | None = None, reverted_by: str | None = None,
              requested_by: str | None = None, approved_by: str | None = None,
              cause: str = "") -> Decision:
    return Decision(flag=plan.flag, plan=plan.name, action=action, before=before, after=after,
                    reason=reason, gates=gates, reverted_commit=reverted_commit,
                    reverted_by=reverted_by, requested_by=requested_by, approved_by=approved_by,
                    plan_digest=plan.digest, cause=cause, environment=plan.environment)


# --- the automatic decision ----------------------------------------------------------------


def needs_evaluation(plan: RolloutPlan, state: RolloutState | None,
                     last_change: LastChange | None, now: datetime) -> bool:
    """Whether :func:`decide` will look at gate results for this rollout at ``now``."""
    if state is None or state.phase is not Phase.PROGRESSING:
        return False
    if last_change is not None and not last_change.by_runner:
        return False
    if state.plan_digest != plan.digest:
        return False
    # only the very same moment was already counted: a recorded time after ``now`` (an
    # earlier run's --now in the future) must not suppress this evaluation
    return state.last_evaluated_at is None or now != state.last_evaluated_at


def hold_reason(change: LastChange) -> str:
    if change.reverted_sha:
        return (f"held: {change.author} reverted {change.reverted_sha[:7]} in "
                f"{change.sha[:7]}; a person took charge, run `rollout resume` to continue")
    return (f"held: the state was changed by {change.author} in {change.sha[:7]}, not by the "
            "runner; run `rollout resume` to continue")


#: How the two automatic pauses for metrics that could not be read say why, after "paused at
#: 5%: " (error_limit's and the progress deadline's; see :func:`paused_unreadable`).
SOURCE_FAILED = "the metric source failed "
NO_CONCLUSIVE = "no conclusive evaluation for "
_PAUSED_UNREADABLE = re.compile(rf"paused at \S+%: (?:{NO_CONCLUSIVE}|{SOURCE_FAILED})")


def paused_unreadable(state: RolloutState | None) -> bool:
    """Whether ``state`` is paused by the runner because no evaluation could read or conclude
    on its metrics (error_limit, progress deadline): not a person's pause, nor a sample-ratio
    or clock-skew one, which say another reason."""
    return (state is not None and state.phase is Phase.PAUSED
            and _PAUSED_UNREADABLE.match(state.reason) is not None)


#: What a kill-switch hold's reason holds (see :func:`held_by_kill_switch`).
KILL_SWITCH_MARK = ": kill switch: "


def held_by_kill_switch(state: RolloutState | None) -> bool:
    """Whether ``state`` was recorded held by the kill switch (its reason says so)."""
    return (state is not None and state.phase is Phase.PROGRESSING
            and state.reason.startswith("held at ") and KILL_SWITCH_MARK in state.reason)


def decide(plan: RolloutPlan, state: RolloutState | None, gates: Sequence[GateResult] | None,
           now: datetime, last_change: LastChange | None = None,
           kill_switch: str | None = None, line_stop: str | None = None) -> Decision:
    """The next state of one rollout. ``gates`` is the evaluation taken at ``now`` (None when
    :func:`needs_evaluation` said none was needed). ``kill_switch``: why the kill switch (the
    repository's ``EMERGENCY_SHUTDOWN`` or the flag's own override) holds the flag off, as
    the run read it ("kill switch: EMERGENCY_SHUTDOWN=true (committed in pyproject.toml)");
    None when nothing holds it. ``line_stop``: why no rollout may move forward now (a freeze
    window, a halt: ``runner.reconcile.freeze.line_stop``); a start, advance or completion
    is then held with that reason, nothing committed for it (:func:`_on_line_stop`)."""
    # Someone else changed the state (a git revert, a hand edit): never fight it.
    if last_change is not None and not last_change.by_runner:
        return _human_change(plan, state, now, last_change)

    if state is None:
        if plan.start_at is not None and now < plan.start_at:
            return _decision(plan, None, None, None,
                             f"pending: starts at {plan.start_at.isoformat()}")
        if kill_switch is not None:
            return _decision(plan, None, None, None,
                             f"pending: {kill_switch}; starts once it is lifted")
        if line_stop is not None:
            return _decision(plan, None, None, None,
                             f"pending: {line_stop}; starts once it is over")
        reason = f"started: step 1 of {len(plan.steps)} at {pct(plan.steps[0].percentage)}%"
        after = fresh_state(plan, now, Phase.PROGRESSING, 0, reason)
        if len(plan.steps) == 1 and plan.bake:
            after = dataclasses.replace(after, reason=reason + _baking(plan, now))
            return _decision(plan, Action.START, None, after, after.reason)
        if len(plan.steps) == 1:
            after = dataclasses.replace(after, phase=Phase.COMPLETED,
                                        reason="completed: the plan has a single step")
            return _decision(plan, Action.COMPLETE, None, after, after.reason)
        return _decision(plan, Action.START, None, after, reason)

    if state.phase is not Phase.PROGRESSING:
        return _decision(plan, None, state, state, state.reason or f"{state.phase.value}")

    if state.plan_digest != plan.digest:
        step = step_for_percentage(plan, state.current_percentage)
        reason = (f"plan edited: analysis restarts at step {step + 1} of {len(plan.steps)} "
                  f"({pct(min(plan.steps[step].percentage, state.current_percentage))}%)")
        # an approval was of a step of the old plan: the edited plan's steps need their own
        after = _unapproved(_restart(state, plan, now, Phase.PROGRESSING, reason, step))
        return _decision(plan, Action.REPLAN, state, after, reason)

    if gates is None or (state.last_evaluated_at is not None and now == state.last_evaluated_at):
        # this moment was already counted (a second run with the same --now): nothing new
        return _decision(plan, None, state, state, state.reason)
    if kill_switch is None and held_by_kill_switch(state) and aggregate(gates) is not Verdict.FAIL:
        return _lifted(plan, state, now)
    return _progress(plan, state, tuple(gates), now, kill_switch, line_stop)


def _lifted(plan: RolloutPlan, state: RolloutState, now: datetime) -> Decision:
    """The kill switch no longer holds a rollout it held: it goes on by itself, the step's
    analysis restarting at the same percentage (its wait counted from now: the flag served
    nobody while it was held). The failures counted so far are kept."""
    reason = (f"resumed at {pct(state.current_percentage)}%: the kill switch was lifted; the "
              f"analysis of step {state.step + 1} of {len(plan.steps)} restarts")
    after = dataclasses.replace(_restart(state, plan, now, Phase.PROGRESSING, reason,
                                         state.step), failures=state.failures)
    return _decision(plan, Action.RESUME, state, after, reason)


def _human_change(plan: RolloutPlan, state: RolloutState | None, now: datetime,
                  change: LastChange) -> Decision:
    reason = hold_reason(change)
    if state is None:  # e.g. the revert of the start commit removed the state file
        after = fresh_state(plan, now, Phase.PAUSED, 0, reason, started_at=now)
        after = dataclasses.replace(after, current_percentage=0.0)
    else:
        keep = state.phase if state.phase in (Phase.COMPLETED, Phase.ROLLED_BACK) else Phase.PAUSED
        after = dataclasses.replace(state, phase=keep, reason=reason, consecutive_failures=0,
                                    consecutive_inconclusive=0, consecutive_errors=0,
                                    failures=0)
    if change.reverted_sha:
        return _decision(plan, Action.HOLD, state, after, reason,
                         reverted_commit=change.reverted_sha, reverted_by=change.author)
    return _decision(plan, Action.PAUSE, state, after, reason)


# --- one evaluation of a progressing rollout: small assessors -----------------------------
#
# As Argo Rollouts assesses an analysis run: each assessor looks at one kind of outcome and
# returns the decision it calls for, or None when the outcome is not its own; ``_progress``
# asks them in order and the first answer wins. Every pause goes through ``_pause``.


@dataclass(frozen=True, slots=True)
class _Evaluation:
    """One evaluation of a progressing rollout, with what every assessor reads."""

    plan: RolloutPlan
    #: The state as the previous run left it.
    state: RolloutState
    gates: tuple[GateResult, ...]
    now: datetime
    verdict: Verdict
    #: ``state`` with this evaluation counted: its counters, gates and time.
    observed: RolloutState
    #: When the step's analysis started (``now`` when the state does not say).
    started: datetime
    #: Counters a previous run recorded that this evaluation resets (so it must be recorded).
    resets: bool
    #: Where the rollout stands, as reasons say it ("5%").
    at: str
    #: What the blocking gates did, as reasons say it: "gates passed" or "no gates".
    checked: str


def _evaluation(plan: RolloutPlan, state: RolloutState, gates: tuple[GateResult, ...],
                now: datetime) -> _Evaluation:
    verdict = aggregate(gates)
    streak = state.consecutive_failures + 1 if verdict is Verdict.FAIL else (
        0 if verdict is Verdict.PASS else state.consecutive_failures)
    # failures count over the whole rollout, not in a row (as Argo Rollouts counts the failed
    # measurements of a background analysis run): neither a pass in between nor an advance
    # forgives one, so a flapping feature cannot complete; a replan, resume or retry (a
    # reviewed plan change, a person's decision) starts the count again
    failures = state.failures + (1 if verdict is Verdict.FAIL else 0)
    errors = state.consecutive_errors + 1 if verdict is Verdict.ERROR else 0
    inconclusive = state.consecutive_inconclusive + 1 if verdict is Verdict.INCONCLUSIVE else 0
    observed = dataclasses.replace(
        state, consecutive_failures=streak, consecutive_errors=errors, failures=failures,
        consecutive_inconclusive=inconclusive, last_gates=gates, last_evaluated_at=now,
    )
    resets = ((state.consecutive_errors != 0 and errors == 0)
              or (state.consecutive_failures != 0 and streak == 0))
    return _Evaluation(
        plan=plan, state=state, gates=gates, now=now, verdict=verdict, observed=observed,
        started=state.step_started_at or now, resets=resets,
        at=f"{pct(state.current_percentage)}%",
        checked="gates passed" if any(not g.dry_run for g in gates) else "no gates",
    )


def _progress(plan: RolloutPlan, state: RolloutState, gates: tuple[GateResult, ...],
              now: datetime, kill_switch: str | None = None,
              line_stop: str | None = None) -> Decision:
    """The decision an evaluation of a progressing rollout calls for. The order is the rule:
    the kill switch (a failure still acts under it), a sample-ratio mismatch and a failure
    first (a failure is conclusive, and rolling back is the safe side), a clock that cannot
    be counted from before anything that counts time; a freeze or halt only last, over what
    the gates' pass would do."""
    evaluation = _evaluation(plan, state, gates, now)
    if kill_switch is not None:
        return _on_kill_switch(evaluation, kill_switch)
    for assess in (_on_sample_ratio_mismatch, _on_fail, _on_clock_skew, _on_error,
                   _on_inconclusive):
        decision = assess(evaluation)
        if decision is not None:
            return decision
    if line_stop is not None:
        return _on_line_stop(evaluation, line_stop)
    return _on_pass(evaluation)


def _pause(plan: RolloutPlan, before: RolloutState | None, base: RolloutState, reason: str, *,
           gates: tuple[GateResult, ...] = (), cause: str = "",
           requested_by: str | None = None) -> Decision:
    """The one way a rollout pauses, on an evaluation or at a person's request: ``base``
    (the state as it stands, this evaluation's counters included) paused, saying ``reason``.
    (``pause_dependents`` turns a decision already made into a pause, keeping its record.)"""
    after = dataclasses.replace(base, phase=Phase.PAUSED, reason=reason)
    return _decision(plan, Action.PAUSE, before, after, reason, gates=gates, cause=cause,
                     requested_by=requested_by)


def _observe(ev: _Evaluation, reason: str, record: bool = True) -> Decision:
    """No phase change: the counters recorded with ``reason`` (``record``), else nothing to
    record (the evaluation is not worth a commit)."""
    if record:
        after = dataclasses.replace(ev.observed, reason=reason)
        return _decision(ev.plan, Action.OBSERVE, ev.state, after, reason, gates=ev.gates)
    return _decision(ev.plan, None, ev.state, ev.observed, reason, gates=ev.gates)


def _on_kill_switch(ev: _Evaluation, kill_switch: str) -> Decision:
    """The kill switch holds the flag off: nobody is served the rollout, so nothing but a
    failure means anything (no data, a sample-ratio mismatch and source errors are what a
    flag served to nobody looks like). A failure acts as always (at ``failure_limit``, the
    plan's ``on_failure``); otherwise the rollout holds where it is, recorded once (and each
    time a failure is counted), until the switch is lifted (:func:`_lifted`)."""
    failed = _on_fail(ev)
    if failed is not None and failed.action is not Action.OBSERVE:
        return failed
    reason = (f"held at {ev.at}{KILL_SWITCH_MARK}{kill_switch.removeprefix('kill switch: ')}; "
              "it goes on by itself once the switch is lifted")
    if failed is not None:
        reason += f" ({failed.reason})"
    state = ev.state
    kept = dataclasses.replace(ev.observed, consecutive_errors=0, consecutive_inconclusive=0)
    record = (state.reason != reason or kept.failures != state.failures
              or kept.consecutive_failures != state.consecutive_failures
              or state.consecutive_errors != 0 or state.consecutive_inconclusive != 0)
    if record:
        after = dataclasses.replace(kept, reason=reason)
        return _decision(ev.plan, Action.OBSERVE, state, after, reason, gates=ev.gates)
    return _decision(ev.plan, None, state, kept, reason, gates=ev.gates)


#: What a freeze or halt holds: every move forward. A completion moves no traffic, but it
#: ends the watch of the gates, and during a freeze or an incident elsewhere that watch is
#: what still rolls back; it waits too.
_FORWARD = (Action.ADVANCE, Action.COMPLETE)


def _on_line_stop(ev: _Evaluation, line_stop: str) -> Decision:
    """A freeze window or a halt (``line_stop`` says which, until when, who, why): what the
    gates' pass calls for, unless it moves forward, which is held here, the counters recorded
    only when they must be (as a wait: no commit for the hold itself). Asked after every
    other assessor, so a failure still rolls back and no data still pauses."""
    passed = _on_pass(ev)
    if passed.action not in _FORWARD:
        return passed
    move = "completes" if passed.action is Action.COMPLETE else "advances"
    reason = f"held at {ev.at}: {line_stop}; {move} once it is over"
    return _observe(ev, reason, record=ev.resets)


def _on_sample_ratio_mismatch(ev: _Evaluation) -> Decision | None:
    """A sample-ratio mismatch: the assignment or the cohort telemetry is broken, and no
    comparison over it can be trusted: a person must look now, not after error_limit runs.
    A failure still acts first: it is conclusive, and rolling back is the safe side (a
    crash that cuts the treatment's requests shows as both a mismatch and a regression)."""
    mismatch = next((g for g in ev.gates if g.name == SAMPLE_RATIO and not g.dry_run
                     and g.verdict is Verdict.ERROR), None)
    if mismatch is None or ev.verdict is Verdict.FAIL:
        return None
    reason = f"paused at {ev.at}: {SAMPLE_RATIO}: {mismatch.detail}"
    return _pause(ev.plan, ev.state, ev.observed, reason, gates=ev.gates)


def _on_fail(ev: _Evaluation) -> Decision | None:
    """A failed evaluation: counted, and at ``failure_limit`` the plan's ``on_failure``."""
    if ev.verdict is not Verdict.FAIL:
        return None
    plan, failures = ev.plan, ev.observed.failures
    failing = gate_summary(ev.gates, Verdict.FAIL)
    if failures < plan.failure_limit:
        return _observe(ev, f"gate failed ({failures} of {plan.failure_limit} failed "
                            f"evaluations allowed in this rollout): {failing}")
    count = f" ({failures} failed evaluations in this rollout)" if plan.failure_limit > 1 else ""
    if plan.on_failure is not OnFailure.ROLLBACK:
        reason = f"paused at {ev.at}: gate failed{count}: {failing}"
        return _pause(plan, ev.state, ev.observed, reason, gates=ev.gates)
    reason = f"rolled back at {ev.at}: gate failed{count}: {failing}"
    after = dataclasses.replace(_unapproved(ev.observed), phase=Phase.ROLLED_BACK, step=0,
                                current_percentage=0.0, step_started_at=ev.now, reason=reason)
    return _decision(plan, Action.ROLLBACK, ev.state, after, reason, gates=ev.gates)


def _on_clock_skew(ev: _Evaluation) -> Decision | None:
    """A time the rollout recorded that lies after now by more than runners' clocks may
    differ (an earlier run's --now in the future, a wrong clock, or this run's --now in the
    past) cannot be counted from: the step's wait and the progress deadline would never end,
    or end early. A failure (asked first) still acts; anything else pauses for a person,
    whose `rollout resume` restarts the step's analysis at their time."""
    state, now = ev.state, ev.now
    recorded = max(t for t in (state.step_started_at, state.last_evaluated_at, now) if t)
    if recorded - now <= CLOCK_SKEW:
        return None
    reason = (f"paused at {ev.at}: the rollout recorded {recorded.isoformat()}, "
              f"{format_duration(int((recorded - now).total_seconds()))} after this run's "
              f"time {now.isoformat()}, beyond the allowed clock skew of "
              f"{format_duration(int(CLOCK_SKEW.total_seconds()))} (a --now in the future "
              "or a wrong clock); a failing gate still acts, `rollout resume` restarts "
              "the step's analysis")
    return _pause(ev.plan, state, ev.observed, reason, gates=ev.gates)


def _on_error(ev: _Evaluation) -> Decision | None:
    """A metric source failed: counted in a row, and at ``error_limit`` a pause."""
    if ev.verdict is not Verdict.ERROR:
        return None
    errors, limit = ev.observed.consecutive_errors, ev.plan.error_limit
    erring = gate_summary(ev.gates, Verdict.ERROR)
    if errors >= limit:
        reason = f"paused at {ev.at}: {SOURCE_FAILED}{errors} times in a row: {erring}"
        return _pause(ev.plan, ev.state, ev.observed, reason, gates=ev.gates)
    return _observe(ev, f"metric source error ({errors} of {limit} in a row): {erring}")


def _on_inconclusive(ev: _Evaluation) -> Decision | None:
    """No data: never an advance; past the progress deadline (counted from the step's start
    or the last conclusive evaluation), a pause."""
    if ev.verdict is not Verdict.INCONCLUSIVE:
        return None
    state, now = ev.state, ev.now
    since = ev.started
    last_evaluated = state.last_evaluated_at
    if state.consecutive_inconclusive == 0 and last_evaluated is not None and last_evaluated <= now:
        since = max(since, last_evaluated)  # the last conclusive evaluation
    missing = gate_summary(ev.gates, Verdict.INCONCLUSIVE)
    deadline = ev.plan.progress_deadline
    if now - since >= timedelta(seconds=deadline):
        reason = (f"paused at {ev.at}: {NO_CONCLUSIVE}"
                  f"{format_duration(int((now - since).total_seconds()))} (progress deadline "
                  f"{format_duration(deadline)}): {missing}")
        return _pause(ev.plan, state, ev.observed, reason, gates=ev.gates,
                      cause="progress_deadline")
    return _observe(ev, f"holding at {ev.at}: inconclusive, never an advance: {missing}",
                    record=ev.resets)


def _on_pass(ev: _Evaluation) -> Decision:
    """The gates pass (with no blocking gate at this step only under the plan's
    allow_no_gates): once the step's wait (or the bake) is over, the next step, an approval
    awaited, or the end."""
    plan, state = ev.plan, ev.state
    below = state.current_percentage < plan.steps[state.step].percentage  # see _restart
    at_last = state.step + 1 >= len(plan.steps) and not below
    bake = plan.bake if at_last else None  # the bake's seconds, at the last step
    wait = bake or plan.step_wait(state.step)
    due = ev.started + timedelta(seconds=wait)
    if ev.now < due or ev.now <= ev.started:
        return _waiting(ev, due, baking=bool(bake))
    if at_last:
        baked = f" after a bake of {format_duration(wait)}" if bake else ""
        reason = f"completed at {ev.at}{baked}: {ev.checked}"
        after = dataclasses.replace(ev.observed, phase=Phase.COMPLETED, reason=reason)
        return _decision(plan, Action.COMPLETE, state, after, reason, gates=ev.gates)
    nxt = state.step if below else state.step + 1
    awaiting = _awaiting_approval(ev, nxt)
    return awaiting if awaiting is not None else _advance(ev, nxt, wait)


def _waiting(ev: _Evaluation, due: datetime, baking: bool) -> Decision:
    """The gates pass, the step's wait (or the bake) is not over."""
    # whole seconds, rounded up: the clock's microseconds would read "271937ms"
    left = format_duration(math.ceil((due - ev.now).total_seconds())) if ev.now < due else "0s"
    waiting = "gates pass" if ev.checked == "gates passed" else "no gates"
    if baking:
        reason = (f"baking at {ev.at}: {waiting}, {left} of the bake left (until "
                  f"{utc_iso(due)}); completed when it is over")
    else:
        reason = f"waiting at {ev.at}: {waiting}, {left} of the step's wait left"
    return _observe(ev, reason, record=ev.resets)


def _env_option(plan: RolloutPlan) -> str:
    """`` --env NAME`` for a command a reason tells a person to run on ``plan``'s rollout,
    when it runs in a declared environment (the command is refused without it); else ""."""
    return f" --env {plan.environment}" if plan.environment is not None else ""


def _awaiting_approval(ev: _Evaluation, nxt: int) -> Decision | None:
    """A person's approval is the step's last condition: the rollout waits here, its gates
    still watched (a failure still rolls back, no data still pauses). None: step ``nxt``
    needs no approval or has it."""
    plan, state = ev.plan, ev.state
    if not plan.steps[nxt].approval or state.approved_step == nxt:
        return None
    reason = (f"awaiting approval for step {nxt + 1} ({pct(plan.steps[nxt].percentage)}%): "
              f"{ev.checked} at {ev.at}, the step's wait is over; "
              f"`rollout approve {plan.flag}{_env_option(plan)}` lets it advance")
    # recorded once, so status says it
    return _observe(ev, reason, record=ev.resets or state.reason != reason)


def _advance(ev: _Evaluation, nxt: int, wait: float) -> Decision:
    """The move to step ``nxt``: the completion when it is the last and there is no bake."""
    plan, state = ev.plan, ev.state
    to = plan.steps[nxt].percentage
    approved = (f" (approved by {state.approved_by})"
                if plan.steps[nxt].approval and state.approved_by else "")
    last = nxt + 1 >= len(plan.steps)
    finish = last and not plan.bake
    reason = (f"{ev.checked} after {format_duration(wait)} at {ev.at}; "
              f"step {nxt + 1} of {len(plan.steps)}: {pct(to)}%{approved}"
              + (_baking(plan, ev.now) if last and plan.bake else ""))
    moved = _unapproved(ev.observed) if state.approved_step == nxt else ev.observed
    after = dataclasses.replace(
        moved, step=nxt, current_percentage=to, step_started_at=ev.now,
        phase=Phase.COMPLETED if finish else Phase.PROGRESSING,
        consecutive_failures=0, consecutive_errors=0, consecutive_inconclusive=0,
        reason=("completed: " if finish else "") + reason)
    return _decision(plan, Action.COMPLETE if finish else Action.ADVANCE, state, after,
                     after.reason, gates=ev.gates)


def _baking(plan: RolloutPlan, now: datetime) -> str:
    """What a rollout reaching 100 % with a bake says: when it completes at the earliest."""
    assert plan.bake
    end = now + timedelta(seconds=plan.bake)
    return f"; baking {format_duration(plan.bake)} until {utc_iso(end)}, gates still evaluated"


# --- what people ask for ------------------------------------------------------------------


class Refused(Declined):
    """The request makes no sense in the rollout's current phase (exit 1, nothing written)."""


def request(action: Action, plan: RolloutPlan, state: RolloutState | None, now: datetime,
            requested_by: str, reason: str = "", unverified_approval: str | None = None
            ) -> Decision:
    """A person's ``rollback``, ``pause``, ``resume`` or ``retry`` of one rollout.
    ``unverified_approval``: why the state's recorded approval was written by no verified
    runner commit (``last_change.approval_doubt``); ``resume`` then drops it, so that a
    hand-written approval is never honoured after the rollout runs again."""
    phase = state.phase if state else Phase.PENDING
    at = f"{pct(state.current_percentage if state else 0)}%"
    why = f" ({reason})" if reason else ""
    if action is Action.ROLLBACK:
        if phase is Phase.ROLLED_BACK:
            raise Refused(f"{plan.flag} is already rolled back; `rollout retry` starts it again")
        text = f"rolled back at {at} by {requested_by}{why}"
        base = state or fresh_state(plan, now, Phase.ROLLED_BACK, 0, text)
        after = dataclasses.replace(base, phase=Phase.ROLLED_BACK, step=0, current_percentage=0.0,
                                    step_started_at=now, reason=text, consecutive_failures=0,
                                    consecutive_errors=0, consecutive_inconclusive=0,
                                    failures=0, approved_step=None, approved_by=None)
        return _decision(plan, Action.ROLLBACK, state, after, text, requested_by=requested_by)
    if action is Action.PAUSE:
        if phase not in (Phase.PROGRESSING, Phase.PENDING):
            raise Refused(f"{plan.flag} is {phase.value}; only a running or pending rollout "
                          "can be paused")
        text = f"paused at {at} by {requested_by}{why}"
        base = state or fresh_state(plan, now, Phase.PAUSED, 0, text)
        return _pause(plan, state, base, text, requested_by=requested_by)
    if action is Action.RESUME:
        if state is None or phase is not Phase.PAUSED:
            raise Refused(f"{plan.flag} is {phase.value}, not paused"
                          + ("; `rollout retry` starts it again" if phase is Phase.ROLLED_BACK
                             else ""))
        text = f"resumed at {at} by {requested_by}{why}"
        after = _restart(state, plan, now, Phase.PROGRESSING, text)
        if after.current_percentage != state.current_percentage:
            text += f" (the plan changed: step {after.step + 1}, {pct(after.current_percentage)}%)"
            after = dataclasses.replace(after, reason=text)
        if unverified_approval is not None and after.approved_step is not None:
            text += (f" (the approval of step {after.approved_step + 1} in the state is "
                     "dropped: no runner commit recorded it)")
            after = dataclasses.replace(_unapproved(after), reason=text)
        return _decision(plan, Action.RESUME, state, after, text, requested_by=requested_by)
    if action is Action.RETRY:
        if phase not in (Phase.ROLLED_BACK, Phase.PAUSED):
            raise Refused(f"{plan.flag} is {phase.value}; retry starts a rolled back or paused "
                          "rollout again from its first step")
        text = f"retry from step 1 ({pct(plan.steps[0].percentage)}%) by {requested_by}{why}"
        after = fresh_state(plan, now, Phase.PROGRESSING, 0, text)
        return _decision(plan, Action.RETRY, state, after, text, requested_by=requested_by)
    raise ValueError(action)


#: The longest ``approved_by`` a state holds (the state schema's bound).
MAX_APPROVER = 200


@dataclass(frozen=True, slots=True)
class Approver:
    """Who runs ``rollout approve``, as far as the run can tell."""

    #: As recorded (``Rollout-Approved-By``, the state's ``approved_by``).
    name: str
    #: The identity GitHub Actions vouches for (the workflow's actor); False: a git
    #: identity, which anyone can set.
    verified: bool
    #: What may match an entry of the plan's ``approvers`` (a login; a name and an email).
    names: tuple[str, ...] = ()
    #: Not verified: what the identity is, as the approval's text says it.
    unverified_as: str = "git identity"


def approve(plan: RolloutPlan, state: RolloutState | None, approver: Approver,
            reason: str = "", step: int | None = None) -> Decision:
    """A person's approval of the next step of the rollout that needs one (``step``, counted
    from 1 as people read it, must name that very step when given). Raises :class:`Refused`
    when there is nothing to approve or ``approver`` may not."""
    if not approver.name or len(approver.name) > MAX_APPROVER:
        raise Refused(f"the approver's name is {len(approver.name)} characters long; an "
                      f"approval records 1 to {MAX_APPROVER}")
    phase = state.phase if state else Phase.PENDING
    if state is None or phase not in (Phase.PROGRESSING, Phase.PAUSED):
        raise Refused(f"{plan.flag} is {phase.value}; only a running or paused rollout has a "
                      "step to approve" + (" (approve once it has started)"
                                          if phase is Phase.PENDING else ""))
    if state.plan_digest != plan.digest:
        raise Refused(f"{plan.flag}'s plan was edited since its last run; the next `rollout "
                      "advance` replans it, approve after that (an approval is of a step of the "
                      "plan being run)")
    target = _step_to_approve(plan, state, step)
    named = f"step {target + 1} ({pct(plan.steps[target].percentage)}%)"
    if state.approved_step == target:
        raise Refused(f"{named} of {plan.flag} is already approved by {state.approved_by}")
    _check_approver(plan, approver)
    how = "" if approver.verified else f" ({approver.unverified_as}, not verified)"
    why = f" ({reason})" if reason else ""
    text = (f"{named} approved by {approver.name}{how}{why}; the rollout moves there when "
            f"step {state.step + 1}'s wait is over and its gates pass")
    if phase is Phase.PAUSED:
        text += " and it is resumed"
    after = dataclasses.replace(state, approved_step=target, approved_by=approver.name,
                                reason=state.reason if phase is Phase.PAUSED else text)
    return _decision(plan, Action.APPROVE, state, after, text, requested_by=approver.name,
                     approved_by=approver.name)


def _step_to_approve(plan: RolloutPlan, state: RolloutState, step: int | None) -> int:
    """The index of the next step ahead that needs approval, which ``step`` (counted from 1),
    when given, must name. Raises :class:`Refused` otherwise."""
    first = next_step_index(plan, state)
    ahead = [i for i in range(first, len(plan.steps)) if plan.steps[i].approval] if (
        first is not None) else []
    if step is not None:
        if not 1 <= step <= len(plan.steps):
            raise Refused(f"{plan.flag}'s plan has no step {step} (steps 1 to {len(plan.steps)})")
        i = step - 1
        named = f"step {step} ({pct(plan.steps[i].percentage)}%)"
        if not plan.steps[i].approval:
            raise Refused(f"{named} of {plan.flag} needs no approval")
        if not ahead or i != ahead[0]:
            nxt = (f"the next step needing approval is step {ahead[0] + 1} "
                   f"({pct(plan.steps[ahead[0]].percentage)}%)" if ahead else
                   "no step ahead needs approval")
            raise Refused(f"{named} of {plan.flag} is not the next step to approve: {nxt}")
    if not ahead:
        raise Refused(f"no step ahead of {plan.flag}'s step {state.step + 1} "
                      f"({pct(state.current_percentage)}%) needs approval")
    return ahead[0]


def _check_approver(plan: RolloutPlan, approver: Approver) -> None:
    """Refuses an approver the plan's ``approvers`` do not name (any, when it names none)."""
    if not plan.approvers:
        return
    allowed = {a.casefold() for a in plan.approvers}
    if not any(n.casefold() in allowed for n in approver.names):
        how = ("the workflow's actor" if approver.verified else
               "the git identity (user.name or user.email; outside GitHub Actions nothing "
               "proves who runs the command)" if approver.unverified_as == "git identity" else
               f"the {approver.unverified_as} (outside a workflow run nothing proves who "
               "runs the command)")
        raise Refused(f"{approver.name} ({how}) is not one of the approvers of "
                      f"{plan.flag}'s plan: {', '.join(plan.approvers)}")


# --- every rollout at once ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Orphan:
    """A state file whose plan is gone."""

    flag: str
    plan: str
    state: RolloutState


def cleanup(orphan: Orphan) -> Decision:
    reason = f"the plan {orphan.plan} was removed; the flag falls back to its static configuration"
    return Decision(flag=orphan.flag, plan=orphan.plan, action=Action.CLEANUP,
                    before=orphan.state, after=None, reason=reason,
                    plan_digest=orphan.state.plan_digest)


def pause_dependents(decisions: Sequence[Decision], flags: Mapping[str, Flag],
                     plans: Mapping[str, RolloutPlan]) -> list[Decision]:
    """A rollback of a flag pauses the running rollouts of the flags that require it.

    ``decisions`` holds one decision per rollout; those of dependents are replaced."""
    rolled = {d.flag for d in decisions if d.action is Action.ROLLBACK}
    if not rolled:
        return list(decisions)
    out = []
    for d in decisions:
        flag = flags.get(d.flag)
        blockers = sorted({r.flag for r in flag.requires} & rolled) if flag else []
        running = d.before is not None and d.before.phase is Phase.PROGRESSING
        keeps_own = d.action in (Action.ROLLBACK, Action.HOLD, Action.PAUSE, Action.CLEANUP)
        if d.flag in plans and blockers and running and not keeps_own:
            assert d.before is not None
            reason = (f"paused at {pct(d.before.current_percentage)}%: its prerequisite "
                      f"{', '.join(blockers)} was rolled back")
            after = dataclasses.replace(d.before, phase=Phase.PAUSED, reason=reason)
            d = dataclasses.replace(d, action=Action.PAUSE, after=after, reason=reason,
                                    requested_by=None, reverted_commit=None, reverted_by=None)
        out.append(d)
    return out


__all__ = [
    "CLOCK_SKEW",
    "KILL_SWITCH_MARK",
    "NO_CONCLUSIVE",
    "SOURCE_FAILED",
    "Action",
    "Approver",
    "Decision",
    "LastChange",
    "Orphan",
    "Refused",
    "aggregate",
    "approve",
    "awaiting_approval",
    "bake_ends_at",
    "cleanup",
    "decide",
    "held_by_kill_switch",
    "needs_evaluation",
    "next_step_at",
    "pause_dependents",
    "paused_unreadable",
    "request",
    "step_for_percentage",
]
