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

Then issue 18's cases, before (the code of ``--before``) and after (this checkout's), each
with its limit; the exit status is 1 when an "after" value breaks one (docs/guarded.md).

    python benchmarks/bench_guarded.py                # 200 A/A seeds, 50 per regression, the cases (~70 s)
    python benchmarks/bench_guarded.py --cases-only --quick   # a smoke run of the cases
    python benchmarks/bench_guarded.py --seeds 1000 --deadline 45m
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

# the code benchmarked: this checkout's, or the folder BENCH_GUARDED_CODE names (the cases'
# "before" code, run in a child process)
sys.path.insert(0, os.environ.get("BENCH_GUARDED_CODE") or str(Path(__file__).resolve().parents[1]))

from runner.gates import readings as gate_readings
from runner.gates.compare import (
    SAMPLE_RATIO,
    CohortCounts,
    compare_cohorts,
    comparing_steps,
    look_alpha,
)
from runner.gates.readings import Reading
from runner.gates.verdicts import judge
from runner.load.durations import parse_duration
from runner.load.plans import load_plans
from runner.model import (
    Comparison,
    Gate,
    MetricComparison,
    Phase,
    RepoConfig,
    RolloutPlan,
    RolloutState,
    Step,
    Strategy,
)
from runner.reconcile.decide import Action, decide

#: The checkout this file lives in, and the folder whose ``runner/`` is benchmarked.
ROOT = Path(__file__).resolve().parent.parent
CODE = Path(os.environ.get("BENCH_GUARDED_CODE") or ROOT)
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
#: The code before issue 18: the cases' "before" column.
BEFORE = "42ab194"

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
            if state.phase is Phase.ROLLED_BACK:
                by = ", ".join(failed)
            elif SAMPLE_RATIO in state.reason:
                by = "sample-ratio mismatch"
            elif "progress deadline" in state.reason:
                by = "progress deadline"
            else:
                by = state.reason[:60]
            return Outcome(state.phase, before.current_percentage, (now - T0) / timedelta(minutes=1),
                           exposed, by)
    return Outcome(state.phase, state.current_percentage, HORIZON / timedelta(minutes=1), exposed,
                   "horizon")


def srm_on_requests(seeds: int) -> tuple[float, float | None]:
    """The share of looks (every 5 minutes of a 30-minute step at 5 %) at which the
    sample-ratio check flags a healthy split, counting assigned users and counting requests
    (None: on requests the check is not run)."""
    flagged_users = flagged_requests = looks = checked = 0
    for seed in range(seeds):
        rng = random.Random(f"srm:{seed}")
        t, c = Cohort(), Cohort()
        for _ in range(6):
            wt, wc = window(rng, 0.05, World("aa"))
            t.add(wt)
            c.add(wc)
            by_users = compare_cohorts(COMPARE, t.counts(), c.counts(), percentage=5, looks=5,
                                       now=T0)[0]
            by_requests = [g for g in compare_cohorts(
                COMPARE, CohortCounts(t.requests, t.errors), CohortCounts(c.requests, c.errors),
                percentage=5, looks=5, now=T0) if g.name == SAMPLE_RATIO]
            flagged_users += by_users.verdict.value == "error"
            flagged_requests += any(g.verdict.value == "error" for g in by_requests)
            checked += bool(by_requests)
            looks += 1
    return flagged_users / looks, flagged_requests / looks if checked else None


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
    ap.add_argument("--quick", action="store_true",
                    help="fewer runs everywhere (under 30 s): a smoke run, not numbers to quote")
    ap.add_argument("--before", default=BEFORE,
                    help=f"the commit whose code the issue-18 cases compare against (default "
                         f"{BEFORE}, before issue 18)")
    ap.add_argument("--cases-only", action="store_true", help="only the issue-18 cases")
    ap.add_argument("--emit-cases", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.emit_cases:  # a child of print_cases, with BENCH_GUARDED_CODE set
        print(json.dumps(emit_cases(args.quick)))
        return 0
    if args.quick:
        args.seeds, args.regression_seeds = min(args.seeds, 40), min(args.regression_seeds, 10)
    if args.cases_only:
        return cases_verdict(print_cases(args.before, args.quick))
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
    rows: list[tuple[str, ...]] = [("gates", "rolled back", "paused", "completed",
                                    "time to complete (median, max)")]
    for label, outs in (("global only", aa_global), ("global + comparison", aa),
                        ("global + comparison, deadline 30m", aa_default)):
        done = [o.minutes for o in outs if o.phase is Phase.COMPLETED]
        rows.append((label, f"{share(outs, lambda o: o.phase is Phase.ROLLED_BACK):.1%}",
                     f"{share(outs, lambda o: o.phase is Phase.PAUSED):.1%}",
                     f"{share(outs, lambda o: o.phase is Phase.COMPLETED):.1%}",
                     f"{median(done):.0f} min, {max(done, default=float('nan')):.0f} min"))
        paused = [o for o in outs if o.phase is Phase.PAUSED]
        for why in sorted({o.by for o in paused}):
            rows.append((f"    paused: {why}", "", steps_text([o for o in paused if o.by == why]),
                         "", ""))
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
          f"{users:.1%} of looks counting users, "
          + ("not run counting requests" if requests is None else f"{requests:.1%} counting requests")
          + f" (each user's {REQUESTS_PER_USER} requests share one assignment: count users)")
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
            for why in sorted({f"{o.phase.value}: {o.by}" for o in rest}):
                rows.append((f"    {why}", "", steps_text([o for o in rest
                                                            if f"{o.phase.value}: {o.by}" == why]),
                             "", "", ""))
        table(rows)
        print()
    broken = print_cases(args.before, args.quick)
    print(f"({time.monotonic() - started:.1f} s)")
    failed = cases_verdict(broken)
    if rolled > alpha or edge_rolled > alpha:
        print(f"FAIL: a rollback rate (A/A {rolled:.1%}, at the margin {edge_rolled:.1%}) exceeds "
              f"1 - confidence = {alpha:.0%}")
        return 1
    return failed


