"""A whole GitOps repository as loaded: flags, plans and rollout states."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from runner.model.config import RepoConfig
from runner.model.flag import Flag
from runner.model.plan import RolloutPlan
from runner.model.state import RolloutState


@dataclass(frozen=True, slots=True)
class SourceRef:
    path: str  # relative to the repository root, with forward slashes
    line: int = 1
    column: int = 1


def _empty() -> Mapping:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Repository:
    config: RepoConfig
    flags: Mapping[str, Flag] = field(default_factory=_empty)
    #: Plans by the flag they drive (one plan per flag).
    plans: Mapping[str, RolloutPlan] = field(default_factory=_empty)
    #: States by flag.
    states: Mapping[str, RolloutState] = field(default_factory=_empty)
    #: Where each flag and plan came from, keyed ``flag:<key>`` / ``plan:<flag>``.
    sources: Mapping[str, SourceRef] = field(default_factory=_empty)
