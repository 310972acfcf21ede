"""Checks of flags' ``environments:`` blocks that the JSON Schema cannot make: each names a
declared environment, and each environment's flag is a valid flag.

Pure, like :mod:`runner.load.semantic`: model objects in, findings (file, field path,
message) out; ``runner.load.repo`` places them at their line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.load.problems import did_you_mean
from runner.load.semantic import Finding, check_flag
from runner.model import Flag, RepoConfig, RolloutPlan, resolve_flag
from runner.model.environments import OVERRIDABLE, FlagOverride


def _overridden(o: FlagOverride) -> dict[str, Any]:
    """The fields an override sets, as a raw document would name them."""
    out: dict[str, Any] = {}
    if o.enabled is not None:
        out["enabled"] = o.enabled
    if o.targeting is not None:
        out["targeting"] = o.targeting
    if o.percentage is not None or o.split is not None:
        out["percentage"] = o.percentage if o.split is None else o.split
    if o.default_variant is not None:
        out["default_variant"] = o.default_variant
    return out


def _undeclared(name: str, declared: Sequence[str], path: str) -> Finding:
    if not declared:
        return Finding(path, ("environments", name), f"no environments are declared "
                       f"([tool.rollout.environments] in pyproject.toml): declare {name!r} "
                       "there, or remove this override", True)
    return Finding(path, ("environments", name), f"{name!r} is not a declared environment "
                   f"(declared: {', '.join(declared)})" + did_you_mean(name, declared), True)


def override_findings(config: RepoConfig, flags: Mapping[str, Flag],
                      paths: Mapping[str, str],
                      plans: Mapping[str, list[tuple[RolloutPlan, str]]]) -> list[Finding]:
    """Every problem of the flags' ``environments:`` blocks: an environment that
    ``[tool.rollout.environments]`` does not declare; a value that would make the flag as
    that environment serves it invalid (a default variant the flag does not have, a split
    that does not add up...), reported at the override's own field; a static percentage on
    a flag a rollout plan drives (in any environment: the plan moves it)."""
    declared = [e.name for e in config.environments]
    out: list[Finding] = []
    for key, flag in flags.items():
        path = paths[key]
        for name, override in flag.environments.items():
            if name not in declared:
                out.append(_undeclared(name, declared, path))
                continue
            raw = _overridden(override)
            for f in check_flag(resolve_flag(flag, name), raw, path, key):
                # only what this override set: the rest is reported once, at the flag's field
                if f.field[:1] and f.field[0] in raw and f.field[0] in OVERRIDABLE:
                    out.append(Finding(path, ("environments", name, *f.field), f.message))
            if key in plans and "percentage" in raw:
                out.append(Finding(path, ("environments", name, "percentage"),
                                   f"the flag is driven by the rollout plan "
                                   f"{plans[key][0][1]}; remove this static percentage", True))
            if (key in plans and override.default_variant is not None
                    and override.default_variant == flag.rollout_variant):
                out.append(Finding(path, ("environments", name, "default_variant"),
                                   f"is the flag's rollout_variant ({flag.rollout_variant!r}): "
                                   f"the rollout would change nothing in {name}", True))
    return out
