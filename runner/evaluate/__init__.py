"""Layer 3: pure flag evaluation, the resolved artifact and its flagd export.

``evaluate(flags, key, context, env) -> Resolution(value, variant, reason, error_code,
details)`` is the pure entry point; :mod:`runner.sdk` wraps it with loading and hot reload.
"""

from runner.evaluate.artifact import render_artifact
from runner.evaluate.evaluator import (
    ArtifactError,
    EnvState,
    FlagSet,
    Resolution,
    env_state,
    evaluate,
)
from runner.files import write_atomic

__all__ = [
    "ArtifactError",
    "EnvState",
    "FlagSet",
    "Resolution",
    "env_state",
    "evaluate",
    "render_artifact",
    "write_atomic",
]