def cases_verdict(broken: list[str]) -> int:
    """1 (and each broken limit printed) when an issue-18 case's "after" value breaks its
    limit, else 0: the benchmark runs as a check."""
    for what in broken:
        print(f"FAIL: {what}")
    return 1 if broken else 0


# === issue 18's cases, before and after =======================================================
#
# Each case builds its plan from YAML text (the constants below) through the loader of the
# code under test, and drives it through the public decision path: ``compare_cohorts``,
# ``judge`` and ``decide``. A plan the code under test does not accept (an option it does
# not know) makes that case "n/a" for it. The lead fills in new options (e1's per-user
# counts, e3's absolute gates with ``confidence``, e4's ``traffic``) in these constants;
# the same benchmark then shows their effect.

#: Case "false pass at the margin", "clustered" (on requests) and the issue's 0/500 example:
#: the safe plan, both comparisons (so each bound is at 1 - 0.05 / (5 steps x 2 metrics) =
#: 99.5 %: the limit is 0.5 %), on request counts (the default unit, before and after).
CASE_COMPARE_PLAN = """\
flag: checkout
strategy: safe
gates:
  error_rate: 1.0
compare:
  error_rate: {max_increase: 0.5}
  slow_rate: {objective_ms: 500, max_increase: 1.0}
  confidence: 0.95
  min_requests: 500
"""
#: Case "sample-ratio false pauses": the safe plan with one comparison; srm_p_value default.
CASE_SRM_PLAN = """\
flag: checkout
strategy: safe
compare:
  error_rate: {max_increase: 0.5}
"""
#: Case "A/A with the scaffolded absolute gates": None reads the code's own `rollout init`
#: template (runner/templates/init/rollout.yaml), so issue 18's change of it (``error_rate:
#: {max: 1.0, confidence: 0.95}`` instead of a point estimate) shows by itself.
CASE_SCAFFOLD_PLAN: str | None = None
#: Case "detection" and "durations": the guarded plan of the simulations above, from YAML
#: (on requests, so that both codes load it).
CASE_GUARDED_PLAN = """\
flag: checkout
strategy: safe
progress_deadline: 1h
gates:
  error_rate: 1.0
compare:
  error_rate: {max_increase: 0.5}
  slow_rate: {objective_ms: 500, max_increase: 1.0}
  confidence: 0.95
  min_requests: 500
"""
#: Case "durations", the expected side: the same plan with the simulated traffic declared
#: (6,000 users an hour x 20 requests: ``traffic`` counts requests over both cohorts).
#: Planning only: the runner's decisions never read it. A code without ``traffic`` refuses it.
CASE_PLANNED_PLAN = CASE_GUARDED_PLAN + f"traffic: {USERS_PER_WINDOW * 12 * REQUESTS_PER_USER}/h\n"
#: CohortCounts fields the simulation can fill, by the name of the per-cohort tally that
#: feeds them (runner/gates/compare.py's names); a field the code under test's CohortCounts
#: does not have is left out (the "before" code has no user counts).
COHORT_FIELDS = {
    "requests": "requests", "errors": "errors", "slow": "slow", "assigned": "users",
    "users": "users", "users_with_errors": "error_users", "users_slow": "slow_users",
}


