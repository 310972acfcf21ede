"""Layer 3: pure flag evaluation, the resolved artifact and its flagd export.

``evaluate(flags, key, context, env) -> Resolution(value, variant, reason, error_code,
details)`` is the pure entry point; :mod:`runner.sdk` wraps it with loading and hot reload.
One module per job:

* ``artifact`` — the native artifact document, resolved from a repository;
* ``flagd`` — the same flags as a flagd flag-definition file;
* ``render`` — format dispatch: either document as deterministic bytes;
* ``compile`` — an artifact compiled into a :class:`FlagSet` (and refused when unusable);
* ``environment`` — the kill switch and per-flag overrides, parsed into :class:`EnvState`;
* ``resolver`` — the hot path: one closure per flag, and the evaluation that never raises;
* ``bucket`` — the one bucketing hash, bit-for-bit flagd's ``fractional``;
* ``resolution`` — :class:`Resolution` and OpenFeature's reason and error names;
* ``pure`` — :func:`evaluate`, from a repository, a document or a FlagSet.
"""

from runner.evaluate.compile import ArtifactError, FlagSet
from runner.evaluate.environment import EnvState, env_state
from runner.evaluate.pure import evaluate
from runner.evaluate.render import render_artifact
from runner.evaluate.resolution import Resolution
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
