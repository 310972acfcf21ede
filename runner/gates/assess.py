"""Assess the gates of many rollouts concurrently: each one's source read, judged, compared."""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from runner.errors import ExternalError
from runner.gates.compare import (
    SAMPLE_RATIO,
    CohortCounts,
    compare_cohorts,
    comparing_steps,
    count_problem,
    sample_ratio_threshold,
)
from runner.gates.readings import (
    COHORTS,
    NoData,
    Reading,
    SourceCall,
    SourceError,
    cohort_key,
    counts_needed,
    counts_read,
)
from runner.gates.request import GateRequest
from runner.gates.templates import TemplateProblem
from runner.gates.verdicts import MAX_DETAIL, all_with, judge
from runner.model import Comparison, GateResult, RolloutPlan, Verdict
from runner.safetext import record_line, redact


def _source(kind: str) -> Callable[[SourceCall], dict[str, Reading]] | None:
    # start-up of `rollout advance`: a file-only repository never loads urllib or subprocess
    # code (the prometheus source is ~12 ms)
    if kind == "file":
        from runner.gates.sources import file

        return file.read
    if kind == "prometheus":
        from runner.gates.sources import prometheus

        return prometheus.read
    if kind == "command":
        from runner.gates.sources import command

        return command.read
    return None


#: A metric source: what it read for one call (one reading per gate and cohort count).
SourceReader = Callable[[SourceCall], dict[str, Reading]]


def assess_rollout(request: GateRequest, *, root: Path, now: datetime,
             env: Mapping[str, str], source: SourceReader | None = None
             ) -> tuple[GateResult, ...]:
    """The gate results of one rollout. Never raises for a source's failure: that is ``error``.
    ``source`` reads instead of the plan's own ``metrics.type`` (``rollout simulate`` replays
    a recorded timeline through it); the plan's ``metrics`` still give the window and timeout.

    Whatever the source said, no result's detail holds the source's bearer token."""
    results = _assess(request, root=root, now=now, env=env, source=source)
    m = request.plan.metrics
    token = env.get(m.bearer_token_env) if m is not None and m.bearer_token_env else None
    if not token or not any(token in r.detail for r in results):
        return results
    return tuple(dataclasses.replace(r, detail=record_line(redact(r.detail, [token]), MAX_DETAIL))
                 for r in results)


def _assess(request: GateRequest, *, root: Path, now: datetime,
              env: Mapping[str, str], source: SourceReader | None = None
              ) -> tuple[GateResult, ...]:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    plan = request.plan
    gates = plan.step_gates(request.step)
    spec = comparing(plan, request.percentage)
    if not gates and spec is None:
        return ()

    def failed(verdict: Verdict, detail: str) -> tuple[GateResult, ...]:
        return all_with(gates, verdict, detail, now) + compare_all_with(spec, verdict, detail, now)

    metrics = plan.metrics
    if metrics is None:
        return failed(Verdict.ERROR, "no metric source: the plan has no metrics and "
                      "pyproject.toml has no [tool.rollout.metrics]")
    read = source or _source(metrics.type)
    if read is None:
        return failed(Verdict.ERROR, f"unknown metrics type {metrics.type!r}")
    call = SourceCall(request.flag, request.percentage, metrics, gates, root, now, env,
                      spec, request.treatment_variant, request.control_variant,
                      request.step_started_at)
    try:
        readings = read(call)
    except NoData as e:
        return failed(Verdict.INCONCLUSIVE, f"no data: {e}")
    except (SourceError, TemplateProblem) as e:
        return failed(Verdict.ERROR, str(e))
    except Exception as e:  # a bug or an unforeseen failure of one source must not stop the run
        return failed(Verdict.ERROR, f"{metrics.type} source failed: {type(e).__name__}: {e}")
    results = judge(gates, readings, now, steps=len(plan.steps))
    if spec is None:
        return results
    return results + _compared(spec, plan, readings, request.percentage, now)