def expected_durations(plan: Any) -> dict[float, dict[str, float]]:
    """Each comparing step's expected hold in seconds, by percentage, as ``rollout plan``'s
    evidence gives it (``runner.review.plan_evidence``: the longer of the step's wait and its
    slowest comparison's healthy pass), at the plan's power (``p80``) and at power 0.5
    (``p50``, the median); {} for a plan without ``traffic``."""
    # inline: only the code under test's "after" side has the module (the "before" child
    # process gets ImportError, and the case says n/a)
    from runner.review.plan_evidence import plan_evidence

    if getattr(plan, "traffic", None) is None:
        return {}
    out: dict[float, dict[str, float]] = {}
    for label, power in (("p80", plan.traffic.power), ("p50", 0.5)):
        traffic = dataclasses.replace(plan.traffic, power=power)
        evidence = plan_evidence(dataclasses.replace(plan, traffic=traffic)) or {}
        for s in evidence.get("steps", ()):
            if s["seconds"] is not None:
                out.setdefault(s["percentage"], {})[label] = s["seconds"]
    return out


#: The expected duration of each step: a callable (plan) -> {percentage: {"p80"|"p50":
#: seconds}}, or None to leave the "expected" rows out.
EXPECTED_DURATIONS: Callable[[Any], dict[float, dict[str, float]]] | None = expected_durations

LOOK_1M = timedelta(minutes=1)


@dataclass(frozen=True)
class Rate:
    """A per-request probability, optionally clustered by user: a share ``heavy`` of users at
    ``p_heavy``, the rest at ``p``."""

    p: float
    heavy: float = 0.0
    p_heavy: float = 0.0


@dataclass
class Tally:
    users: float = 0
    requests: float = 0
    errors: float = 0
    slow: float = 0
    error_users: float = 0
    slow_users: float = 0
    errors_squared: float = 0
    slow_squared: float = 0

    def add(self, other: Tally) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def counts(self, *, assigned: bool = True) -> CohortCounts:
        known = {f.name for f in dataclasses.fields(CohortCounts)}
        kw = {name: float(getattr(self, src)) for name, src in COHORT_FIELDS.items()
              if name in known and (assigned or name != "assigned")}
        return CohortCounts(**kw)


def _cohort(rng: np.random.Generator, users: int, err: Rate, slow: Rate,
            per_user: int = REQUESTS_PER_USER) -> Tally:
    if users == 0:
        return Tally()
    out = Tally(users=users, requests=users * per_user)
    for rate, name in ((err, "errors"), (slow, "slow")):
        p = np.where(rng.random(users) < rate.heavy, rate.p_heavy, rate.p)
        x = rng.binomial(per_user, p)
        setattr(out, name, float(x.sum()))
        setattr(out, f"{'error' if name == 'errors' else 'slow'}_users", float((x > 0).sum()))
        setattr(out, f"{name}_squared", float((x * x).sum()))
    return out


def _window(rng: np.random.Generator, users: int, share: float, t_err: Rate, t_slow: Rate,
            c_err: Rate, c_slow: Rate, per_user: int = REQUESTS_PER_USER) -> tuple[Tally, Tally]:
    t_users = int(rng.binomial(users, share))
    return (_cohort(rng, t_users, t_err, t_slow, per_user),
            _cohort(rng, users - t_users, c_err, c_slow, per_user))


