"""Rollout plans: the steps a flag moves through and the gates that guard each step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from runner.model.config import MetricsConfig


class Strategy(StrEnum):
    SAFE = "safe"
    FAST = "fast"
    INSTANT = "instant"
    CUSTOM = "custom"


class OnFailure(StrEnum):
    ROLLBACK = "rollback"
    PAUSE = "pause"


#: Each named strategy: its percentages and the default wait per step, in seconds.
#: The reference guide: safe 5 minutes a step, instant 60 seconds of monitoring; fast
#: has no number there and takes safe's.
STRATEGIES: Mapping[Strategy, tuple[tuple[float, ...], float]] = MappingProxyType(
    {
        Strategy.SAFE: ((0, 5, 10, 25, 50, 75, 100), 300.0),
        Strategy.FAST: ((0, 25, 50, 100), 300.0),
        Strategy.INSTANT: ((0, 100), 60.0),
    }
)

#: Built-in gate metrics and the direction of their threshold.
BUILTIN_GATES: Mapping[str, str] = MappingProxyType(
    {
        "error_rate": "max",  # percent
        "p95_latency_ms": "max",
        "p99_latency_ms": "max",
        "request_count": "min",
    }
)


@dataclass(frozen=True, slots=True)
class Gate:
    """One health check. ``metric`` is a built-in name or a custom metric's name."""

    name: str
    max: float | None = None
    min: float | None = None
    #: PromQL / metrics-file field / command output field for custom metrics; None for
    #: built-ins, whose query comes from the metrics source.
    query: str | None = None
    #: Evaluated and reported, never blocks.
    dry_run: bool = False
    #: ``error_rate`` only: judged from the errors and requests since the step started with
    #: an always-valid bound at this confidence (docs/metrics.md, "Gates with a confidence");
    #: None: the value itself against ``max`` (a point estimate).
    confidence: float | None = None

    @property
    def threshold(self) -> str:
        parts = []
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        text = " and ".join(parts)
        if self.confidence is not None:  # "<= 1 at 95 %"
            text += f" at {self.confidence * 100:.4g} %"
        return text


#: The built-in gates that take a ``confidence`` (a rate: events over requests).
CONFIDENT_GATES = ("error_rate",)


