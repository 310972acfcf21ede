"""What one rollout asks of its gates: the one request type reconcile builds and assess answers.

A module of its own, importing only the model, so that reconcile can build requests without
loading the metric sources, templates and statistics a run may never need.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from runner.model import RolloutPlan


@dataclass(frozen=True, slots=True)
class GateRequest:
    """Evaluate the gates of ``plan``'s step ``step`` for ``flag`` at ``percentage``."""

    flag: str
    plan: RolloutPlan
    #: Index into ``plan.steps``; the gates are ``plan.step_gates(step)``.
    step: int
    #: The current percentage (query templates get it).
    percentage: float
    #: When the current step started (the state's step_started_at): comparison counts are
    #: cumulative since then.
    step_started_at: datetime | None = None
    #: The flag's rollout_variant (treatment) and default_variant (control): the compared
    #: cohorts.
    treatment_variant: str = "on"
    control_variant: str = "off"