def comparing(plan: RolloutPlan, percentage: float) -> Comparison | None:
    """The plan's comparison gates when a step at ``percentage`` compares (0 < p < 100)."""
    if plan.compare is None or not plan.compare.metrics or not 0 < percentage < 100:
        return None
    return plan.compare


def compare_all_with(spec: Comparison | None, verdict: Verdict, detail: str,
                     now: datetime) -> tuple[GateResult, ...]:
    """The same verdict for every comparison result (sample ratio first): the source failed,
    had no data, or answered unusable counts."""
    if spec is None:
        return ()
    shown = record_line(detail, MAX_DETAIL)
    names = [(SAMPLE_RATIO, sample_ratio_threshold(spec))]
    names += [(m.name, f"treatment - control <= {m.max_increase:+.3g} pp "
               f"({spec.confidence * 100:.4g} %)") for m in spec.metrics]
    return tuple(GateResult(name, verdict, None, threshold, spec.dry_run, shown, now)
                 for name, threshold in names)


def _compared(spec: Comparison, plan: RolloutPlan, readings: Mapping[str, Reading],
              percentage: float, now: datetime) -> tuple[GateResult, ...]:
    try:
        treatment, control = cohort_counts(spec, readings)
    except UnusableCounts as e:
        return compare_all_with(spec, e.verdict, e.detail, now)
    try:
        return compare_cohorts(spec, treatment, control, percentage=percentage,
                               looks=comparing_steps(plan.percentages), now=now)
    except (ValueError, ArithmeticError) as e:  # counts were checked: a bug, still an error
        return compare_all_with(spec, Verdict.ERROR, f"the comparison failed: "
                                f"{type(e).__name__}: {e}", now)


class UnusableCounts(ExternalError):
    """Why the readings give no cohort counts: ``error`` for a failed or nonsensical reading
    (negative, errors above requests), ``inconclusive`` for no data."""

    def __init__(self, verdict: Verdict, detail: str) -> None:
        super().__init__(detail)
        self.verdict = verdict
        self.detail = detail


def cohort_counts(spec: Comparison, readings: Mapping[str, Reading]
                  ) -> tuple[CohortCounts, CohortCounts]:
    """The treatment and control counts in ``readings``; :class:`UnusableCounts` when there
    are none to compare."""
    needed = counts_needed(spec)
    values: dict[str, dict[str, float | None]] = {}
    missing: list[str] = []
    for cohort in COHORTS:
        values[cohort] = {}
        for count in counts_read(spec):
            r = readings.get(cohort_key(cohort, count))
            if r is None:
                if count not in needed:
                    values[cohort][count] = None
                    continue
                raise UnusableCounts(Verdict.ERROR,
                                     f"the source returned nothing for the {cohort} {count}")
            if r.error is not None:
                raise UnusableCounts(Verdict.ERROR, f"{cohort} {count}: {r.error}")
            if r.value is None:
                if count not in needed:
                    values[cohort][count] = None
                    continue
                missing.append(f"{cohort} {count} ({r.detail or 'no data'})")
                continue
            # NaN (a division in the query), infinite, negative, beyond any real count or
            # a subnormal: nonsense the statistics must never see
            problem = count_problem(r.value)
            if problem is not None:
                raise UnusableCounts(Verdict.ERROR, f"{cohort} {count} {problem}: {r.detail}")
            values[cohort][count] = r.value
    if missing:
        raise UnusableCounts(Verdict.INCONCLUSIVE, "no cohort data: " + "; ".join(missing))
    for cohort in COHORTS:
        v = values[cohort]
        requests = v["requests"]
        assert requests is not None
        for count, of in (("errors", "requests"), ("slow", "requests"), ("assigned", "requests"),
                          ("users", "requests"), ("users_with_errors", "users"),
                          ("users_slow", "users")):
            x, total = v.get(count), v.get(of)
            if x is not None and total is not None and x > total * (1 + 1e-9) + 1e-9:
                raise UnusableCounts(Verdict.ERROR, f"{cohort} has {x:g} {count} out of only "
                                     f"{total:g} {of}: the cohort counts are inconsistent")

    def counts(cohort: str) -> CohortCounts:
        v = values[cohort]
        requests = v["requests"]
        assert requests is not None
        return CohortCounts(requests, v.get("errors") or 0.0, v.get("slow"), v.get("assigned"),
                            v.get("users"), v.get("users_with_errors"), v.get("users_slow"))

    return counts("treatment"), counts("control")


