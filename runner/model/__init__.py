"""The model: plain frozen dataclasses shared by the loader, the evaluator and the runner.

No I/O here. Everything that reads files lives in :mod:`runner.load`.
"""

from runner.model.config import MetricsConfig, RepoConfig
from runner.model.flag import (
    BOOLEAN_VARIANTS,
    Flag,
    Requirement,
    Risk,
    Rule,
    Targeting,
    default_env_var,
    value_type,
)
from runner.model.plan import (
    STRATEGIES,
    Gate,
    OnFailure,
    RolloutPlan,
    Step,
    Strategy,
)
from runner.model.repository import Repository, SourceRef
from runner.model.state import GateResult, Phase, RolloutState, Verdict

__all__ = [
    "BOOLEAN_VARIANTS",
    "STRATEGIES",
    "Flag",
    "Gate",
    "GateResult",
    "MetricsConfig",
    "OnFailure",
    "Phase",
    "RepoConfig",
    "Repository",
    "Requirement",
    "Risk",
    "RolloutPlan",
    "RolloutState",
    "Rule",
    "SourceRef",
    "Step",
    "Strategy",
    "Targeting",
    "Verdict",
    "default_env_var",
    "value_type",
]
