"""Bake after 100 % and step approvals in the pure decision: hand-made gate results, no I/O."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from runner.load.assemble import build_plan
from runner.load.statefile import dump_state, state_from_dict, state_to_dict
from runner.model import GateResult, Phase, RepoConfig, Verdict
from runner.reconcile.decide import (
    Action,
    Approver,
    LastChange,
    Refused,
    approve,
    awaiting_approval,
    bake_ends_at,
    decide,
    request,
)
from runner.reconcile.message import message

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
ALICE = Approver("alice", True, ("alice",))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def plan(**over: object):
    doc = {"flag": "checkout", "strategy": "custom", "wait": "5m",
           "steps": [0, 25, {"percentage": 50, "approval": True}, 100],
           "gates": {"error_rate": 1.0, "request_count": 100}}
    doc.update(over)
    return build_plan("checkout", doc, RepoConfig())


def gates(verdict: Verdict = Verdict.PASS, value: float | None = 0.2) -> tuple[GateResult, ...]:
    return (GateResult("error_rate", verdict, value, "<= 1"),
            GateResult("request_count", Verdict.PASS, 500, ">= 100"))


def run(p, s, minutes: float, verdict: Verdict = Verdict.PASS, value: float | None = 0.2,
        change: LastChange | None = None):
    return decide(p, s, gates(verdict, value), at(minutes), change)


def to_percent(p, target: float, approver: Approver | None = None):
    """Start and advance (every 5 minutes, gates passing) until ``target`` %."""
    s = decide(p, None, None, T0).after
    minute = 0
    while s.current_percentage < target:
        minute += 5
        d = run(p, s, minute)
        if d.action is Action.OBSERVE and approver is not None:
            s = approve(p, d.after, approver).after
            continue
        assert d.action in (Action.ADVANCE, Action.COMPLETE), d.reason
        s = d.after
    return s, minute


# --- bake ----------------------------------------------------------------------------------


def test_reaching_100_with_a_bake_stays_progressing_and_says_until_when() -> None:
    p = plan(steps=[0, 50, 100], bake="48h")
    s, minute = to_percent(p, 100)
    assert s.phase is Phase.PROGRESSING and s.current_percentage == 100
    end = at(minute) + timedelta(hours=48)
    assert "baking 2d until 2026-01-17T12:10:00Z" in s.reason
    assert bake_ends_at(p, s) == end
    # during the bake: gates evaluated, nothing committed while they pass
    d = run(p, s, minute + 60)
    assert d.action is None and "baking at 100%" in d.reason and "1d23h" in d.reason
    # after it, with gates passing: completed
    d = run(p, s, minute + 48 * 60)
    assert d.action is Action.COMPLETE and d.after.phase is Phase.COMPLETED
    assert "after a bake of 2d" in d.reason


def test_without_a_bake_reaching_100_completes_at_once() -> None:
    p = plan(steps=[0, 50, 100])
    s, _ = to_percent(p, 100)
    assert s.phase is Phase.COMPLETED and bake_ends_at(p, s) is None


def test_a_breach_during_the_bake_rolls_back() -> None:
    p = plan(steps=[0, 50, 100], bake="48h")
    s, minute = to_percent(p, 100)
    d = run(p, s, minute + 47 * 60, Verdict.FAIL, 5.0)
    assert d.action is Action.ROLLBACK and d.after.phase is Phase.ROLLED_BACK
    assert d.after.current_percentage == 0


def test_failure_limit_counts_during_the_bake_as_on_any_step() -> None:
    p = plan(steps=[0, 50, 100], bake="1h", failure_limit=2)
    s, minute = to_percent(p, 100)
    first = run(p, s, minute + 10, Verdict.FAIL, 2.0)
    assert first.action is Action.OBSERVE and first.after.phase is Phase.PROGRESSING
    # a pass in between forgives nothing, and the bake's end does not complete a failing one
    passed = run(p, first.after, minute + 20)
    second = run(p, passed.after, minute + 61, Verdict.FAIL, 2.0)
    assert second.action is Action.ROLLBACK


def test_no_data_for_the_progress_deadline_during_the_bake_pauses() -> None:
    p = plan(steps=[0, 50, 100], bake="48h", progress_deadline="30m")
    s, minute = to_percent(p, 100)
    quiet = run(p, s, minute + 10, Verdict.INCONCLUSIVE, None)
    assert quiet.action is None and quiet.after.phase is Phase.PROGRESSING
    d = run(p, quiet.after, minute + 31, Verdict.INCONCLUSIVE, None)
    assert d.action is Action.PAUSE and "progress deadline" in d.reason


def test_a_single_step_plan_with_a_bake_starts_baking() -> None:
    p = plan(strategy="custom", steps=[100], bake="1h", allow_no_gates=True)
    d = decide(p, None, None, T0)
    assert d.action is Action.START and d.after.phase is Phase.PROGRESSING
    assert bake_ends_at(p, d.after) == at(60)
    assert run(p, d.after, 60).action is Action.COMPLETE


# --- approvals -----------------------------------------------------------------------------


def test_a_step_needing_approval_holds_at_the_previous_step_with_gates_evaluated() -> None:
    p = plan()
    s, minute = to_percent(p, 25)
    d = run(p, s, minute + 5)
    assert d.action is Action.OBSERVE  # recorded once, so status and the commit say it
    assert d.after.current_percentage == 25 and d.after.phase is Phase.PROGRESSING
    assert d.reason.startswith("awaiting approval for step 3 (50%)")
    assert awaiting_approval(p, d.after) == 2
    # the next run changes nothing (no commit every run) ...
    again = run(p, d.after, minute + 10)
    assert again.action is None and again.after.current_percentage == 25
    # ... but its gates still act
    broke = run(p, d.after, minute + 15, Verdict.FAIL, 3.0)
    assert broke.action is Action.ROLLBACK


def test_an_approval_lets_the_rollout_advance_and_is_used_up() -> None:
    p = plan(steps=[0, {"percentage": 25, "approval": True},
                    {"percentage": 50, "approval": True}, 100])
    s = decide(p, None, None, T0).after
    waiting = run(p, s, 5).after
    approved = approve(p, waiting, ALICE, "looks good")
    assert approved.action is Action.APPROVE
    assert (approved.after.approved_step, approved.after.approved_by) == (1, "alice")
    assert approved.after.current_percentage == 0  # an approval moves nothing by itself
    moved = run(p, approved.after, 6)
    assert moved.action is Action.ADVANCE and moved.after.current_percentage == 25
    assert "(approved by alice)" in moved.reason
    assert moved.after.approved_step is None and moved.after.approved_by is None
    # the next approval step needs its own approval
    held = run(p, moved.after, 11)
    assert held.action is Action.OBSERVE and held.after.current_percentage == 25
    assert "awaiting approval for step 3 (50%)" in held.reason


def test_an_approval_given_early_applies_to_the_next_approval_step_only() -> None:
    p = plan(steps=[0, 10, {"percentage": 25, "approval": True}, 50,
                    {"percentage": 75, "approval": True}, 100])
    s = decide(p, None, None, T0).after  # at step 1, two steps before the first approval
    early = approve(p, s, ALICE).after
    assert early.approved_step == 2
    s = run(p, early, 5).after  # 10 %
    s = run(p, s, 10).after  # 25 %: the early approval used
    assert s.current_percentage == 25 and s.approved_step is None
    s = run(p, s, 15).after  # 50 %
    held = run(p, s, 20)
    assert held.after.current_percentage == 50 and "awaiting approval for step 5" in held.reason


def test_approving_the_wrong_step_or_nothing_is_refused() -> None:
    p = plan()
    s = decide(p, None, None, T0).after
    with pytest.raises(Refused, match=r"step 2 \(25%\) of checkout needs no approval"):
        approve(p, s, ALICE, step=2)
    with pytest.raises(Refused, match="has no step 9"):
        approve(p, s, ALICE, step=9)
    assert approve(p, s, ALICE, step=3).after.approved_step == 2
    twice = approve(p, s, ALICE).after
    with pytest.raises(Refused, match="already approved by alice"):
        approve(p, twice, ALICE)
    done, _ = to_percent(p, 100, ALICE)
    assert done.phase is Phase.COMPLETED
    with pytest.raises(Refused, match="checkout is completed"):
        approve(p, done, ALICE)
    rolled = request(Action.ROLLBACK, p, s, at(1), "bob").after
    with pytest.raises(Refused, match="checkout is rolled_back"):
        approve(p, rolled, ALICE)
    with pytest.raises(Refused, match="checkout is pending"):
        approve(p, None, ALICE)
    past = plan(steps=[0, {"percentage": 25, "approval": True}, 100])
    beyond, _ = to_percent(past, 25, ALICE)
    with pytest.raises(Refused, match="no step ahead"):
        approve(past, beyond, ALICE)


def test_approvers_are_enforced_and_a_git_identity_is_said_unverified() -> None:
    p = plan(approvers=["alice", "carol@example.com"])
    s = decide(p, None, None, T0).after
    with pytest.raises(Refused, match=r"mallory \(the workflow's actor\) is not one of"):
        approve(p, s, Approver("mallory", True, ("mallory",)))
    local = Approver("Carol <carol@example.com>", False, ("Carol", "carol@example.com"))
    d = approve(p, s, local)
    assert d.after.approved_by == "Carol <carol@example.com>"
    assert "(git identity, not verified)" in d.reason
    with pytest.raises(Refused, match="git identity"):
        approve(p, s, Approver("Mal <m@x>", False, ("Mal", "m@x")))
    assert approve(p, s, Approver("ALICE", True, ("ALICE",))).after.approved_step == 2
    # what the state schema could not hold is refused, not written
    with pytest.raises(Refused, match="201 characters"):
        approve(plan(), s, Approver("x" * 201, False, ("x" * 201,)))


def test_a_plan_edit_drops_the_approval_and_retry_starts_without_one() -> None:
    p = plan()
    s = approve(p, decide(p, None, None, T0).after, ALICE).after
    edited = plan(wait="6m")
    with pytest.raises(Refused, match="plan was edited"):
        approve(edited, s, ALICE)
    replanned = decide(edited, s, None, at(1))
    assert replanned.action is Action.REPLAN and replanned.after.approved_step is None
    paused = request(Action.PAUSE, p, s, at(1), "bob").after
    assert paused.approved_step == 2  # a pause keeps it
    retried = request(Action.RETRY, p, paused, at(2), "bob").after
    assert retried.approved_step is None


def test_a_paused_rollout_can_be_approved_and_keeps_its_reason() -> None:
    p = plan()
    paused = request(Action.PAUSE, p, decide(p, None, None, T0).after, at(1), "bob").after
    d = approve(p, paused, ALICE)
    assert d.after.phase is Phase.PAUSED and d.after.reason == paused.reason
    assert "and it is resumed" in d.reason


def test_the_revert_of_an_approval_holds_and_takes_the_approval_back() -> None:
    p = plan()
    waiting, minute = to_percent(p, 25)
    waiting = run(p, waiting, minute + 5).after
    approved = approve(p, waiting, ALICE).after
    # `git revert` of the approval commit: the state as before it, changed by a person
    revert = LastChange(sha="b" * 40, author="Bob <bob@example.com>", by_runner=False,
                        reverted_sha="a" * 40, reverted_by_runner=True)
    held = decide(p, waiting, None, at(minute + 10), revert)
    assert held.action is Action.HOLD and held.after.phase is Phase.PAUSED
    assert held.after.approved_step is None
    resumed = request(Action.RESUME, p, held.after, at(minute + 11), "bob").after
    again = run(p, resumed, minute + 17)
    assert again.after.current_percentage == 25 and "awaiting approval" in again.reason
    assert approved.approved_step == 2


def test_the_approval_commit_carries_who_approved() -> None:
    p = plan()
    d = approve(p, decide(p, None, None, T0).after, ALICE, "ship it")
    text = message(d, p, "sha256:" + "0" * 64, "sha256:" + "1" * 64)
    assert text.startswith("rollout(checkout): approve step 3 at 0%\n")
    assert "\nRollout-Action: approve\n" in text
    assert "\nRollout-Approved-By: alice\n" in text
    assert "\nRollout-Requested-By: alice\n" in text
    assert "step 3 (50%) approved by alice (ship it)" in text


def test_an_approval_round_trips_through_the_state_file() -> None:
    p = plan()
    s = approve(p, decide(p, None, None, T0).after, ALICE).after
    back = state_from_dict(state_to_dict(s))
    assert back == s and (back.approved_step, back.approved_by) == (2, "alice")
    plain = decide(p, None, None, T0).after
    # no approval: the file is as before approvals existed (no new keys)
    assert "approved" not in dump_state(plain)
    assert state_from_dict(state_to_dict(plain)) == dataclasses.replace(plain)
