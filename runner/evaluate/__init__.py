"""Layer 3: pure flag evaluation, the resolved artifact and its flagd export.

``evaluate(flags, key, context, env) -> Resolution(value, variant, reason, error_code,
details)`` is the pure entry point; :mod:`runner.sdk` wraps it with loading and hot reload.
"""

import sys as _sys
import types as _types
from typing import Any

from runner.evaluate.artifact import render_artifact, write_atomic
from runner.evaluate.evaluator import (
    ArtifactError,
    EnvState,
    FlagSet,
    Resolution,
    env_state,
    evaluate,
)

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


class _CallablePackage(_types.ModuleType):
    """``runner.evaluate`` is both this package and the SDK's module-level ``evaluate``.

    ``runner/__init__`` exports the SDK function ``evaluate`` under the same name as this
    package; once the package is imported, Python binds ``runner.evaluate`` to it, so
    ``runner.evaluate(key, context, default)`` must keep working as the SDK call.
    """

    def __call__(self, key: str, context: Any = None, default: Any = None) -> Resolution:
        from runner import sdk

        return sdk.evaluate(key, context, default)


_sys.modules[__name__].__class__ = _CallablePackage
