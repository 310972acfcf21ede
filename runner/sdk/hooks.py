"""The application's callbacks a client calls: evaluation hooks, and the listeners of reloads and looks.

Both are the application's code (or the OpenFeature provider's) run on the client's
threads: whatever they raise is logged and counted here, never the caller's evaluation's
problem nor the end of a reload.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from runner.evaluate.resolution import Resolution

log = logging.getLogger("runner.sdk")

#: ``hook(key, context, resolution)``: called after each evaluation, on the caller's thread.
#: ``context`` is the one the caller passed (None when none was).
EvaluationHook = Callable[[str, Mapping[str, Any] | None, Resolution], None]


class EvaluationHooks:
    """The hooks a client calls after each evaluation, in the order they were added.

    :attr:`called` is a tuple replaced (never changed in place) on each addition or
    removal, so the evaluation path reads it without a lock, and tests it for emptiness
    first: a client without hooks pays that one test."""

    __slots__ = ("_lock", "_logged", "called", "errors")

    def __init__(self) -> None:
        self.called: tuple[EvaluationHook, ...] = ()
        #: How many times a hook raised (each ignored).
        self.errors = 0
        self._lock = threading.Lock()
        self._logged: set[int] = set()  # ids of the hooks whose failure was logged

    def add(self, hook: EvaluationHook) -> None:
        if not callable(hook):
            raise TypeError(f"an evaluation hook must be callable, not {hook!r}")
        with self._lock:
            self.called = (*self.called, hook)

    def remove(self, hook: EvaluationHook) -> bool:
        """Remove the first registration of ``hook``; False when it was not added."""
        with self._lock:
            hooks = list(self.called)
            if hook not in hooks:
                return False
            hooks.remove(hook)
            self.called = tuple(hooks)
        return True

    def run(self, key: str, context: Mapping[str, Any] | None, r: Resolution) -> None:
        """Call each hook; never raises."""
        for hook in self.called:
            try:
                hook(key, context, r)
            except Exception:  # the application's hook: its bug must never reach the caller's evaluation
                self.errors += 1
                first = id(hook) not in self._logged
                if first:
                    self._logged.add(id(hook))
                log.log(logging.ERROR if first else logging.DEBUG,
                        "evaluation hook %r raised on %r; ignored%s", hook, key,
                        "" if first else " (again)", exc_info=first)


def call_each(callbacks: Iterable[Callable[..., None]], *args: Any) -> None:
    """Call each callback (``on_change`` listeners, the provider's); never raises."""
    for callback in tuple(callbacks):
        try:
            callback(*args)
        except Exception:  # the application's callback: its bug must not stop reloads
            log.exception("callback %r raised; ignored", callback)
