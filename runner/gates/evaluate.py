"""Evaluate the gates of many rollouts concurrently, each against its own metric source."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runner.gates.readings import NoData, Reading, SourceCall, SourceError
from runner.gates.templates import TemplateProblem
from runner.gates.verdicts import all_with, judge
from runner.model import GateResult, RolloutPlan, Verdict


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
    """The gate results of one rollout. Never raises for a source's failure: that is ``error``."""
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


def evaluate_all(requests: Sequence[GateRequest], *, root: Path, now: datetime,
                 env: Mapping[str, str], max_workers: int = 8) -> dict[str, tuple[GateResult, ...]]:
    """The gate results of every request, keyed by flag, in the order of ``requests``.

    Sources are read concurrently, at most ``max_workers`` at a time. Each source enforces its
    own timeout, so a slow one delays nobody else beyond that timeout (and not at all while
    fewer than ``max_workers`` sources are slow). Never raises for a source's failure.
    ``now`` is the moment evaluated (a naive datetime is UTC); nothing here reads the clock.
    """
    flags = [r.flag for r in requests]
    if len(set(flags)) != len(flags):
        dupes = sorted({f for f in flags if flags.count(f) > 1})
        raise ValueError(f"one request per flag; repeated: {', '.join(dupes)}")
    if max_workers < 1:
        raise ValueError("max_workers must be at least 1")
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if not requests:
        return {}
    workers = min(max_workers, len(requests))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gates") as pool:
        futures = [pool.submit(evaluate, r, root=root, now=now, env=env) for r in requests]
        return {r.flag: f.result() for r, f in zip(requests, futures, strict=True)}
