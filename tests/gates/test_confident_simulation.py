"""Seeded simulation: a whole safe rollout at 600 users an hour through the real verdict rules
(``runner.gates.verdicts.judge``) and the real decision (``runner.reconcile.decide``), with
the gates ``rollout init`` scaffolds against the reference's point-estimate gates.

Traffic: 600 users an hour (50 per 5-minute window, the count drawn Poisson), each making 3
requests, so about 150 requests a window; each request fails with probability 0.3 % (the
healthy baseline) or, for the broken feature, 20 %. The runner looks every 5 minutes; the
point-estimate gates read the last 5 minutes, the gate with a confidence the counts since
the step started. The plan: safe (0, 5, 10, 25, 50, 75, 100 %), 5 minutes a step.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from runner.gates.readings import Reading, step_key
from runner.gates.verdicts import judge
from runner.model import Gate, Phase, RolloutPlan, Step, Strategy
from runner.reconcile.decide import Action, decide

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
LOOK = timedelta(minutes=5)
USERS_PER_WINDOW = 50  # 600 an hour
REQUESTS_PER_USER = 3
BASELINE = 0.003
HORIZON = timedelta(hours=12)

POINT = (Gate("error_rate", max=1.0), Gate("request_count", min=100.0))
#: runner/templates/init/rollout.yaml's error and traffic gates
SCAFFOLDED = (Gate("error_rate", max=1.0, confidence=0.95), Gate("request_count", min=100.0))


def safe_plan(gates: tuple[Gate, ...], deadline: float = 1800.0) -> RolloutPlan:
    return RolloutPlan(name="checkout", flag="checkout", strategy=Strategy.SAFE,
                       steps=tuple(Step(p) for p in (0, 5, 10, 25, 50, 75, 100)), wait=300.0,
                       gates=gates, metrics=None, progress_deadline=deadline, digest="sim")


@dataclass(frozen=True)
class Outcome:
    phase: Phase
    minutes: float
    #: requests since the step started at the look that rolled back (0 otherwise)
    step_requests: int = 0
    #: looks into the step at the rollback
    step_looks: int = 0


def walk(plan: RolloutPlan, error_rate: float, rng: np.random.Generator) -> Outcome:
    decision = decide(plan, None, None, T0)
    state = decision.after
    assert state is not None
    now = T0
    step_requests = step_errors = looks = 0
    while now - T0 < HORIZON:
        now += LOOK
        looks += 1
        requests = int(rng.poisson(USERS_PER_WINDOW)) * REQUESTS_PER_USER
        errors = int(rng.binomial(requests, error_rate))
        step_requests += requests
        step_errors += errors
        readings = {
            "error_rate": Reading(100.0 * errors / requests if requests else float("nan")),
            "request_count": Reading(float(requests)),
            step_key("requests"): Reading(float(step_requests)),
            step_key("errors"): Reading(float(step_errors)),
        }
        results = judge(plan.gates, readings, now, steps=len(plan.steps))
        decision = decide(plan, state, results, now)
        assert decision.after is not None
        state = decision.after
        if state.phase is Phase.ROLLED_BACK:
            return Outcome(state.phase, (now - T0) / timedelta(minutes=1), step_requests, looks)
        if state.phase is not Phase.PROGRESSING:
            return Outcome(state.phase, (now - T0) / timedelta(minutes=1))
        if decision.action is Action.ADVANCE:
            step_requests = step_errors = looks = 0
    return Outcome(state.phase, HORIZON / timedelta(minutes=1))


def run(plan: RolloutPlan, error_rate: float, seeds: int, name: str) -> list[Outcome]:
    return [walk(plan, error_rate, np.random.default_rng([seed, zlib.crc32(name.encode())]))
            for seed in range(seeds)]


def share(outs: list[Outcome], phase: Phase) -> float:
    return sum(o.phase is phase for o in outs) / len(outs)


def test_healthy_rollouts_at_600_users_an_hour_are_not_rolled_back_by_noise() -> None:
    before = run(safe_plan(POINT), BASELINE, 200, "aa-point")
    after = run(safe_plan(SCAFFOLDED), BASELINE, 200, "aa-confident")
    # point estimates: two errors in ~150 requests breach 1 %, on ~7 % of looks
    assert share(before, Phase.ROLLED_BACK) > 0.2
    assert share(after, Phase.ROLLED_BACK) <= 0.05
    # with the time to gather evidence (2,000-odd requests a step), they complete
    patient = run(safe_plan(SCAFFOLDED, deadline=4 * 3600.0), BASELINE, 100, "aa-patient")
    assert share(patient, Phase.ROLLED_BACK) <= 0.05
    assert share(patient, Phase.COMPLETED) >= 0.9


def test_a_large_breach_fails_at_the_first_look() -> None:
    broken = run(safe_plan(SCAFFOLDED), 0.20, 100, "broken")
    assert share(broken, Phase.ROLLED_BACK) == 1.0
    assert all(o.step_looks == 1 and o.minutes == 5.0 for o in broken)  # at 0 %, first look
    assert max(o.step_requests for o in broken) <= 250