def _load(text: str) -> RolloutPlan | None:
    """The plan from YAML through the loader of the code under test; None when it refuses it."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "checkout.yaml").write_text(text)
        try:
            got = load_plans(Path(tmp), "rollouts/", RepoConfig())
        except Exception:
            return None
    if got.problems or "checkout" not in got.plans:
        return None
    return got.plans["checkout"][0][0]


def _one_step(plan: RolloutPlan, runs: int, seed: str, users_per_look: int, looks: int,
              t_err: Rate, t_slow: Rate, c_err: Rate, c_slow: Rate,
              percentage: float = 5.0) -> dict[str, float]:
    """One step at ``percentage`` of a plan, looked at ``looks`` times: the share of runs in
    which each compare result was ever ``pass``, ``fail`` or ``error``."""
    assert plan.compare is not None
    n = comparing_steps(plan.percentages)
    ever: dict[str, int] = {}
    for run in range(runs):
        rng = np.random.default_rng(abs(hash((seed, run))) % 2**32)
        t, c = Tally(), Tally()
        seen: set[str] = set()
        for look in range(looks):
            wt, wc = _window(rng, users_per_look, percentage / 100, t_err, t_slow, c_err, c_slow)
            t.add(wt)
            c.add(wc)
            for g in compare_cohorts(plan.compare, t.counts(), c.counts(), percentage=percentage,
                                     looks=n, now=T0 + look * LOOK):
                seen.add(f"{g.name}:{g.verdict.value}")
        for key in seen:
            ever[key] = ever.get(key, 0) + 1
    return {k: v / runs for k, v in ever.items()}


def case_margin(runs: int) -> dict[str, Any]:
    plan = _load(CASE_COMPARE_PLAN)
    if plan is None or plan.compare is None:
        return {}
    assert plan.compare is not None
    alpha = look_alpha(plan.compare, comparing_steps(plan.percentages))
    got = _one_step(plan, runs, "margin", USERS_PER_WINDOW, 24, Rate(BASE_ERROR + 0.005),
                    Rate(BASE_SLOW), Rate(BASE_ERROR), Rate(BASE_SLOW))
    return {"margin_pass": got.get("compare.error_rate:pass", 0.0), "margin_limit": alpha}


#: 20 % of users slow on 17 % of their requests, the rest on 2 % (5 % on average); errors
#: clustered the same way around the 0.3 % baseline (20 % of users at 1.02 %, the rest 0.12 %).
CLUSTERED_SLOW = Rate(0.02, 0.2, 0.17)
CLUSTERED_ERRORS = Rate(0.0012, 0.2, 0.0102)
#: The same, with treatment exactly at the margins (+1 pp slow, +0.5 pp errors): the worst
#: case the budget covers.
CLUSTERED_SLOW_MARGIN = Rate(0.03, 0.2, 0.18)
CLUSTERED_ERRORS_MARGIN = Rate(0.0062, 0.2, 0.0152)
#: Requests a user makes in a 5-minute window in the low-traffic A/A case (150 a window at
#: 600 users an hour: the scaffold's request_count >= 100 is met at every look).
LOW_TRAFFIC_REQUESTS = 3


def users_share(rate: Rate, requests: int = REQUESTS_PER_USER) -> float:
    """The share of users who see at least one event in ``requests`` requests at ``rate``."""
    return (rate.heavy * (1 - (1 - rate.p_heavy) ** requests)
            + (1 - rate.heavy) * (1 - (1 - rate.p) ** requests))


def users_plan() -> str:
    """CASE_COMPARE_PLAN with ``unit: users``: its margins are the clustered margin world's
    increases of the share of users who saw an error / a slow request (rounded up to a
    hundredth of a point), so that world sits exactly at them, the worst case the budget
    covers; ``min_requests`` (users, then) 100."""
    def margin(at: Rate, base: Rate) -> float:
        return math.ceil(100 * 100 * (users_share(at) - users_share(base))) / 100

    errors = margin(CLUSTERED_ERRORS_MARGIN, CLUSTERED_ERRORS)
    slow = margin(CLUSTERED_SLOW_MARGIN, CLUSTERED_SLOW)
    return (CASE_COMPARE_PLAN.replace("max_increase: 0.5", f"max_increase: {errors:g}")
            .replace("max_increase: 1.0", f"max_increase: {slow:g}")
            .replace("min_requests: 500", "min_requests: 100") + "  unit: users\n")


def case_clustered(runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for unit, text in (("", CASE_COMPARE_PLAN), ("users_", users_plan())):
        plan = _load(text)
        if plan is None or plan.compare is None:
            continue  # the "before" code has no unit: users
        got = _one_step(plan, runs, "clustered", USERS_PER_WINDOW, 24, CLUSTERED_ERRORS,
                        CLUSTERED_SLOW, CLUSTERED_ERRORS, CLUSTERED_SLOW)
        edge = _one_step(plan, runs, "clustered-margin", USERS_PER_WINDOW, 24,
                         CLUSTERED_ERRORS_MARGIN, CLUSTERED_SLOW_MARGIN, CLUSTERED_ERRORS,
                         CLUSTERED_SLOW)
        out.update({f"{unit}clustered_slow_fail": got.get("compare.slow_rate:fail", 0.0),
                    f"{unit}clustered_error_fail": got.get("compare.error_rate:fail", 0.0),
                    f"{unit}clustered_margin_slow_fail": edge.get("compare.slow_rate:fail", 0.0),
                    f"{unit}clustered_margin_error_fail":
                        edge.get("compare.error_rate:fail", 0.0)})
        if unit:
            out["users_margins"] = [m.max_increase for m in plan.compare.metrics]
    return out


def case_example(runs: int) -> dict[str, Any]:
    """The issue's example: treatment 0/500 against control 28/9,500 at 5 %, margin +0.5 pp
    (an exact 99.5 % bound of treatment's rate alone allows +0.76 pp): the verdict."""
    plan = _load(CASE_COMPARE_PLAN)
    if plan is None or plan.compare is None:
        return {}
    got = compare_cohorts(plan.compare, CohortCounts(500, 0), CohortCounts(9500, 28),
                          percentage=5, looks=comparing_steps(plan.percentages), now=T0)
    return {"example": next(g.verdict.value for g in got if g.name == "compare.error_rate")}


def _srm_paused(plan: RolloutPlan, runs: int, users_an_hour: int, looks_a_step: int,
                assigned: bool, seed: str) -> float:
    """The share of healthy rollouts paused by the sample-ratio check: every comparing step
    of the plan looked at every minute ``looks_a_step`` times, only the assignment drawn (the
    metric comparison sees no errors)."""
    assert plan.compare is not None
    steps = [p for p in plan.percentages if 0 < p < 100]
    n = comparing_steps(plan.percentages)
    per_look = users_an_hour / 60
    paused = 0
    for run in range(runs):
        rng = np.random.default_rng(abs(hash((seed, run))) % 2**32)
        stop = False
        for p in steps:
            users = rng.poisson(per_look, looks_a_step).cumsum()
            treated = np.cumsum(rng.binomial(np.diff(users, prepend=0), p / 100))
            for u, t in zip(users, treated, strict=True):
                tc = Tally(users=float(t), requests=float(t) * REQUESTS_PER_USER)
                cc = Tally(users=float(u - t), requests=float(u - t) * REQUESTS_PER_USER)
                got = compare_cohorts(plan.compare, tc.counts(assigned=assigned),
                                      cc.counts(assigned=assigned), percentage=p, looks=n, now=T0)
                if any(g.name == SAMPLE_RATIO and g.verdict.value == "error" for g in got):
                    stop = True
                    break
            if stop:
                break
        paused += stop
    return paused / runs


def case_srm(runs: int) -> dict[str, Any]:
    plan = _load(CASE_SRM_PLAN)
    if plan is None or plan.compare is None:
        return {}
    return {
        "srm_1m": _srm_paused(plan, runs, 6000, 40, True, "srm-1m"),
        "srm_600": _srm_paused(plan, runs, 600, 40, True, "srm-600"),
        "srm_requests": _srm_paused(plan, runs, 6000, 40, False, "srm-req"),
    }


def _walk(plan: RolloutPlan, runs: int, seed: str, users_per_window: int, t_err: Rate,
          t_slow: Rate, per_user: int = REQUESTS_PER_USER) -> list[dict[str, Any]]:
    """Whole rollouts through ``judge`` and ``decide``, a look every 5 minutes: how each
    ended, where, when, how many users got the treatment, and each step's minutes."""
    looks = comparing_steps(plan.percentages)
    # the "before" code has neither step counts nor a budget split over steps
    step_key: Callable[[str], str] = getattr(gate_readings, "step_key", lambda c: f"step:{c}")
    judge_steps = ({"steps": len(plan.steps)}
                   if "steps" in inspect.signature(judge).parameters else {})
    out = []
    for run in range(runs):
        rng = np.random.default_rng(abs(hash((seed, run))) % 2**32)
        state = decide(plan, None, None, T0).after
        assert state is not None
        now, step, exposed = T0, (Tally(), Tally()), 0.0
        step_started, minutes = T0, {}
        while now - T0 < HORIZON and state.phase is Phase.PROGRESSING:
            now += LOOK
            pct = state.current_percentage
            t, c = _window(rng, users_per_window, pct / 100, t_err, t_slow, Rate(BASE_ERROR),
                           Rate(BASE_SLOW), per_user)
            exposed += t.users
            step[0].add(t)
            step[1].add(c)
            req = t.requests + c.requests
            errors = t.errors + c.errors
            latency = np.exp(math.log(100.0) + SIGMA * rng.standard_normal(int(min(req, 2000))))
            readings = {"error_rate": Reading(100.0 * errors / req), "request_count": Reading(req),
                        "error_count": Reading(errors),
                        "p95_latency_ms": Reading(float(np.percentile(latency, 95))),
                        "p99_latency_ms": Reading(float(np.percentile(latency, 99))),
                        "slow_share": Reading(100.0 * (t.slow + c.slow) / req)}
            # the step counts a gate with a confidence is judged on (the "before" code
            # ignores them), and the plan's steps over which it splits its budget
            readings[step_key("requests")] = Reading(step[0].requests + step[1].requests)
            readings[step_key("errors")] = Reading(step[0].errors + step[1].errors)
            gates = judge(plan.gates, readings, now, **judge_steps)
            if plan.compare is not None:
                gates += compare_cohorts(plan.compare, step[0].counts(), step[1].counts(),
                                         percentage=pct, looks=looks, now=now)
            decision = decide(plan, state, gates, now)
            assert decision.after is not None
            if decision.after.current_percentage > pct:  # advanced, or completed from 75 %
                minutes[pct] = (now - step_started) / timedelta(minutes=1)
                step, step_started = (Tally(), Tally()), now
            before, state = state, decision.after
        failed = sorted(g.name for g in gates if g.verdict.value == "fail" and not g.dry_run)
        out.append({"phase": state.phase.value, "at": before.current_percentage,
                    "exposed": exposed, "minutes": minutes, "failed": failed})
    return out


def case_scaffold(runs: int) -> dict[str, Any]:
    text = CASE_SCAFFOLD_PLAN
    if text is None:
        template = CODE / "runner" / "templates" / "init" / "rollout.yaml"
        text = template.read_text().replace("flag: new_checkout", "flag: checkout")
    plan = _load(text)
    if plan is None:
        return {}
    # 600 users an hour (50 a window), each making LOW_TRAFFIC_REQUESTS requests a window;
    # as scaffolded (progress_deadline 30m) and with the 2h its comment suggests
    got: dict[str, Any] = {}
    for label, deadline in (("", plan.progress_deadline), ("2h_", 7200.0)):
        outs = _walk(dataclasses.replace(plan, progress_deadline=deadline), runs, "scaffold", 50,
                     Rate(BASE_ERROR), Rate(BASE_SLOW), LOW_TRAFFIC_REQUESTS)
        got.update({f"scaffold_{label}{phase}": sum(o["phase"] == phase for o in outs) / runs
                    for phase in ("rolled_back", "paused", "completed")})
        by: dict[str, int] = {}
        for o in outs:
            if o["phase"] == "rolled_back":
                for name in o["failed"]:
                    by[name] = by.get(name, 0) + 1
        got[f"scaffold_{label}by"] = ", ".join(f"{k} ({v})" for k, v in sorted(by.items())) or "-"
    return got


def case_detection(runs: int) -> dict[str, Any]:
    plan = _load(CASE_GUARDED_PLAN)
    if plan is None:
        return {}
    outs = [o for o in _walk(plan, runs, "broken", USERS_PER_WINDOW, Rate(BROKEN_ERROR),
                             Rate(BASE_SLOW)) if o["phase"] == "rolled_back"]
    if not outs:
        return {"detect_share": 0.0}
    return {"detect_share": len(outs) / runs,
            "detect_step": statistics.median(o["at"] for o in outs),
            "detect_exposed": statistics.median(o["exposed"] for o in outs)}


def case_durations(runs: int) -> dict[str, Any]:
    """Each comparing step's minutes in healthy rollouts of the guarded plan at 6,000 users an
    hour (its progress deadline lifted, so that no step is cut short: the time the evidence
    takes), against what the plan with ``traffic`` expects."""
    plan = _load(CASE_GUARDED_PLAN)
    if plan is None:
        return {}
    unhurried = dataclasses.replace(plan, progress_deadline=HORIZON.total_seconds())
    outs = _walk(unhurried, runs, "aa", USERS_PER_WINDOW, Rate(BASE_ERROR), Rate(BASE_SLOW))
    got: dict[str, Any] = {}
    for p in plan.percentages:
        took = sorted(o["minutes"][p] for o in outs if p in o["minutes"])
        if took and 0 < p < 100:
            got[f"simulated_{p:g}"] = statistics.median(took)
            got[f"simulated80_{p:g}"] = took[math.ceil(0.8 * len(took)) - 1]
    planned = _load(CASE_PLANNED_PLAN)
    if EXPECTED_DURATIONS is not None and planned is not None:
        for p, seconds in EXPECTED_DURATIONS(planned).items():
            for label, value in seconds.items():
                got[f"expected{label[1:]}_{p:g}"] = value / 60
    return got


CASES: dict[str, Callable[[int], dict[str, Any]]] = {
    "margin": case_margin, "clustered": case_clustered, "srm": case_srm,
    "scaffold": case_scaffold, "detection": case_detection, "durations": case_durations,
    "example": case_example,
}
#: Runs of each case: (full, --quick).
CASE_RUNS = {"margin": (1000, 120), "clustered": (400, 60), "srm": (200, 30),
             "scaffold": (200, 30), "detection": (60, 15), "durations": (60, 15),
             "example": (1, 1)}


def emit_cases(quick: bool) -> dict[str, Any]:
    """Every case's numbers with the code on sys.path; a case that raises is left out."""
    out: dict[str, Any] = {}
    for name, case in CASES.items():
        try:
            out.update(case(CASE_RUNS[name][1 if quick else 0]))
        except Exception as e:  # the "before" code lacks something: n/a, said why
            out[f"{name}_problem"] = f"{type(e).__name__}: {e}"
    return out


def _cases_with(code: Path, quick: bool) -> dict[str, Any]:
    env = {**os.environ, "BENCH_GUARDED_CODE": str(code), "PYTHONHASHSEED": "0"}
    args = [sys.executable, __file__, "--emit-cases"] + (["--quick"] if quick else [])
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"problem": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    got: dict[str, Any] = json.loads(done.stdout)
    return got


def _export(ref: str, dest: Path) -> Path:
    """``runner/`` and ``schemas/`` of ``ref`` (this checkout's history) under ``dest``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref, "runner",
                              "schemas"], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def print_cases(before_ref: str, quick: bool) -> list[str]:
    """Print the cases' table, before and after; return the "after" values that break their
    limit (each as words)."""
    with tempfile.TemporaryDirectory(prefix="bench-guarded-before-") as tmp:
        before = _cases_with(_export(before_ref, Path(tmp)), quick)
    after = _cases_with(CODE, quick)
    broken: list[str] = []

    def pct(x: Any) -> str:
        return "n/a" if x is None else f"{100 * x:.2f}%"

    def num(x: Any, unit: str = "") -> str:
        return "n/a" if x is None else f"{x:,.0f}{unit}"

    def text(x: Any) -> str:
        return "n/a" if x is None else str(x)

    rows: list[tuple[str, ...]] = [("case", "metric", "limit", f"before ({before_ref})", "after")]
    case_now = ""

    def row(case: str, metric: str, limit: str, key: str, show: Callable[[Any], str],
            ok: Callable[[Any], bool] | None = None) -> None:
        nonlocal case_now
        case_now = case or case_now
        got = after.get(key)
        flag = ""
        if ok is not None and (got is None or not ok(got)):
            broken.append(f"{case_now}, {metric}: {show(got)} (limit {limit})")
            flag = "  <- over the limit"
        rows.append((case, metric, limit, show(before.get(key)), show(got) + flag))

    def at_most(limit: float) -> Callable[[Any], bool]:
        return lambda x: x <= limit + 1e-12

    alpha = after.get("margin_limit") or before.get("margin_limit") or 0.005
    row("false pass at the margin", "error_rate passed, 2 h step at 5 %", pct(alpha),
        "margin_pass", pct, at_most(alpha))
    row("0/500 vs 28/9,500 at 5 %", "compare.error_rate (+0.5 pp margin)", "not pass",
        "example", text, lambda x: x != "pass")
    # on requests, clustered outcomes break the unit's assumption (independent requests): no
    # limit, the rows show why users are the unit
    row("clustered, no change", "slow_rate failed, unit requests", "none", "clustered_slow_fail",
        pct)
    row("", "error_rate failed, unit requests", "none", "clustered_error_fail", pct)
    row("", "slow_rate failed, unit users", pct(alpha), "users_clustered_slow_fail", pct,
        at_most(alpha))
    row("", "error_rate failed, unit users", pct(alpha), "users_clustered_error_fail", pct,
        at_most(alpha))
    margins = after.get("users_margins") or ["?", "?"]
    row("clustered, treatment at the margins", "slow_rate failed, unit requests (+1 pp)",
        "none", "clustered_margin_slow_fail", pct)
    row("", "error_rate failed, unit requests (+0.5 pp)", "none", "clustered_margin_error_fail",
        pct)
    row("", f"slow_rate failed, unit users (+{margins[1]:g} pp of users)", pct(alpha),
        "users_clustered_margin_slow_fail", pct, at_most(alpha))
    row("", f"error_rate failed, unit users (+{margins[0]:g} pp of users)", pct(alpha),
        "users_clustered_margin_error_fail", pct, at_most(alpha))
    row("sample-ratio false pauses", "1-min looks, 6,000 users/h, ~200 looks", "1.00%",
        "srm_1m", pct, at_most(0.01))
    row("", "1-min looks, 600 users/h, ~200 looks", "1.00%", "srm_600", pct, at_most(0.01))
    row("", "on request counts (no assigned users)", "1.00%", "srm_requests", pct, at_most(0.01))
    row("A/A, 600 users/h, scaffold gates", "rolled back", "5.00%", "scaffold_rolled_back", pct,
        at_most(0.05))
    row("", "rolled back by (runs)", "", "scaffold_by", text)
    row("", "paused (progress deadline 30m)", "", "scaffold_paused", pct)
    row("", "completed", "", "scaffold_completed", pct)
    row("", "rolled back, progress_deadline 2h", "5.00%", "scaffold_2h_rolled_back", pct,
        at_most(0.05))
    row("", "rolled back by (runs)", "", "scaffold_2h_by", text)
    row("", "completed, progress_deadline 2h", "", "scaffold_2h_completed", pct)
    row("broken feature (5 % fail)", "rolled back", "100%", "detect_share", pct,
        lambda x: x >= 1.0)
    row("", "at step (median)", "5 %", "detect_step", lambda x: num(x, " %"),
        lambda x: x <= 5)
    row("", "users exposed (median)", "", "detect_exposed", num)
    steps = sorted({float(k.split("_")[1]) for d in (before, after) for k in d
                    if k.startswith(("simulated_", "expected"))})
    for p in steps:
        row(f"step {p:g} % duration, minutes", "expected (plan, power 0.8)", "",
            f"expected80_{p:g}", num)
        row("", "simulated, 80th percentile", "", f"simulated80_{p:g}", num)
        row("", "expected (plan, power 0.5)", "", f"expected50_{p:g}", num)
        row("", "simulated, median", "", f"simulated_{p:g}", num)
    print(f"Issue 18's cases, the code of {before_ref} against this checkout"
          + (" (--quick)" if quick else "") + ":")
    table(rows)
    for label, d in (("before", before), ("after", after)):
        for k, v in d.items():
            if k.endswith("problem"):
                print(f"  {label}: {k}: {v}")
    return broken


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


if __name__ == "__main__":
    raise SystemExit(main())
