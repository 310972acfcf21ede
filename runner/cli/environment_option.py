"""``--env NAME`` of the delivery commands (build, eval, publish): which declared
environment's view a command renders, publishes or evaluates."""

from __future__ import annotations

import argparse

from runner.errors import UsageError
from runner.load.problems import did_you_mean
from runner.model import RepoConfig
from runner.safetext import safe_line


def add_env_argument(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--env", metavar="NAME",
                   help=f"{what} of this declared environment ([tool.rollout.environments]); "
                   "required when the repository declares several")


def chosen_environment(config: RepoConfig, name: str | None) -> str | None:
    """``--env NAME`` checked against ``[tool.rollout.environments]`` (a usage error names
    the declared ones); None stays None."""
    if name is None:
        return None
    declared = [e.name for e in config.environments]
    if not declared:
        raise UsageError(f"--env {safe_line(name)}: this repository declares no environments "
                         "([tool.rollout.environments] in pyproject.toml)")
    if name not in declared:
        raise UsageError(safe_line(f"--env {name!r}: not a declared environment (declared: "
                                   f"{', '.join(declared)})" + did_you_mean(name, declared)))
    return name


def one_environment(config: RepoConfig, name: str | None) -> str | None:
    """The one environment a command acts on: ``--env`` checked; without it, the only
    declared one, or None in a repository without environments. Several declared and no
    ``--env``: a usage error listing them."""
    if name is not None or not config.environments:
        return chosen_environment(config, name)
    if len(config.environments) == 1:
        return config.environments[0].name
    declared = ", ".join(e.name for e in config.environments)
    # the words of every command that needs one (runopts.environments_of); the boundary
    # prefixes "rollout COMMAND: error:"
    raise UsageError(f"name the environment with --env: {declared}")
