"""Simulation: guarded rollouts — comparison gates (treatment vs control) against global gates.

Walks the whole ``safe`` plan (0, 5, 10, 25, 50, 75, 100 %, a 5-minute wait a step, the
runner looking every 5 minutes) through the real decision (``runner.reconcile.decide``),
with gate results from the real verdict rules (``runner.gates.verdicts.judge``) and the
real comparison (``runner.gates.compare.compare_cohorts``). Seeded and reproducible.

Traffic: 6,000 users an hour (500 per 5-minute window), each a new visitor making 20
requests in the window (the assumption: about one request every 15 seconds while active),
so 10,000 requests per window. Each user is assigned to treatment with the rollout's
percentage (by hash, as the SDK does); the sample-ratio check counts assigned users (what
an SDK that counts first assignments reports). Per request: an error with probability
0.3 % (baseline), a latency drawn from a lognormal with median 100 ms whose p99 is 500 ms,
so 1 % of requests are slower than the 500 ms objective. Counts are drawn binomially per
window, cumulative per step (the comparison's input), per window for the global gate.

Scenarios:

- **A/A**: treatment is control; ``--seeds`` runs (default 200). The share rolled back must
  not exceed 1 - confidence (exit 1 if it does). Also the healthy rollout's duration.
- **at the margin**: treatment exactly ``max_increase`` worse on both metrics, the worst
  case the error budget covers: the share rolled back must not exceed 1 - confidence either.
- **broken**: the feature fails 5 % of the requests it touches (treatment error rate
  0.3 + 0.05 x 99.7 ~ 5.3 %). Global gate ``error_rate <= 1 %`` against the comparison.
- **latency**: the feature doubles every latency: 9.3 % of treatment requests are slower than
  500 ms instead of 1 %. The global counterpart is ``slow_share <= 2 %`` of all requests.

    python benchmarks/bench_guarded.py                # 200 A/A seeds, 50 per regression (~15 s)
    python benchmarks/bench_guarded.py --seeds 1000 --deadline 45m
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.gates.compare import CohortCounts, compare_cohorts, comparing_steps
from runner.gates.readings import Reading
from runner.gates.verdicts import judge
from runner.load.durations import parse_duration
from runner.model import (
    Comparison,
    Gate,
    MetricComparison,
    Phase,
    RolloutPlan,
    RolloutState,
    Step,
    Strategy,
)
from runner.reconcile.decide import Action, decide

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
LOOK = timedelta(minutes=5)
USERS_PER_WINDOW = 500  # 6,000 an hour
REQUESTS_PER_USER = 20
BASE_ERROR = 0.003
BASE_SLOW = 0.01  # share slower than 500 ms: the objective is the p99
#: Doubling every latency of a lognormal whose p99 is 500 ms: P(X > 250 ms).
SIGMA = math.log(5.0) / statistics.NormalDist().inv_cdf(0.99)  # median 100 ms
DOUBLED_SLOW = 1.0 - statistics.NormalDist().cdf(math.log(2.5) / SIGMA)
BROKEN_ERROR = BASE_ERROR + 0.05 * (1 - BASE_ERROR)
DEFAULT_DEADLINE = 1800.0  # the runner's default progress deadline
#: Long enough for every run to end (rolled back, paused or completed).
HORIZON = timedelta(hours=12)

COMPARE = Comparison(
    metrics=(MetricComparison("error_rate", 0.5), MetricComparison("slow_rate", 1.0, 500.0)),
    confidence=0.95, min_requests=500,
)
GLOBAL_ERRORS = Gate("error_rate", max=1.0)
GLOBAL_SLOW = Gate("slow_share", max=2.0, query="slow_share")


def binomial(rng: random.Random, n: int, p: float) -> int:
    """An exact binomial draw by inversion, the outcomes taken outward from the mode (so
    about one standard deviation of steps); stdlib only."""
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    q = 1.0 - p
    mode = min(n, int((n + 1) * p))
    log_pm = (math.lgamma(n + 1) - math.lgamma(mode + 1) - math.lgamma(n - mode + 1)
              + mode * math.log(p) + (n - mode) * math.log(q))
    pm = math.exp(log_pm)
    u = rng.random()
    acc = pm
    if u <= acc:
        return mode
    lo, hi, plo, phi = mode, mode, pm, pm
    while True:
        moved = False
        if hi < n:
            phi *= (n - hi) / (hi + 1) * p / q
            hi += 1
            acc += phi
            moved = True
            if u <= acc:
                return hi
        if lo > 0:
            plo *= lo / (n - lo + 1) * q / p
            lo -= 1
            acc += plo
            moved = True
            if u <= acc:
                return lo
        if not moved or (phi < 1e-300 and plo < 1e-300):
            return mode  # u beyond the accumulated mass by rounding: the mode


@dataclass(frozen=True)
class World:
    name: str
    treatment_error: float = BASE_ERROR
    treatment_slow: float = BASE_SLOW


@dataclass
class Cohort:
    users: int = 0
    requests: int = 0
    errors: int = 0
    slow: int = 0

    def add(self, other: Cohort) -> None:
        self.users += other.users
        self.requests += other.requests
        self.errors += other.errors
        self.slow += other.slow

    def counts(self) -> CohortCounts:
        return CohortCounts(self.requests, self.errors, self.slow, self.users)


def window(rng: random.Random, share: float, world: World) -> tuple[Cohort, Cohort]:
    t_users = binomial(rng, USERS_PER_WINDOW, share)
    c_users = USERS_PER_WINDOW - t_users
    t_req, c_req = t_users * REQUESTS_PER_USER, c_users * REQUESTS_PER_USER
    t = Cohort(t_users, t_req, binomial(rng, t_req, world.treatment_error),
               binomial(rng, t_req, world.treatment_slow))
    c = Cohort(c_users, c_req, binomial(rng, c_req, BASE_ERROR), binomial(rng, c_req, BASE_SLOW))
    return t, c


def make_plan(compare: Comparison | None, gates: tuple[Gate, ...], deadline: float) -> RolloutPlan:
    steps = tuple(Step(p) for p in (0, 5, 10, 25, 50, 75, 100))
    return RolloutPlan(name="checkout", flag="checkout", strategy=Strategy.SAFE, steps=steps,
                       wait=300.0, gates=gates, metrics=None, progress_deadline=deadline,
                       compare=compare, digest="bench")


@dataclass
class Outcome:
    phase: Phase
    at: float  # the percentage when it ended
    minutes: float  # from the start to the end
    exposed: int  # users who got treatment before the end
    by: str = ""  # the gate that acted
    results: list[str] = field(default_factory=list)


def walk(plan: RolloutPlan, world: World, rng: random.Random) -> Outcome:
    looks = comparing_steps(plan.percentages)
    decision = decide(plan, None, None, T0)
    state: RolloutState | None = decision.after
    assert state is not None
    now = T0
    step = Cohort(), Cohort()
    exposed = 0
    while now - T0 < HORIZON:
        now += LOOK
        share = state.current_percentage / 100.0
        t, c = window(rng, share, world)
        exposed += t.users
        step[0].add(t)
        step[1].add(c)
        requests = t.requests + c.requests
        readings = {
            "error_rate": Reading(100.0 * (t.errors + c.errors) / requests),
            "slow_share": Reading(100.0 * (t.slow + c.slow) / requests),
        }
        gates = judge(plan.gates, readings, now)
        if plan.compare is not None:
            gates += compare_cohorts(plan.compare, step[0].counts(), step[1].counts(),
                                     percentage=state.current_percentage, looks=looks, now=now)
        decision = decide(plan, state, gates, now)
        assert decision.after is not None
        before, state = state, decision.after
        if decision.action is Action.ADVANCE:
            step = Cohort(), Cohort()
        if state.phase is not Phase.PROGRESSING:
            failed = [g.name for g in gates if g.verdict.value == "fail" and not g.dry_run]
            return Outcome(state.phase, before.current_percentage, (now - T0) / timedelta(minutes=1),
                           exposed, ", ".join(failed) or state.reason[:60])
    return Outcome(state.phase, state.current_percentage, HORIZON / timedelta(minutes=1), exposed,
                   "horizon")


def srm_on_requests(seeds: int) -> tuple[float, float]:
    """The share of looks (every 5 minutes of a 30-minute step at 5 %) at which the
    sample-ratio check flags a healthy split, counting assigned users and counting requests."""
    flagged_users = flagged_requests = looks = 0
    for seed in range(seeds):
        rng = random.Random(f"srm:{seed}")
        t, c = Cohort(), Cohort()
        for _ in range(6):
            wt, wc = window(rng, 0.05, World("aa"))
            t.add(wt)
            c.add(wc)
            by_users = compare_cohorts(COMPARE, t.counts(), c.counts(), percentage=5, looks=5,
                                       now=T0)[0]
            by_requests = compare_cohorts(
                COMPARE, CohortCounts(t.requests, t.errors), CohortCounts(c.requests, c.errors),
                percentage=5, looks=5, now=T0)[0]
            flagged_users += by_users.verdict.value == "error"
            flagged_requests += by_requests.verdict.value == "error"
            looks += 1
    return flagged_users / looks, flagged_requests / looks


def run(plan: RolloutPlan, world: World, seeds: range) -> list[Outcome]:
    return [walk(plan, world, random.Random(f"{world.name}:{seed}")) for seed in seeds]


def share(outs: list[Outcome], pred: Callable[[Outcome], bool]) -> float:
    return sum(1 for o in outs if pred(o)) / len(outs)


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def steps_text(outs: list[Outcome]) -> str:
    """The percentages at which runs ended, most common first: ``5 % (48), 10 % (2)``."""
    counts: dict[float, int] = {}
    for o in outs:
        counts[o.at] = counts.get(o.at, 0) + 1
    return ", ".join(f"{p:g} % ({n})" for p, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=200, help="A/A runs (default 200)")
    ap.add_argument("--regression-seeds", type=int, default=50,
                    help="runs of each regression scenario (default 50)")
    ap.add_argument("--deadline", default="1h",
                    help="the plan's progress deadline (default 1h; the runner's default 30m is "
                         "shown beside it)")
    args = ap.parse_args()
    deadline = float(parse_duration(args.deadline))
    started = time.monotonic()
    alpha = 1 - COMPARE.confidence

    comparing = make_plan(COMPARE, (GLOBAL_ERRORS,), deadline)
    aa = run(comparing, World("aa"), range(args.seeds))
    aa_default = run(make_plan(COMPARE, (GLOBAL_ERRORS,), DEFAULT_DEADLINE), World("aa"),
                     range(args.seeds))
    aa_global = run(make_plan(None, (GLOBAL_ERRORS,), deadline), World("aa"), range(args.seeds))
    rolled = max(share(outs, lambda o: o.phase is Phase.ROLLED_BACK) for outs in (aa, aa_default))

    print(f"Guarded rollouts: the safe plan (0-5-10-25-50-75-100 %, 5 min a step, a look every "
          f"5 min); {USERS_PER_WINDOW * 12:,} users an hour x {REQUESTS_PER_USER} requests; "
          f"baseline errors {BASE_ERROR:.1%}, slow {BASE_SLOW:.0%}")
    print(f"Comparison: error_rate +{COMPARE.metrics[0].max_increase:g} pp, slow_rate (500 ms) "
          f"+{COMPARE.metrics[1].max_increase:g} pp, confidence {COMPARE.confidence:g}, "
          f"min_requests {COMPARE.min_requests}; global gate error_rate <= 1 %; progress "
          f"deadline {args.deadline} unless shown")
    print()
    print(f"A/A (healthy), {args.seeds} runs:")
    rows = [("gates", "rolled back", "paused", "completed", "time to complete (median, max)")]
    for label, outs in (("global only", aa_global), ("global + comparison", aa),
                        ("global + comparison, deadline 30m", aa_default)):
        done = [o.minutes for o in outs if o.phase is Phase.COMPLETED]
        rows.append((label, f"{share(outs, lambda o: o.phase is Phase.ROLLED_BACK):.1%}",
                     f"{share(outs, lambda o: o.phase is Phase.PAUSED):.1%}",
                     f"{share(outs, lambda o: o.phase is Phase.COMPLETED):.1%}",
                     f"{median(done):.0f} min, {max(done, default=float('nan')):.0f} min"))
        paused = [o for o in outs if o.phase is Phase.PAUSED]
        if paused:
            rows.append(("  paused at", "", steps_text(paused), "", "no conclusive pass in time"))
    table(rows)
    print(f"  false-positive rate (healthy runs rolled back): {rolled:.1%}, allowed "
          f"1 - confidence = {alpha:.0%}")
    edge = run(comparing, World("margin", treatment_error=BASE_ERROR + 0.005,
                                treatment_slow=BASE_SLOW + 0.01), range(args.seeds))
    edge_rolled = share(edge, lambda o: o.phase is Phase.ROLLED_BACK)
    print(f"  at the margin (the worst case the budget covers: treatment exactly +0.5 pp errors "
          f"and +1 pp slow), {args.seeds} runs: rolled back {edge_rolled:.1%} (allowed "
          f"{alpha:.0%}), paused {share(edge, lambda o: o.phase is Phase.PAUSED):.1%}")
    users, requests = srm_on_requests(args.seeds)
    print(f"  sample-ratio check at 5 %, each look of a 30-minute step: mismatch flagged on "
          f"{users:.1%} of looks counting users, {requests:.1%} counting requests (each user's "
          f"{REQUESTS_PER_USER} requests share one assignment: count assignments per user)")
    print()

    n = args.regression_seeds
    for world, gates, what in (
        (World("broken", treatment_error=BROKEN_ERROR), (GLOBAL_ERRORS,),
         f"broken feature: {BROKEN_ERROR:.1%} of treatment requests fail (baseline {BASE_ERROR:.1%})"),
        (World("latency", treatment_slow=DOUBLED_SLOW), (GLOBAL_ERRORS, GLOBAL_SLOW),
         f"latency x2: {DOUBLED_SLOW:.1%} of treatment requests slower than 500 ms (baseline "
         f"{BASE_SLOW:.0%})"),
    ):
        print(f"{what}, {n} runs:")
        rows = [("gates", "rolled back", "at step (runs)", "minutes from start (median)",
                 "users exposed (median, max)", "gate")]
        for label, plan in (("global only", make_plan(None, gates, deadline)),
                            ("global + comparison", make_plan(COMPARE, gates, deadline))):
            outs = run(plan, world, range(n))
            back = [o for o in outs if o.phase is Phase.ROLLED_BACK]
            by: dict[str, int] = {}
            for o in back:
                by[o.by] = by.get(o.by, 0) + 1
            rows.append((label, f"{len(back) / n:.0%}", steps_text(back) or "never",
                         f"{median([o.minutes for o in back]):.0f}",
                         f"{median([float(o.exposed) for o in back]):,.0f}, "
                         f"{max((o.exposed for o in back), default=0):,}",
                         ", ".join(f"{k} ({v})" for k, v in sorted(by.items(), key=lambda kv: -kv[1]))))
            rest = [o for o in outs if o.phase is not Phase.ROLLED_BACK]
            if rest:
                rows.append(("  not rolled back", "", steps_text(rest), "", "",
                             ", ".join(sorted({o.phase.value for o in rest}))))
        table(rows)
        print()
    print(f"({time.monotonic() - started:.1f} s)")
    if rolled > alpha or edge_rolled > alpha:
        print(f"FAIL: a rollback rate (A/A {rolled:.1%}, at the margin {edge_rolled:.1%}) exceeds "
              f"1 - confidence = {alpha:.0%}")
        return 1
    return 0


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


if __name__ == "__main__":
    raise SystemExit(main())
