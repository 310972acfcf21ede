"""The decision of an evaluation, as a table: a state and gate verdicts at a time -> the action,
the reason a person reads in status and the commit, and the new phase. One row per outcome of
each assessor (sample-ratio mismatch, failure, clock skew, source error, no data, pass)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runner.load.assemble import build_plan
from runner.model import GateResult, Phase, RepoConfig, RolloutPlan, RolloutState, Verdict
from runner.reconcile.decide import SAMPLE_RATIO, Action, decide

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
P, F, E, I = Verdict.PASS, Verdict.FAIL, Verdict.ERROR, Verdict.INCONCLUSIVE  # noqa: E741
SRM_DETAIL = "p = 1e-06 < 0.001: the cohorts' sizes do not match the assignment"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def plan(**over: Any) -> RolloutPlan:
    doc = {"flag": "checkout", "strategy": "custom", "wait": "5m",
           "steps": [0, 25, {"percentage": 50, "approval": True}, 100],
           "gates": {"error_rate": 1.0, "request_count": 100}}
    doc.update(over)
    return build_plan("checkout", doc, RepoConfig())


def state(p: RolloutPlan, step: int = 1, **over: Any) -> RolloutState:
    """Progressing at ``step`` since T0, nothing counted yet."""
    base = RolloutState(flag=p.flag, plan=p.name, phase=Phase.PROGRESSING, step=step,
                        current_percentage=p.steps[step].percentage, started_at=T0,
                        step_started_at=T0, plan_digest=p.digest, reason="started")
    return dataclasses.replace(base, **over)


def gates(error_rate: Verdict, requests: Verdict = P, *, dry: bool = False,
          srm: Verdict | None = None) -> tuple[GateResult, ...]:
    value = {P: 0.2, F: 2.5}.get(error_rate)
    detail = {I: "no data", E: "connection refused"}.get(error_rate, "")
    out = [GateResult("error_rate", error_rate, value, "<= 1", dry, detail),
           GateResult("request_count", requests, 500 if requests is P else None, ">= 100",
                      False, "timeout" if requests is E else "")]
    if srm is not None:
        out.append(GateResult(SAMPLE_RATIO, srm, None, "p >= 0.001", False,
                              SRM_DETAIL if srm is E else ""))
    return tuple(out)


# (what, plan options, state (step, overrides), gates, minutes) ->
#     (action, reason, phase after, cause)
ROWS: list[tuple[str, dict[str, Any], tuple[int, dict[str, Any]], tuple[GateResult, ...], float,
                 tuple[Action | None, str, Phase, str]]] = [
    ("sample-ratio mismatch pauses at once", {}, (1, {}), gates(P, srm=E), 2,
     (Action.PAUSE, f"paused at 25%: {SAMPLE_RATIO}: {SRM_DETAIL}", Phase.PAUSED, "")),
    ("a failure beats a sample-ratio mismatch", {}, (1, {}), gates(F, srm=E), 2,
     (Action.ROLLBACK, "rolled back at 25%: gate failed: error_rate = 2.5 (<= 1)",
      Phase.ROLLED_BACK, "")),
    ("a dry-run failure never blocks", {}, (1, {}), gates(F, dry=True), 5,
     (Action.OBSERVE, "awaiting approval for step 3 (50%): gates passed at 25%, the step's wait "
      "is over; `rollout approve checkout` lets it advance", Phase.PROGRESSING, "")),
    ("a failure below the limit is counted", {"failure_limit": 2}, (1, {}), gates(F), 2,
     (Action.OBSERVE, "gate failed (1 of 2 failed evaluations allowed in this rollout): "
      "error_rate = 2.5 (<= 1)", Phase.PROGRESSING, "")),
    ("the limit's failure pauses when on_failure is pause",
     {"failure_limit": 2, "on_failure": "pause"}, (1, {"failures": 1}), gates(F), 2,
     (Action.PAUSE, "paused at 25%: gate failed (2 failed evaluations in this rollout): "
      "error_rate = 2.5 (<= 1)", Phase.PAUSED, "")),
    ("a time beyond the clock skew pauses", {}, (1, {"step_started_at": at(20)}), gates(P), 2,
     (Action.PAUSE, "paused at 25%: the rollout recorded 2026-01-15T12:20:00+00:00, 18m after "
      "this run's time 2026-01-15T12:02:00+00:00, beyond the allowed clock skew of 5m (a --now "
      "in the future or a wrong clock); a failing gate still acts, `rollout resume` restarts "
      "the step's analysis", Phase.PAUSED, "")),
    ("a failure acts beyond the clock skew", {}, (1, {"step_started_at": at(20)}), gates(F), 2,
     (Action.ROLLBACK, "rolled back at 25%: gate failed: error_rate = 2.5 (<= 1)",
      Phase.ROLLED_BACK, "")),
    ("a source error below the limit is counted", {}, (1, {}), gates(P, E), 2,
     (Action.OBSERVE, "metric source error (1 of 4 in a row): request_count = none (>= 100): "
      "timeout", Phase.PROGRESSING, "")),
    ("the limit's source error pauses", {"error_limit": 2}, (1, {"consecutive_errors": 1}),
     gates(E), 2,
     (Action.PAUSE, "paused at 25%: the metric source failed 2 times in a row: error_rate = "
      "none (<= 1): connection refused", Phase.PAUSED, "")),
    ("no data holds, nothing recorded", {}, (1, {}), gates(I), 2,
     (None, "holding at 25%: inconclusive, never an advance: error_rate = none (<= 1): no data",
      Phase.PROGRESSING, "")),
    ("no data after source errors records the reset", {}, (1, {"consecutive_errors": 2}),
     gates(I), 2,
     (Action.OBSERVE, "holding at 25%: inconclusive, never an advance: error_rate = none "
      "(<= 1): no data", Phase.PROGRESSING, "")),
    ("no data past the progress deadline pauses", {"progress_deadline": "10m"}, (1, {}),
     gates(I), 10,
     (Action.PAUSE, "paused at 25%: no conclusive evaluation for 10m (progress deadline 10m): "
      "error_rate = none (<= 1): no data", Phase.PAUSED, "progress_deadline")),
    ("the deadline counts from the last conclusive evaluation", {"progress_deadline": "10m"},
     (1, {"last_evaluated_at": at(4)}), gates(I), 10,
     (None, "holding at 25%: inconclusive, never an advance: error_rate = none (<= 1): no data",
      Phase.PROGRESSING, "")),
    ("passing during the wait: nothing recorded", {}, (1, {}), gates(P), 2.5,
     (None, "waiting at 25%: gates pass, 2m30s of the step's wait left", Phase.PROGRESSING, "")),
    ("passing after a failure streak records the reset", {"failure_limit": 3},
     (1, {"consecutive_failures": 1, "failures": 1}), gates(P), 2,
     (Action.OBSERVE, "waiting at 25%: gates pass, 3m of the step's wait left",
      Phase.PROGRESSING, "")),
    ("the wait over, the next step", {}, (0, {}), gates(P), 5,
     (Action.ADVANCE, "gates passed after 5m at 0%; step 2 of 4: 25%", Phase.PROGRESSING, "")),
    ("with only dry-run gates: no gates", {}, (0, {}), gates(P, dry=True)[:1], 5,
     (Action.ADVANCE, "no gates after 5m at 0%; step 2 of 4: 25%", Phase.PROGRESSING, "")),
    ("below its step after a replan: to its own step", {}, (1, {"current_percentage": 10.0}),
     gates(P), 5,
     (Action.ADVANCE, "gates passed after 5m at 10%; step 2 of 4: 25%", Phase.PROGRESSING, "")),
    ("awaiting approval, said once", {}, (1, {}), gates(P), 5,
     (Action.OBSERVE, "awaiting approval for step 3 (50%): gates passed at 25%, the step's wait "
      "is over; `rollout approve checkout` lets it advance", Phase.PROGRESSING, "")),
    ("awaiting approval, already said", {},
     (1, {"reason": "awaiting approval for step 3 (50%): gates passed at 25%, the step's wait "
                    "is over; `rollout approve checkout` lets it advance"}), gates(P), 6,
     (None, "awaiting approval for step 3 (50%): gates passed at 25%, the step's wait is over; "
      "`rollout approve checkout` lets it advance", Phase.PROGRESSING, "")),
    ("approved: the step", {}, (1, {"approved_step": 2, "approved_by": "alice"}), gates(P), 5,
     (Action.ADVANCE, "gates passed after 5m at 25%; step 3 of 4: 50% (approved by alice)",
      Phase.PROGRESSING, "")),
    ("the last step without a bake completes", {}, (2, {}), gates(P), 5,
     (Action.COMPLETE, "completed: gates passed after 5m at 50%; step 4 of 4: 100%",
      Phase.COMPLETED, "")),
    ("the last step with a bake starts baking", {"bake": "1h"}, (2, {}), gates(P), 5,
     (Action.ADVANCE, "gates passed after 5m at 50%; step 4 of 4: 100%; baking 1h until "
      "2026-01-15T13:05:00Z, gates still evaluated", Phase.PROGRESSING, "")),
    ("baking: nothing recorded", {"bake": "1h"}, (3, {}), gates(P), 30,
     (None, "baking at 100%: gates pass, 30m of the bake left (until 2026-01-15T13:00:00Z); "
      "completed when it is over", Phase.PROGRESSING, "")),
    ("the bake over: completed", {"bake": "1h"}, (3, {}), gates(P), 60,
     (Action.COMPLETE, "completed at 100% after a bake of 1h: gates passed", Phase.COMPLETED, "")),
    ("a failure while baking rolls back", {"bake": "1h"}, (3, {}), gates(F), 30,
     (Action.ROLLBACK, "rolled back at 100%: gate failed: error_rate = 2.5 (<= 1)",
      Phase.ROLLED_BACK, "")),
]


@pytest.mark.parametrize(("what", "options", "where", "results", "minutes", "expected"), ROWS,
                         ids=[row[0] for row in ROWS])
def test_an_evaluation_decides(what: str, options: dict[str, Any],
                               where: tuple[int, dict[str, Any]], results: tuple[GateResult, ...],
                               minutes: float,
                               expected: tuple[Action | None, str, Phase, str]) -> None:
    p = plan(**options)
    before = state(p, where[0], **where[1])
    d = decide(p, before, results, at(minutes))
    assert d.after is not None
    assert (d.action, d.reason, d.after.phase, d.cause) == expected
    # the evaluation is recorded in the state it leaves, whatever the decision
    assert (d.gates, d.after.last_gates, d.after.last_evaluated_at) == (
        results, results, at(minutes))
    if d.action is not None:
        assert d.after.reason == d.reason
