"""The pure entry point: ``evaluate(flags, key, context, env) -> Resolution``.

For tests, scripts and one-off answers: it takes a repository, an artifact document or a
:class:`FlagSet`, and an explicit environment (None: empty), and reads nothing else.
Applications use :class:`runner.sdk.FlagClient`, which keeps the compiled flags and the
parsed environment between calls.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from runner.evaluate.compile import FlagSet
from runner.evaluate.environment import env_state
from runner.evaluate.resolution import Resolution
from runner.evaluate.resolver import evaluate_compiled
from runner.model import Repository

# Compiling is the expensive part: repeated calls on the same object compile it once.
_compiled_cache: dict[int, tuple[Any, FlagSet]] = {}
_cache_lock = threading.Lock()


def as_flag_set(flags: Any) -> FlagSet:
    """A FlagSet from a FlagSet, an artifact document, or a :class:`Repository`."""
    if isinstance(flags, FlagSet):
        return flags
    with _cache_lock:
        hit = _compiled_cache.get(id(flags))
        if hit is not None and hit[0] is flags:
            return hit[1]
    if isinstance(flags, Repository):
        compiled = FlagSet.from_repository(flags)
    else:
        compiled = FlagSet.from_document(flags)
    with _cache_lock:
        if len(_compiled_cache) >= 8:
            _compiled_cache.clear()
        _compiled_cache[id(flags)] = (flags, compiled)
    return compiled


def evaluate(flags: Any, key: str, context: Mapping[str, Any] | None = None,
             env: Mapping[str, str] | None = None, default: Any = None) -> Resolution:
    """Evaluate one flag. Pure: the environment is what ``env`` says (None: empty).

    ``flags`` is a :class:`Repository`, an artifact document (parsed JSON) or a
    :class:`FlagSet`; ``context`` a mapping with ``targetingKey`` (the user id) and
    attributes such as ``region``. Never raises for an unknown flag or a wrong type.
    """
    fs = as_flag_set(flags)
    return evaluate_compiled(fs, key, context, env_state(fs, env), default)
