"""Evaluate the gates of many rollouts concurrently, each against its own metric source."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runner.gates.readings import NoData, Reading, SourceCall, SourceError
from runner.gates.templates import TemplateProblem
from runner.gates.verdicts import MAX_DETAIL, all_with, judge
from runner.model import GateResult, RolloutPlan, Verdict
from runner.safetext import record_line, redact


@dataclass(frozen=True, slots=True)
class GateRequest:
    """Evaluate the gates of ``plan``'s step ``step`` for ``flag`` at ``percentage``."""

    flag: str
    plan: RolloutPlan
    #: Index into ``plan.steps``; the gates are ``plan.step_gates(step)``.
    step: int
    #: The current percentage (query templates get it).
    percentage: float


def _source(kind: str) -> Callable[[SourceCall], dict[str, Reading]] | None:
    # imported here so that a file-only repository never loads urllib or subprocess code
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


def evaluate(request: GateRequest, *, root: Path, now: datetime,
             env: Mapping[str, str]) -> tuple[GateResult, ...]:
    """The gate results of one rollout. Never raises for a source's failure: that is ``error``.

    Whatever the source said, no result's detail holds the source's bearer token."""
    results = _evaluate(request, root=root, now=now, env=env)
    m = request.plan.metrics
    token = env.get(m.bearer_token_env) if m is not None and m.bearer_token_env else None
    if not token or not any(token in r.detail for r in results):
        return results
    return tuple(dataclasses.replace(r, detail=record_line(redact(r.detail, [token]), MAX_DETAIL))
                 for r in results)


def _evaluate(request: GateRequest, *, root: Path, now: datetime,
              env: Mapping[str, str]) -> tuple[GateResult, ...]:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    plan = request.plan
    gates = plan.step_gates(request.step)
    if not gates:
        return ()
    metrics = plan.metrics
    if metrics is None:
        return all_with(gates, Verdict.ERROR, "no metric source: the plan has no metrics and "
                        "pyproject.toml has no [tool.rollout.metrics]", now)
    read = _source(metrics.type)
    if read is None:
        return all_with(gates, Verdict.ERROR, f"unknown metrics type {metrics.type!r}", now)
    call = SourceCall(request.flag, request.percentage, metrics, gates, root, now, env)
    try:
        readings = read(call)
    except NoData as e:
        return all_with(gates, Verdict.INCONCLUSIVE, f"no data: {e}", now)
    except (SourceError, TemplateProblem) as e:
        return all_with(gates, Verdict.ERROR, str(e), now)
    except Exception as e:  # a bug or an unforeseen failure of one source must not stop the run
        return all_with(gates, Verdict.ERROR, f"{metrics.type} source failed: {type(e).__name__}: {e}", now)
    return judge(gates, readings, now)


#: How long past its own timeout a source may take before its rollout gets ``error`` without
#: waiting for it (a source that ignored its deadline: a bug, never expected).
GRACE_SECONDS = 5.0


def _timeout(request: GateRequest) -> float:
    m = request.plan.metrics
    return m.timeout if m is not None else 10.0


def evaluate_all(requests: Sequence[GateRequest], *, root: Path, now: datetime,
                 env: Mapping[str, str], max_workers: int | None = None
                 ) -> dict[str, tuple[GateResult, ...]]:
    """The gate results of every request, keyed by flag, in the order of ``requests``.

    Every rollout's source is read at once, each in its own thread (``max_workers`` bounds
    that, for benchmarks and tests). Each source enforces its own timeout as a deadline for
    its whole exchange, so a slow, trickling or flooding source delays nobody else beyond that
    timeout; one that ran over it by :data:`GRACE_SECONDS` gets ``error`` for its rollout and
    is not waited for. Never raises for a source's failure. ``now`` is the moment evaluated
    (a naive datetime is UTC); nothing here reads the clock for it.
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
    workers = len(requests) if max_workers is None else min(max_workers, len(requests))
    waves = math.ceil(len(requests) / workers)
    slots = threading.BoundedSemaphore(workers)
    results: dict[str, tuple[GateResult, ...]] = {}

    def work(request: GateRequest) -> None:
        with slots:
            results[request.flag] = evaluate(request, root=root, now=now, env=env)

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(r,), name=f"gates-{i}", daemon=True)
               for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    out: dict[str, tuple[GateResult, ...]] = {}
    for r, t in zip(requests, threads, strict=True):
        limit = started + (_timeout(r) + GRACE_SECONDS) * waves
        t.join(max(limit - time.monotonic(), 0.0))
        got = results.get(r.flag)
        if got is None:
            gates = r.plan.step_gates(r.step)
            got = all_with(gates, Verdict.ERROR, f"the metric source did not finish within its "
                           f"timeout ({_timeout(r):g}s); not waited for", now)
        out[r.flag] = got
    return out
