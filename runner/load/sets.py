"""The checks between ``[tool.rollout.publish.sets]`` and the flags: every set a flag names
is declared, and every glob that names one flag exactly names a flag that exists."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

from runner.load.config import _notify_line
from runner.load.documents import Unreadable, read_bytes
from runner.load.problems import Problem, did_you_mean, field_name, shown
from runner.load.semantic import Finding
from runner.load.yamlsafe import YamlError
from runner.model import Flag, RepoConfig
from runner.model.flagsets import is_pattern

CONFIG = "pyproject.toml"


def set_findings(config: RepoConfig, flags: Mapping[str, Flag],
                 flag_paths: Mapping[str, str]) -> list[Finding]:
    """A flag's ``sets:`` naming a set the config does not declare, at that flag's field."""
    declared = [s.name for s in config.publish_sets]
    out = []
    for key, flag in flags.items():
        for i, name in enumerate(flag.sets):
            if name not in declared:
                known = (f"the sets declared: {', '.join(declared)}" if declared
                         else "none is declared")
                out.append(Finding(flag_paths[key], ("sets", i),
                                   f"unknown set {name!r} ([tool.rollout.publish.sets] of "
                                   f"{CONFIG}: {known}){did_you_mean(name, declared)}", True))
    return out


def glob_problems(root: Path, config: RepoConfig, flags: Mapping[str, Flag],
                  broken: Mapping[str, str]) -> list[Problem]:
    """A set's glob without a wildcard (one flag's key) that names no flag, at its line of
    pyproject.toml: a typo there would silently leave the flag out of the set."""
    missing = [(s.name, i, g) for s in config.publish_sets for i, g in enumerate(s.globs)
               if not is_pattern(g) and g not in flags and g not in broken]
    if not missing:
        return []
    try:
        text = read_bytes(root / CONFIG, CONFIG).decode("utf-8")
        tomllib.loads(text)
    except (OSError, Unreadable, YamlError, UnicodeDecodeError, ValueError):
        text = ""
    out = []
    for name, i, glob in missing:
        field = ("publish", "sets", name, i)
        out.append(Problem(CONFIG, _notify_line(text, field) if text else 1, 1,
                           field_name(("tool", "rollout", *field)),
                           f"no flag {shown(glob)} in the flags folder"
                           f"{did_you_mean(glob, [*flags, *broken])}"))
    return out
