"""The model: plain frozen dataclasses shared by the loader, the evaluator and the runner.

No I/O here. Everything that reads files lives in :mod:`runner.load`.
"""

from runner.model.config import (
    NOTIFY_EVENTS,
    NOTIFY_TYPES,
    MetricsConfig,
    NotifyConfig,
    NotifyTarget,
    RepoConfig,
)
from runner.model.environments import (
    ENVIRONMENT_NAME,
    Environment,
    FlagOverride,
    resolve_flag,
    resolve_flags,
)
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
    COMPARED_METRICS,
    COMPARED_UNITS,
    STRATEGIES,
    Comparison,
    Gate,
    MetricComparison,
    OnFailure,
    RolloutPlan,
    Step,
    Strategy,
    Traffic,
)
from runner.model.repository import Repository, SourceRef
from runner.model.state import (
    CohortEvidence,
    GateResult,
    Phase,
    RolloutState,
    StepCounts,
    Verdict,
)

__all__ = [
    "BOOLEAN_VARIANTS",
    "COMPARED_METRICS",
    "COMPARED_UNITS",
    "ENVIRONMENT_NAME",
    "NOTIFY_EVENTS",
    "NOTIFY_TYPES",
    "STRATEGIES",
    "CohortEvidence",
    "Comparison",
    "Environment",
    "Flag",
    "FlagOverride",
    "Gate",
    "GateResult",
    "MetricComparison",
    "MetricsConfig",
    "NotifyConfig",
    "NotifyTarget",
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
    "StepCounts",
    "Strategy",
    "Targeting",
    "Traffic",
    "Verdict",
    "default_env_var",
    "resolve_flag",
    "resolve_flags",
    "value_type",
]
