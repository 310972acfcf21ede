"""Layer 4: health gates and the metric sources behind them.

One entry point, :func:`evaluate_all`: the gate results of many rollouts, read concurrently
from their sources (``file``, ``prometheus``, ``command``). See ``docs/metrics.md`` for the
sources, their configuration and the verdict rules.
"""

from runner.gates.assess import GateRequest, evaluate, evaluate_all
from runner.gates.lint import source_problems

__all__ = ["GateRequest", "evaluate", "evaluate_all", "source_problems"]
