"""Rollout state: the machine-owned present of one rollout. Its history is ``git log``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Phase(StrEnum):
    PENDING = "pending"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    #: No data, NaN, or fewer requests than the minimum: never advances.
    INCONCLUSIVE = "inconclusive"
    #: The source failed or answered nonsense.
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CohortEvidence:
    """What a comparison gate saw: each cohort's rate and size, and the sequential
    confidence interval of the difference (treatment - control), all in percent / points."""

    treatment_rate: float | None
    control_rate: float | None
    treatment_requests: int
    control_requests: int
    #: The always-valid interval of treatment - control, percentage points; None: too few.
    low: float | None
    high: float | None
    #: The allowed increase (percentage points) and the confidence of the interval.
    margin: float
    confidence: float


@dataclass(frozen=True, slots=True)
class StepCounts:
    """What an absolute gate with a confidence judged: the flag's requests and errors since
    the step started (every variant; fractional when the source extrapolates)."""

    requests: float
    errors: float


@dataclass(frozen=True, slots=True)
class GateResult:
    name: str
    verdict: Verdict
    value: float | None = None
    threshold: str = ""
    dry_run: bool = False
    detail: str = ""
    #: When the metrics were read (the injected ``now``).
    evaluated_at: datetime | None = None
    #: Comparison gates only: treatment against control.
    cohorts: CohortEvidence | None = None
    #: Absolute gates with a confidence only: the step's counts the verdict was judged on.
    counts: StepCounts | None = None


@dataclass(frozen=True, slots=True)
class RolloutState:
    flag: str
    plan: str
    phase: Phase
    step: int
    current_percentage: float
    started_at: datetime | None
    step_started_at: datetime | None
    plan_digest: str
    consecutive_failures: int = 0
    consecutive_inconclusive: int = 0
    consecutive_errors: int = 0
    last_gates: tuple[GateResult, ...] = ()
    #: Why the rollout is in this phase, in words for people.
    reason: str = ""
    #: When the last conclusive evaluation happened (for the progress deadline).
    last_evaluated_at: datetime | None = None
    #: Failed evaluations since the rollout's analysis (re)started — passes and advances in
    #: between included: ``failure_limit`` counts these, not a streak.
    failures: int = 0
    #: The index of the step a person approved (``rollout approve``) before the rollout moved
    #: to it; cleared when the rollout moves there (the approval is used), on a plan edit
    #: and on retry. None: no approval recorded.
    approved_step: int | None = None
    #: Who approved ``approved_step`` (a GitHub login in GitHub Actions, else the git identity).
    approved_by: str | None = None
    #: Repositories with environments only (docs/environments.md): the environment of this
    #: rollout, the plan version it runs (``RolloutPlan.version``: a rollback rejects it),
    #: and when it completed (the soak of the next environment counts from there). None
    #: in a repository without environments, whose state files never hold them.
    environment: str | None = None
    plan_version: str | None = None
    completed_at: datetime | None = None
