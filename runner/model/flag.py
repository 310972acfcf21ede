"""Flags: what an application asks about, and what a rollout moves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # environments.py builds on Flag and Targeting, defined here
    from runner.model.environments import FlagOverride


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


#: Boolean flags may omit ``variants``; these are the ones they get.
BOOLEAN_VARIANTS: Mapping[str, Any] = MappingProxyType({"on": True, "off": False})


def default_env_var(key: str) -> str:
    """The environment variable that overrides a flag unless it names another one."""
    return key.upper()


def value_type(value: Any) -> str:
    """The type family of a variant value: variants of one flag must share it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class Requirement:
    """A prerequisite: ``flag`` must serve ``variant`` (its rollout variant when None)."""

    flag: str
    variant: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """An attribute rule: when ``attribute`` ``op`` ``values`` holds, serve ``variant``."""

    attribute: str
    op: str  # in | not_in | equals | starts_with | ends_with
    values: tuple[Any, ...]
    variant: str


@dataclass(frozen=True, slots=True)
class Targeting:
    """Canary users and regions (served ``variant``), then attribute rules, in order."""

    users: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    variant: str | None = None  # None: the flag's rollout variant
    rules: tuple[Rule, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.users or self.regions or self.rules)


@dataclass(frozen=True, slots=True)
class Flag:
    key: str
    description: str
    owner: str
    risk: Risk
    enabled: bool = True
    variants: Mapping[str, Any] = field(default_factory=lambda: BOOLEAN_VARIANTS)
    default_variant: str = "off"
    #: The variant a rollout (or a static ``percentage``) moves users to.
    rollout_variant: str = "on"
    requires: tuple[Requirement, ...] = ()
    env_override: str = ""
    targeting: Targeting = field(default_factory=Targeting)
    #: Static split: the share (0-100) of users served ``rollout_variant``; None: no split.
    percentage: float | None = None
    #: Static multi-variant split: variant -> share (0-100, summing to 100).
    split: Mapping[str, float] | None = None
    #: Context attribute that makes percentage assignments sticky; None: the targeting key.
    bucket_by: str | None = None
    #: The publication sets (``[tool.rollout.publish.sets]``) this flag joins by name,
    #: beside those whose globs select it; not part of what it serves.
    sets: tuple[str, ...] = ()
    #: ``environments:``: what each declared environment serves differently (only
    #: ``enabled``, ``targeting``, ``percentage``, ``default_variant``); empty: the same
    #: everywhere. ``runner.model.environments.resolve_flag`` applies one.
    environments: Mapping[str, FlagOverride] = field(
        default_factory=lambda: MappingProxyType({}))

    @property
    def type(self) -> str:
        return value_type(self.variants[self.default_variant])

    @property
    def env_var(self) -> str:
        return self.env_override or default_env_var(self.key)