#: The proportions a comparison gate can compare between treatment and control.
COMPARED_METRICS = ("error_rate", "slow_rate")
#: What a comparison counts: requests (each assumed independent), or users (the unit the
#: split assigns: the share of users who saw an error / a slow request).
COMPARED_UNITS = ("requests", "users")


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric compared between the cohorts: treatment may exceed control by at most
    ``max_increase`` percentage points (``error_rate``: errors / requests; ``slow_rate``:
    requests slower than ``objective_ms`` / requests)."""

    metric: str  # one of COMPARED_METRICS
    max_increase: float  # percentage points
    #: slow_rate only: the latency objective in milliseconds (a histogram bucket bound).
    objective_ms: float | None = None

    @property
    def name(self) -> str:
        """The gate's name in results, commits and status."""
        return f"compare.{self.metric}"


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment (served the rollout variant) against control (served the default variant),
    with a sequential test that stays valid however often the runner looks."""

    metrics: tuple[MetricComparison, ...]
    #: 1 - the false-positive rate allowed over the whole rollout, however many looks.
    confidence: float = 0.95
    #: Requests each cohort needs before a comparison can be anything but inconclusive.
    min_requests: int = 500
    #: The sequential sample-ratio mismatch check's level over the whole rollout.
    srm_p_value: float = 0.001
    #: Evaluated and reported, never blocks.
    dry_run: bool = False
    #: One of COMPARED_UNITS: with ``users`` each metric is the share of the cohort's users
    #: who saw at least one error / slow request, and ``min_requests`` counts users.
    unit: str = "requests"


#: The baselines ``rollout plan`` assumes when a plan's ``traffic`` gives none, in percent:
#: the error rate of the issue's and the benchmark's healthy service, and the share of
#: requests slower than a latency objective set at about the 99th percentile.
DEFAULT_BASELINES: Mapping[str, float] = MappingProxyType({"error_rate": 0.3, "slow_rate": 1.0})


@dataclass(frozen=True, slots=True)
class Traffic:
    """The flag's traffic as the plan's author expects it, for planning only: ``rollout plan``
    and ``rollout status`` say from it how long each step needs to gather its evidence. The
    runner's decisions never read it (and it is not part of the plan's digest)."""

    #: Requests an hour over the flag's whole traffic (both cohorts together); None: only
    #: measured (``query``).
    requests_per_hour: float | None
    #: metric -> its rate in control (percent), assumed for the healthy case.
    baselines: Mapping[str, float] = field(default_factory=lambda: DEFAULT_BASELINES)
    #: The probability with which a step should have decided by the time ``rollout plan`` gives.
    power: float = 0.8
    #: metric -> the regression to catch, in percentage points above the baseline; a metric
    #: not named: twice its ``max_increase``.
    regression: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    #: A PromQL template answering the flag's requests an hour (``rollout plan`` reads it
    #: from the plan's Prometheus source; ``requests_per_hour`` is the fallback).
    query: str | None = None

    def baseline(self, metric: str) -> float:
        return self.baselines.get(metric, DEFAULT_BASELINES.get(metric, 0.0))

    def regression_of(self, m: MetricComparison) -> float:
        return self.regression.get(m.metric, 2.0 * m.max_increase)


@dataclass(frozen=True, slots=True)
class Step:
    percentage: float
    #: Seconds to wait at this step before the next; None: the plan's wait.
    wait: float | None = None
    #: Gates of this step; None: the plan's gates. Overrides are merged by the loader,
    #: so when set this is the complete list for the step.
    gates: tuple[Gate, ...] | None = None
    #: A person must approve (``rollout approve``) before the rollout moves to this step.
    approval: bool = False


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    name: str  # the file stem in rollouts/
    flag: str
    strategy: Strategy
    steps: tuple[Step, ...]
    wait: float  # seconds
    gates: tuple[Gate, ...]
    metrics: MetricsConfig | None
    on_failure: OnFailure = OnFailure.ROLLBACK
    failure_limit: int = 1
    error_limit: int = 4
    #: Seconds a step may go without a conclusive evaluation before the rollout pauses.
    progress_deadline: float = 1800.0
    start_at: datetime | None = None
    accept_risk: bool = False
    #: Treatment-vs-control comparison gates, evaluated beside ``gates`` on every step.
    compare: Comparison | None = None
    #: Seconds the gates keep being evaluated at 100 % before the rollout is completed.
    bake: float | None = None
    #: Who may approve a step with ``approval: true`` (empty: anyone who can run it).
    approvers: tuple[str, ...] = ()
    #: sha256 of the plan's canonical content: the state records which plan it executes.
    digest: str = ""
    #: The expected traffic, for planning the steps' evidence (not part of ``digest``).
    traffic: Traffic | None = None
    #: The environment this plan is resolved for (``[tool.rollout.environments]``); None in
    #: a repository that declares none (docs/environments.md).
    environment: str | None = None
    #: Seconds the previous environment must have been completed and healthy before this
    #: plan starts here (the soak); 0 in the first environment and without environments.
    promote_after: float = 0.0
    #: sha256 of the whole plan file's canonical content, every environment's block included:
    #: the "plan version" a rollback rejects. Without environments it equals ``digest``.
    version: str = ""

    @property
    def percentages(self) -> tuple[float, ...]:
        return tuple(s.percentage for s in self.steps)

    def step_wait(self, index: int) -> float:
        w = self.steps[index].wait
        return self.wait if w is None else w

    def step_gates(self, index: int) -> tuple[Gate, ...]:
        g = self.steps[index].gates
        return self.gates if g is None else g
