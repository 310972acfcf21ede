"""Load and validate: YAML -> schema check -> model, with line-aware errors (the only reader
of a repository's files)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.load.config import load_config
    from runner.load.layout import folders, plans_of
    from runner.load.problems import InvalidRepository, Problem
    from runner.load.repo import Checked, check_repository, load_repository

__all__ = [
    "Checked",
    "InvalidRepository",
    "Problem",
    "check_repository",
    "folders",
    "load_config",
    "load_repository",
    "plans_of",
]

_WHERE = {"InvalidRepository": "problems", "Problem": "problems", "Checked": "repo",
          "check_repository": "repo", "load_config": "config", "load_repository": "repo",
          "folders": "layout", "plans_of": "layout"}


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): importing runner.load.yamlsafe alone must not pay for jsonschema,
    # which costs ~150 ms of start-up in commands that never validate (rollout history).
    if name in _WHERE:
        value = getattr(importlib.import_module(f"runner.load.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'runner.load' has no attribute {name!r}")
