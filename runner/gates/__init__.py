"""Layer 4: health gates and the metric sources behind them.

One entry point, :func:`assess_all`: the gate results of many rollouts, read concurrently
from their sources (``file``, ``prometheus``, ``command``), each asked for by a
:class:`GateRequest`. See ``docs/metrics.md`` for the sources, their configuration and the
verdict rules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from runner.gates.request import GateRequest

if TYPE_CHECKING:
    from runner.gates.assess import assess_all, assess_rollout
    from runner.gates.lint import source_problems

__all__ = ["GateRequest", "assess_all", "assess_rollout", "source_problems"]


def __getattr__(name: str) -> Any:
    # start-up time: the functions load on first use (PEP 562), so that a command that only
    # builds requests (rollback, approve, an advance with nothing to evaluate) never loads
    # the sources, the query templates and the statistics behind them
    if name in ("assess_all", "assess_rollout"):
        return getattr(importlib.import_module("runner.gates.assess"), name)
    if name == "source_problems":
        return importlib.import_module("runner.gates.lint").source_problems
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
