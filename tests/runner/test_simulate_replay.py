"""The pure replay (runner/reconcile/simulate.py): looks in, the runner's decisions out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from runner.errors import UsageError
from runner.gates.request import GateRequest
from runner.load.assemble import build_plan
from runner.model import GateResult, RepoConfig, Verdict
from runner.reconcile.simulate import TooManyLooks, look_times, replay

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
PLAN = build_plan("checkout", {"flag": "checkout", "strategy": "custom", "steps": [0, 10, 50, 100],
                               "wait": "10m", "gates": {"error_rate": 1.0}}, RepoConfig())


def test_look_times_cover_the_range_and_refuse_too_many() -> None:
    assert look_times(T0, T0 + timedelta(minutes=10), timedelta(minutes=5)) == [
        T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)]
    with pytest.raises(TooManyLooks) as refused:
        look_times(T0, T0 + timedelta(days=400), timedelta(seconds=1))
    assert isinstance(refused.value, UsageError)


def test_each_look_is_evaluated_at_its_moment_and_a_failure_rolls_back() -> None:
    asked: list[tuple[int, float, datetime, datetime | None]] = []
    onset = T0 + timedelta(minutes=25)

    def evaluate(request: GateRequest, now: datetime) -> Sequence[GateResult]:
        asked.append((request.step, request.percentage, now, request.step_started_at))
        value = 5.0 if now >= onset else 0.2
        verdict = Verdict.FAIL if value > 1 else Verdict.PASS
        return (GateResult("error_rate", verdict, value, "<= 1", evaluated_at=now),)

    looks = look_times(T0, T0 + timedelta(hours=1), timedelta(minutes=5))
    result = replay(PLAN, looks, evaluate)
    kinds = [(lk.at - T0, lk.kind) for lk in result.looks]
    m = timedelta(minutes=1)
    assert kinds == [(0 * m, "start"), (5 * m, "hold"), (10 * m, "advance"), (15 * m, "hold"),
                     (20 * m, "advance"), (25 * m, "rollback")]
    assert result.outcome == "rolled_back" and result.ended_at == onset
    # the first evaluation at 5 minutes, of step 0 started at T0; the last of 50 % from 20m
    assert asked[0] == (0, 0.0, T0 + 5 * m, T0)
    assert asked[-1] == (2, 50.0, onset, T0 + 20 * m)


def test_a_hold_that_records_nothing_leaves_the_state_as_the_runner_finds_it() -> None:
    seen: list[datetime | None] = []

    def inconclusive(request: GateRequest, now: datetime) -> Sequence[GateResult]:
        return (GateResult("error_rate", Verdict.INCONCLUSIVE, None, "<= 1", evaluated_at=now),)

    looks = look_times(T0, T0 + timedelta(minutes=40), timedelta(minutes=5))
    result = replay(PLAN, looks, inconclusive)
    for look in result.looks[1:]:
        seen.append(look.decision.before.last_evaluated_at if look.decision.before else None)
    # nothing is committed while it holds: each run reads the state the start wrote
    assert set(seen) == {None}
    assert result.outcome == "paused" and result.ended_at == T0 + timedelta(minutes=30)
    assert "no conclusive evaluation for 30m" in result.looks[-1].decision.reason


def test_a_plan_that_starts_later_is_pending_until_then() -> None:
    later = build_plan("checkout", {"flag": "checkout", "strategy": "custom", "steps": [0, 100],
                                    "wait": "5m", "gates": {"error_rate": 1.0},
                                    "start_at": "2026-01-15T12:10:00Z"}, RepoConfig())
    looks = look_times(T0, T0 + timedelta(minutes=10), timedelta(minutes=5))
    result = replay(later, looks, lambda r, now: ())
    assert [lk.kind for lk in result.looks] == ["pending", "pending", "start"]
    assert result.started_at == T0 + timedelta(minutes=10)
