"""Load and validate: YAML -> schema check -> model, with line-aware errors."""

from runner.load.problems import InvalidRepository, Problem
from runner.load.repo import Checked, check_repository, load_config, load_repository

__all__ = [
    "Checked",
    "InvalidRepository",
    "Problem",
    "check_repository",
    "load_config",
    "load_repository",
]
