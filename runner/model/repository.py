"""A whole GitOps repository as loaded: flags, plans and rollout states."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from runner.model.config import RepoConfig
from runner.model.environments import Environment, resolve_flags
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
    #: Plans by the flag they drive (one plan per flag). With environments declared: at the
    #: top, each plan as written without its ``environments`` block (environment None); in a
    #: view (:meth:`for_environment`), that environment's resolved plans.
    plans: Mapping[str, RolloutPlan] = field(default_factory=_empty)
    #: States by flag. With environments declared: empty at the top; a view's own states.
    states: Mapping[str, RolloutState] = field(default_factory=_empty)
    #: Where each flag and plan came from, keyed ``flag:<key>`` / ``plan:<flag>``.
    sources: Mapping[str, SourceRef] = field(default_factory=_empty)
    #: The environment this view is of (:meth:`for_environment`); None: the repository as a
    #: whole (or the one implicit environment of a repository that declares none).
    environment: str | None = None
    #: With environments declared: environment -> its resolved plans by flag (only the plans
    #: that run there), and environment -> its states by flag. Empty without environments.
    environment_plans: Mapping[str, Mapping[str, RolloutPlan]] = field(default_factory=_empty)
    environment_states: Mapping[str, Mapping[str, RolloutState]] = field(
        default_factory=_empty)
    #: With environments declared: environment -> every flag as it serves there
    #: (``resolve_flags``), made once by the loader so that a view costs nothing to take;
    #: an environment missing here is resolved when its view is taken.
    environment_flags: Mapping[str, Mapping[str, Flag]] = field(default_factory=_empty)

    @property
    def environments(self) -> tuple[Environment, ...]:
        """The declared environments in promotion order (empty: the implicit one)."""
        return self.config.environments

    def for_environment(self, name: str | None) -> Repository:
        """The repository as environment ``name`` sees it and serves it: every flag with that
        environment's override applied (``resolve_flags``), its resolved plans, its states,
        its metric source as ``config.metrics`` when it names one, ``environment == name``.
        ``None`` (and any name in a repository without environments) is this repository
        itself. KeyError for a name that is not declared."""
        if name is None or not self.config.environments or self.environment == name:
            return self
        if self.environment is not None:  # a view of another environment
            raise KeyError(name)
        env = self.config.environment(name)
        if env is None:
            raise KeyError(name)
        config = self.config
        if env.metrics is not None:
            config = dataclasses.replace(config, metrics=env.metrics)
        return dataclasses.replace(
            self, config=config, environment=name,
            flags=self.environment_flags.get(name) or resolve_flags(self.flags, name),
            plans=self.environment_plans.get(name, MappingProxyType({})),
            states=self.environment_states.get(name, MappingProxyType({})))

    def views(self) -> tuple[Repository, ...]:
        """One view per declared environment in promotion order; without environments,
        this repository alone."""
        if not self.config.environments or self.environment is not None:
            return (self,)
        return tuple(self.for_environment(e.name) for e in self.config.environments)