#: How long past its own timeout a source may take before its rollout gets ``error`` without
#: waiting for it (a source that ignored its deadline: a bug, never expected).
GRACE_SECONDS = 5.0


def _timeout(request: GateRequest) -> float:
    m = request.plan.metrics
    return m.timeout if m is not None else 10.0


#: The most sources read at once by default: a thread per rollout does not scale to
#: thousands of rollouts (memory, file descriptors, the sources' own servers).
MAX_WORKERS = 32


def assess_all(requests: Sequence[GateRequest], *, root: Path, now: datetime,
                 env: Mapping[str, str], max_workers: int | None = None
                 ) -> dict[str, tuple[GateResult, ...]]:
    """The gate results of every request, keyed by flag, in the order of ``requests``.

    The sources are read concurrently by at most :data:`MAX_WORKERS` threads (``max_workers``
    bounds that further, for benchmarks and tests), each taking the next rollout when it is
    done with one. Each source enforces its own timeout as a deadline for its whole exchange
    (``runner/exchange.py``), so a slow, trickling or flooding source delays the others by at
    most that timeout per rollout ahead of them on its worker; a rollout not answered within
    its timeout plus :data:`GRACE_SECONDS` per wave of workers gets ``error`` and is not
    waited for. Never raises for a source's failure. ``now`` is the moment evaluated (a
    naive datetime is UTC); nothing here reads the clock for it.
    """
    flags = [r.flag for r in requests]
    if len(set(flags)) != len(flags):
        dupes = sorted({f for f in flags if flags.count(f) > 1})
        raise ValueError(f"one request per flag; repeated: {', '.join(dupes)}")
    if max_workers is not None and max_workers < 1:
        raise ValueError("max_workers must be at least 1")
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if not requests:
        return {}
    workers = min(MAX_WORKERS if max_workers is None else max_workers, len(requests))
    waves = math.ceil(len(requests) / workers)
    results: dict[str, tuple[GateResult, ...]] = {}
    finished = {r.flag: threading.Event() for r in requests}
    queue = collections.deque(requests)
    taking = threading.Lock()

    def work() -> None:
        while True:
            with taking:
                if not queue:
                    return
                request = queue.popleft()
            try:
                results[request.flag] = assess_rollout(request, root=root, now=now, env=env)
            except Exception as e:  # a bug: its own error, never a false "did not finish"
                failed = f"the gates could not be assessed: {type(e).__name__}: {e}"
                results[request.flag] = (
                    all_with(request.plan.step_gates(request.step), Verdict.ERROR, failed, now)
                    + compare_all_with(comparing(request.plan, request.percentage),
                                       Verdict.ERROR, failed, now))
            finally:
                finished[request.flag].set()

    started = time.monotonic()
    for i in range(workers):
        threading.Thread(target=work, name=f"gates-{i}", daemon=True).start()
    out: dict[str, tuple[GateResult, ...]] = {}
    for r in requests:
        limit = started + (_timeout(r) + GRACE_SECONDS) * waves
        finished[r.flag].wait(max(limit - time.monotonic(), 0.0))
        got = results.get(r.flag)
        if got is None:
            gates = r.plan.step_gates(r.step)
            late = (f"the metric source did not finish within its timeout ({_timeout(r):g}s); "
                    "not waited for")
            got = (all_with(gates, Verdict.ERROR, late, now)
                   + compare_all_with(comparing(r.plan, r.percentage), Verdict.ERROR, late, now))
        out[r.flag] = got
    return out
