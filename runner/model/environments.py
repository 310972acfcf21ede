"""Environments (``[tool.rollout.environments]``): the stages a flag is promoted through, in order.

A repository that declares none has one implicit environment and behaves as it always did;
every environment code path is taken only when some are declared (docs/environments.md).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from runner.model.config import MetricsConfig
from runner.model.flag import Flag, Targeting
from runner.model.freeze import FreezeWindow

#: An environment's name: it goes into state file names, commit subjects, trailers and URLs.
ENVIRONMENT_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True, slots=True)
class Environment:
    """One declared environment, in promotion order in ``RepoConfig.environments``."""

    name: str
    #: The metric source of plans running here that name none; None: ``[tool.rollout.metrics]``.
    metrics: MetricsConfig | None = None
    #: The environment's default publish targets (``dir:PATH``, ``branch:NAME``, ``file:PATH``).
    publish: tuple[str, ...] = ()
    #: ``freeze``: this environment's own freeze windows (besides ``RepoConfig.freezes``).
    freezes: tuple[FreezeWindow, ...] = ()


#: The fields of a flag an environment may override (``environments:`` in a flag file);
#: everything else (variants, prerequisites, the owner...) is the flag's, in every environment.
OVERRIDABLE = ("enabled", "targeting", "percentage", "default_variant")


@dataclass(frozen=True, slots=True)
class FlagOverride:
    """What one environment serves differently of a flag; None: the flag's own value."""

    enabled: bool | None = None
    targeting: Targeting | None = None
    #: A static share (0-100) served ``rollout_variant``, or (``split``) variant -> share.
    percentage: float | None = None
    split: Mapping[str, float] | None = None
    default_variant: str | None = None


def resolve_flag(flag: Flag, environment: str | None) -> Flag:
    """``flag`` as ``environment`` serves it: its override applied, and no ``environments``
    left (the artifact of an environment knows only its own). None (the implicit single
    environment) or an environment without an override: the flag itself, unchanged but
    for the emptied ``environments`` when it had any."""
    if environment is None or not flag.environments:
        return flag
    o = flag.environments.get(environment)
    changes: dict[str, object] = {"environments": MappingProxyType({})}
    if o is not None:
        if o.enabled is not None:
            changes["enabled"] = o.enabled
        if o.targeting is not None:
            changes["targeting"] = o.targeting
        if o.default_variant is not None:
            changes["default_variant"] = o.default_variant
        if o.percentage is not None or o.split is not None:  # one replaces the other
            changes["percentage"], changes["split"] = o.percentage, o.split
    return dataclasses.replace(flag, **changes)  # type: ignore[arg-type]


def resolve_flags(flags: Mapping[str, Flag], environment: str | None) -> Mapping[str, Flag]:
    """Every flag as ``environment`` serves it (:func:`resolve_flag`), in the same order."""
    if environment is None:
        return flags
    return MappingProxyType({k: resolve_flag(f, environment) for k, f in flags.items()})
