"""Rollout plans: the steps a flag moves through and the gates that guard each step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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

    @property
    def threshold(self) -> str:
        parts = []
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        return " and ".join(parts)


#: The proportions a comparison gate can compare between treatment and control.
COMPARED_METRICS = ("error_rate", "slow_rate")


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

    @property
    def percentages(self) -> tuple[float, ...]:
        return tuple(s.percentage for s in self.steps)

    def step_wait(self, index: int) -> float:
        w = self.steps[index].wait
        return self.wait if w is None else w

    def step_gates(self, index: int) -> tuple[Gate, ...]:
        g = self.steps[index].gates
        return self.gates if g is None else g
