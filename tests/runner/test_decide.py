"""The pure decision: hand-made gate results (the function's real input), no I/O."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from runner.load.assemble import build_plan
from runner.model import Flag, GateResult, Phase, RepoConfig, Requirement, Risk, Verdict
from runner.reconcile.decide import (
    Action,
    Decision,
    LastChange,
    decide,
    needs_evaluation,
    pause_dependents,
    request,
)

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def plan(**over: object):
    doc = {"flag": "checkout", "strategy": "safe", "wait": "5m",
           "gates": {"error_rate": 1.0, "p95_latency_ms": 500, "request_count": 100}}
    doc.update(over)
    return build_plan("checkout", doc, RepoConfig())


def gates(verdict: Verdict = Verdict.PASS, when: datetime = T0, dry: bool = False,
          value: float | None = 0.2) -> tuple[GateResult, ...]:
    return (GateResult("error_rate", verdict, value, "<= 1", dry, "", when),
            GateResult("request_count", Verdict.PASS, 500, ">= 100", False, "", when))


def started(p=None, now: datetime = T0):
    p = p or plan()
    d = decide(p, None, None, now)
    assert d.action is Action.START
    return p, d.after


def test_start_creates_progressing_state_at_first_step() -> None:
    p, s = started()
    assert (s.phase, s.step, s.current_percentage, s.step_started_at) == (
        Phase.PROGRESSING, 0, 0, T0)
    assert s.plan_digest == p.digest


def test_start_at_in_the_future_stays_pending_without_a_state() -> None:
    p = plan(start_at="2026-02-01T00:00:00Z")
    d = decide(p, None, None, T0)
    assert d.action is None and d.after is None and "pending" in d.reason
    assert decide(p, None, None, datetime(2026, 2, 1, tzinfo=UTC)).action is Action.START


def test_advances_only_after_the_wait_with_a_passing_evaluation_taken_then() -> None:
    p, s = started()
    assert needs_evaluation(p, s, None, at(4))
    waiting = decide(p, s, gates(when=at(4)), at(4))
    assert waiting.action is None and "1m" in waiting.reason
    moved = decide(p, s, gates(when=at(5)), at(5))
    assert moved.action is Action.ADVANCE
    assert (moved.after.step, moved.after.current_percentage, moved.after.step_started_at) == (
        1, 5, at(5))


def test_same_now_twice_changes_nothing() -> None:
    p, s = started()
    moved = decide(p, s, gates(when=at(5)), at(5)).after
    assert not needs_evaluation(p, moved, None, at(5))
    assert decide(p, moved, None, at(5)).action is None


def test_a_breach_while_waiting_rolls_back_at_once() -> None:
    p, s = started()
    s = decide(p, s, gates(when=at(5)), at(5)).after  # 5 %
    d = decide(p, s, gates(Verdict.FAIL, at(6), value=2.5), at(6))
    assert d.action is Action.ROLLBACK
    assert (d.after.phase, d.after.current_percentage) == (Phase.ROLLED_BACK, 0)
    assert "error_rate = 2.5" in d.reason


def test_dry_run_gates_never_block() -> None:
    p, s = started()
    d = decide(p, s, gates(Verdict.FAIL, at(5), dry=True, value=9), at(5))
    assert d.action is Action.ADVANCE


def test_failure_limit_counts_failures_passes_between_included() -> None:
    p, s = started(plan(failure_limit=3, on_failure="pause"))
    d1 = decide(p, s, gates(Verdict.FAIL, at(1)), at(1))
    assert d1.action is Action.OBSERVE and d1.after.failures == 1
    assert "1 of 3" in d1.reason
    d2 = decide(p, d1.after, gates(Verdict.PASS, at(2)), at(2))
    # a pass forgives nothing: the failure still counts (the streak reset is recorded)
    assert d2.action is Action.OBSERVE and d2.after.failures == 1
    assert d2.after.consecutive_failures == 0
    d3 = decide(p, d2.after, gates(Verdict.FAIL, at(3)), at(3))
    assert d3.action is Action.OBSERVE and d3.after.failures == 2
    d4 = decide(p, d3.after, gates(Verdict.PASS, at(4)), at(4))
    d5 = decide(p, d4.after, gates(Verdict.FAIL, at(4.5)), at(4.5))
    assert d5.action is Action.PAUSE and d5.after.phase is Phase.PAUSED
    assert "3 failed evaluations in this rollout" in d5.reason


def test_flapping_gate_never_completes() -> None:
    """fail, pass, fail, pass...: with failure_limit 3 the rollout stops at its third failure
    and never advances past the step where it flaps."""
    p, s = started(plan(failure_limit=3))
    actions = []
    for i in range(12):
        verdict = Verdict.FAIL if i % 2 == 0 else Verdict.PASS
        d = decide(p, s, gates(verdict, at(6 * (i + 1))), at(6 * (i + 1)))
        actions.append(d.action)
        s = d.after
        if s.phase is not Phase.PROGRESSING:
            break
    assert s.phase is Phase.ROLLED_BACK and Action.COMPLETE not in actions
    assert actions.count(Action.ADVANCE) == 2  # it advanced on passes, failures kept counting
    # an advance forgives nothing; a resume (a person's decision) starts the count again
    p, s = started(plan(failure_limit=2, on_failure="pause"))
    d = decide(p, s, gates(Verdict.FAIL, at(1)), at(1))
    d = decide(p, d.after, gates(Verdict.PASS, at(6)), at(6))
    assert d.action is Action.ADVANCE and d.after.failures == 1
    d = decide(p, d.after, gates(Verdict.FAIL, at(7)), at(7))
    assert d.action is Action.PAUSE
    d = request(Action.RESUME, p, d.after, at(8), "ops")
    assert d.after is not None and d.after.failures == 0


def test_inconclusive_never_advances_and_pauses_at_the_progress_deadline() -> None:
    p, s = started(plan(progress_deadline="10m"))
    d = decide(p, s, gates(Verdict.INCONCLUSIVE, at(6), value=None), at(6))
    assert d.action is None and d.after.phase is Phase.PROGRESSING
    d = decide(p, s, gates(Verdict.INCONCLUSIVE, at(10), value=None), at(10))
    assert d.action is Action.PAUSE and "progress deadline 10m" in d.reason


def test_error_limit_pauses() -> None:
    p, s = started(plan(error_limit=2))
    d = decide(p, s, gates(Verdict.ERROR, at(1), value=None), at(1))
    assert d.action is Action.OBSERVE and d.after.consecutive_errors == 1
    d = decide(p, d.after, gates(Verdict.ERROR, at(2), value=None), at(2))
    assert d.action is Action.PAUSE and "2 times in a row" in d.reason


def test_last_step_completes() -> None:
    p, s = started(plan(strategy="fast"))
    for minute, action in ((5, Action.ADVANCE), (10, Action.ADVANCE), (15, Action.COMPLETE)):
        d = decide(p, s, gates(when=at(minute)), at(minute))
        assert d.action is action
        s = d.after
    assert (s.phase, s.current_percentage) == (Phase.COMPLETED, 100)
    assert decide(p, s, None, at(60)).action is None


def test_plan_edit_restarts_the_step_keeping_or_lowering_the_percentage() -> None:
    p, s = started()
    for minute in (5, 10, 15):  # 5, 10, 25 %
        s = decide(p, s, gates(when=at(minute)), at(minute)).after
    assert s.current_percentage == 25
    same = plan(wait="10m")
    d = decide(same, s, None, at(16))
    assert d.action is Action.REPLAN and d.after.current_percentage == 25
    assert d.after.step_started_at == at(16) and d.after.plan_digest == same.digest
    lower = plan(strategy="custom", steps=[0, 20, 50, 100])
    d = decide(lower, s, None, at(16))
    assert (d.after.step, d.after.current_percentage) == (1, 20)


def test_a_human_revert_holds_and_names_the_commit_and_who() -> None:
    p, s = started()
    change = LastChange("b" * 40, "Ana <ana@example.com>", False, reverted_sha="a" * 40,
                        reverted_by_runner=True)
    assert not needs_evaluation(p, s, change, at(5))
    d = decide(p, s, None, at(5), change)
    assert d.action is Action.HOLD and d.after.phase is Phase.PAUSED
    assert d.reverted_commit == "a" * 40 and d.reverted_by == "Ana <ana@example.com>"
    assert "aaaaaaa" in d.reason and "Ana" in d.reason
    # the runner's own hold commit is now the last change: paused stays paused
    own = LastChange("c" * 40, "bot <b@x>", True)
    assert decide(p, d.after, None, at(30), own).action is None


def test_revert_of_the_start_removing_the_state_holds_at_zero() -> None:
    p = plan()
    change = LastChange("b" * 40, "Ana <a@x>", False, reverted_sha="a" * 40)
    d = decide(p, None, None, T0, change)
    assert d.action is Action.HOLD and d.after.current_percentage == 0
    assert d.after.phase is Phase.PAUSED


def test_requests() -> None:
    p, s = started()
    s = decide(p, s, gates(when=at(5)), at(5)).after
    paused = request(Action.PAUSE, p, s, at(6), "Ana").after
    assert paused.phase is Phase.PAUSED and paused.current_percentage == 5
    resumed = request(Action.RESUME, p, paused, at(7), "Ana").after
    assert resumed.phase is Phase.PROGRESSING and resumed.step_started_at == at(7)
    rolled = request(Action.ROLLBACK, p, resumed, at(8), "Ana", "bad").after
    assert (rolled.phase, rolled.current_percentage) == (Phase.ROLLED_BACK, 0)
    retried = request(Action.RETRY, p, rolled, at(9), "Ana").after
    assert (retried.phase, retried.step, retried.started_at) == (Phase.PROGRESSING, 0, at(9))


def test_rollback_pauses_running_dependents() -> None:
    base, s = started()
    dep_plan = dataclasses.replace(base, name="dep", flag="dep")
    dep_state = dataclasses.replace(s, flag="dep", plan="dep")
    flags = {"checkout": Flag("checkout", "d", "o", Risk.LOW),
             "dep": Flag("dep", "d", "o", Risk.LOW, requires=(Requirement("checkout"),))}
    rollback = decide(base, s, gates(Verdict.FAIL, at(1)), at(1))
    dep_adv = Decision("dep", "dep", Action.ADVANCE, dep_state, dep_state, "x")
    out = pause_dependents([rollback, dep_adv], flags, {"checkout": base, "dep": dep_plan})
    assert out[0].action is Action.ROLLBACK
    assert out[1].action is Action.PAUSE and "checkout was rolled back" in out[1].reason
    assert out[1].after.current_percentage == dep_state.current_percentage


def test_a_replan_never_raises_the_percentage_without_a_gate() -> None:
    _, s = started()  # 0 %
    higher = plan(strategy="custom", steps=[10, 50, 100])
    d = decide(higher, s, None, at(1))
    assert d.action is Action.REPLAN
    assert (d.after.step, d.after.current_percentage) == (0, 0)
    d = decide(higher, d.after, gates(when=at(6)), at(6))
    assert d.action is Action.ADVANCE
    assert (d.after.step, d.after.current_percentage) == (0, 10)
    d = decide(higher, d.after, gates(when=at(11)), at(11))
    assert (d.after.step, d.after.current_percentage) == (1, 50)


def test_a_future_evaluation_time_never_blinds_a_later_run() -> None:
    """One run at a --now far in the future must not mark later evaluations as counted."""
    p, s = started()
    future = T0 + timedelta(days=3650)
    d = decide(p, s, gates(Verdict.PASS, future), future)
    s = d.after
    assert s.last_evaluated_at == future
    later = at(10)  # the real next run, long before that future
    assert needs_evaluation(p, s, None, later)
    d = decide(p, s, gates(Verdict.FAIL, later), later)
    assert d.action is Action.ROLLBACK and d.after.phase is Phase.ROLLED_BACK
    # the very same moment again is what "already counted" means
    assert not needs_evaluation(p, s, None, future)


def test_a_time_recorded_beyond_the_clock_skew_pauses_unless_a_gate_fails() -> None:
    """A step started a year after now (an earlier run's --now in the future): its wait and
    progress deadline cannot be counted from, and a run with --now in the past must not
    measure a wait from it either. A failing gate still rolls back; anything else pauses for
    a person, and `rollout resume` restarts the step's analysis at their time."""
    p, s = started(plan(progress_deadline="10m"))
    ahead = dataclasses.replace(s, step_started_at=T0 + timedelta(days=365))
    for verdict in (Verdict.PASS, Verdict.INCONCLUSIVE, Verdict.ERROR):
        d = decide(p, ahead, gates(verdict, at(1)), at(1))
        assert d.action is Action.PAUSE, verdict
        assert "beyond the allowed clock skew of 5m" in d.reason
    d = decide(p, ahead, gates(Verdict.FAIL, at(1)), at(1))
    assert d.action is Action.ROLLBACK
    resumed = request(Action.RESUME, p, decide(p, ahead, gates(Verdict.PASS, at(1)), at(1)).after,
                      at(2), "Ops <ops@example.com>")
    assert resumed.after.step_started_at == at(2)
    # within the skew racing runners' clocks may differ: no pause, the wait simply runs
    slightly = dataclasses.replace(s, step_started_at=T0 + timedelta(minutes=3))
    d = decide(p, slightly, gates(Verdict.PASS, at(1)), at(1))
    assert d.action is None and "waiting" in d.reason
    # a --now in the past of the last evaluation, by more than the skew: no wait counted
    evaluated = dataclasses.replace(s, last_evaluated_at=at(30))
    assert decide(p, evaluated, gates(Verdict.PASS, at(10)), at(10)).action is Action.PAUSE
