"""The pure decision under the kill switch: the switch is an input (why it holds), no I/O."""

from __future__ import annotations

from runner.model import Phase, Verdict
from runner.reconcile.decide import Action, decide, held_by_kill_switch
from tests.runner.test_decide import at, gates, plan, started

WHY = "kill switch: EMERGENCY_SHUTDOWN=true (committed in pyproject.toml)"


def test_no_start_while_it_holds() -> None:
    d = decide(plan(), None, None, at(0), kill_switch=WHY)
    assert d.action is None and d.after is None
    assert d.reason == f"pending: {WHY}; starts once it is lifted"


def test_holds_once_never_advances_then_resumes_by_itself() -> None:
    p, s = started()
    d = decide(p, s, gates(when=at(5)), at(5), kill_switch=WHY)
    assert d.action is Action.OBSERVE and d.after is not None
    assert d.after.current_percentage == s.current_percentage
    assert d.reason.startswith(f"held at 0%: {WHY}") and held_by_kill_switch(d.after)
    # later runs, inconclusive or passing: nothing to record, never an advance or a pause
    for minute, verdict in ((10, Verdict.PASS), (60, Verdict.INCONCLUSIVE), (90, Verdict.ERROR)):
        again = decide(p, d.after, gates(verdict, when=at(minute)), at(minute), kill_switch=WHY)
        assert again.action is None and again.after is not None
        assert again.after.phase is Phase.PROGRESSING
    lifted = decide(p, d.after, gates(when=at(100)), at(100))
    assert lifted.action is Action.RESUME and lifted.after is not None
    assert lifted.after.step_started_at == at(100) and not held_by_kill_switch(lifted.after)
    assert "the kill switch was lifted" in lifted.reason


def test_a_failure_still_rolls_back_under_it() -> None:
    p, s = started(plan(failure_limit=1))
    d = decide(p, s, gates(Verdict.FAIL, when=at(5), value=3.0), at(5), kill_switch=WHY)
    assert d.action is Action.ROLLBACK


def test_a_failure_below_the_limit_is_counted_and_recorded() -> None:
    p, s = started(plan(failure_limit=3))
    d = decide(p, s, gates(Verdict.FAIL, when=at(5), value=3.0), at(5), kill_switch=WHY)
    assert d.action is Action.OBSERVE and d.after is not None and d.after.failures == 1
    assert held_by_kill_switch(d.after) and "gate failed" in d.reason
