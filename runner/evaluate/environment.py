"""The environment as evaluation reads it: the kill switch and per-flag overrides.

``EMERGENCY_SHUTDOWN`` (true/false/1/0/on/off/yes/no) serves every flag's default variant
with reason ``DISABLED``; a flag's override variable (``env_var``, by default its key in
upper case) names a variant, or for a boolean flag a truth word, and serves it with reason
``STATIC``. The environment is parsed once into :class:`EnvState` (a client re-reads it once
per reload interval), never on the call path; a value that means nothing is warned about
once and ignored, except the kill switch's: an ``EMERGENCY_SHUTDOWN`` that is neither a
true nor a false word fails closed (every flag off), with an error logged once naming the
variable and its value (and kept in :attr:`EnvState.error`).

The runner reads the same rules (:func:`kill_switch`, :func:`override_hold`): while the kill
switch or a flag's override holds a flag off, its rollout does not advance.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from runner.evaluate.compile import FlagSet
from runner.evaluate.resolution import DISABLED, STATIC, Resolution

log = logging.getLogger("runner.evaluate")

KILL_SWITCH_VAR = "EMERGENCY_SHUTDOWN"
TRUE_WORDS = frozenset({"true", "1", "on", "yes"})
FALSE_WORDS = frozenset({"false", "0", "off", "no"})
#: The recognised words, as messages and the docs list them.
SWITCH_WORDS = "true/false/1/0/on/off/yes/no"


def shown_value(raw: str, limit: int = 40) -> str:
    """An unrecognised value as messages quote it: stripped, at most ``limit`` characters."""
    text = raw.strip()
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"


def switch_error(raw: str) -> str:
    """The error of an ``EMERGENCY_SHUTDOWN`` value that is neither true nor false."""
    return (f"{KILL_SWITCH_VAR}={shown_value(raw)} is not one of {SWITCH_WORDS}: treated as "
            "shut down (fails closed: every flag serves its default variant)")


@dataclass(frozen=True, slots=True)
class EnvState:
    """The kill switch and the parsed overrides, with the outcomes they impose.

    ``outcomes`` holds, per flag the environment decides, the Resolution it serves, so that
    evaluation asks one question: is this flag in it? It follows from the other two fields,
    so equality leaves it out.
    """

    killed: bool
    overrides: dict[str, str]
    #: Why the kill switch is on although its value is not a true word (an unrecognised
    #: value fails closed); None otherwise.
    error: str | None = field(default=None, compare=False)
    outcomes: dict[str, Resolution] = field(default_factory=dict, compare=False)


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_once(key: tuple[str, str], message: str) -> None:
    """Log ``message`` the first time ``key`` (variable, value) is seen in this process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(message)


def error_once(key: tuple[str, str], message: str) -> None:
    """Log ``message`` as an error the first time ``key`` is seen in this process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.error(message)


def parse_switch(raw: str) -> bool | None:
    low = raw.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    return None


class _Variants(Protocol):
    """What an override is read against: a compiled flag, or the model's flag (the runner)."""

    @property
    def variants(self) -> Mapping[str, Any]: ...
    @property
    def type(self) -> str: ...
    @property
    def rollout_variant(self) -> str: ...
    @property
    def default_variant(self) -> str: ...


def parse_override(flag: _Variants, raw: str) -> str | None:
    """The variant an override value selects; None when it selects none."""
    text = raw.strip()
    if text in flag.variants:
        return text
    if flag.type == "boolean":
        want = parse_switch(text)
        if want is not None:
            for name in (flag.rollout_variant, flag.default_variant, *flag.variants):
                if flag.variants[name] is want:
                    return name
    return None


def env_state(flags: FlagSet, env: Mapping[str, str] | None) -> EnvState:
    """Parse the kill switch and every flag's override from ``env``, warning once per bad value."""
    killed = flags.emergency_shutdown
    if not env:
        return _with_outcomes(flags, killed, {})
    error = None
    raw = env.get(KILL_SWITCH_VAR)
    if raw is not None and raw.strip():
        on = parse_switch(raw)
        if on is None:  # fails closed
            error = switch_error(raw)
            error_once((KILL_SWITCH_VAR, raw), error)
            on = True
        killed = killed or on
    overrides = {}
    # Walk the environment (tens of variables), not the flags (maybe tens of thousands):
    # a client re-reads the environment once per reload interval.
    by_var = flags.env_index()
    for var, raw in _items(env):
        keys = by_var.get(var)
        if not keys or raw is None or not raw.strip():
            continue
        for key in keys:
            f = flags.flags[key]
            variant = parse_override(f, raw)
            if variant is None:
                choices = "true/false/1/0/on/off/yes/no or " if f.type == "boolean" else ""
                warn_once((var, raw), f"{var}={raw!r} does not select a variant of "
                          f"{key!r} (expected {choices}one of {', '.join(sorted(f.variants))}): "
                          "override ignored")
                continue
            overrides[key] = variant
    return _with_outcomes(flags, killed, overrides, error)


def _items(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """A copy of the environment's items; another thread may be changing os.environ."""
    for _ in range(3):
        try:
            return list(env.items())
        except RuntimeError:  # changed size during iteration
            continue
    return []


def _with_outcomes(flags: FlagSet, killed: bool, overrides: dict[str, str],
                   error: str | None = None) -> EnvState:
    if killed:
        outcomes = {k: f.outcome(f.default_variant, DISABLED, "kill switch")
                    for k, f in flags.flags.items()}
    else:
        outcomes = {k: flags.flags[k].outcome(v, STATIC,
                                              f"environment override {flags.flags[k].env_var}")
                    for k, v in overrides.items()}
    return EnvState(killed, overrides, error, outcomes)


# --- the runner's reading: what holds a rollout ----------------------------------------------


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """The kill switch as the runner reads it: whether it is on, and why, in words."""

    on: bool
    #: "kill switch: EMERGENCY_SHUTDOWN=true (committed in pyproject.toml)"; "" when off.
    reason: str = ""
    #: The error line of an unrecognised value (it fails closed); None otherwise.
    error: str | None = None


def kill_switch(committed: bool, env: Mapping[str, str] | None) -> KillSwitch:
    """The repository's kill switch: ``emergency_shutdown`` committed in ``[tool.rollout]``,
    or ``EMERGENCY_SHUTDOWN`` in ``env`` (the runner's environment), by the SDK's rules."""
    raw = (env or {}).get(KILL_SWITCH_VAR) or ""
    on = parse_switch(raw) if raw.strip() else False
    error = switch_error(raw) if on is None else None
    if committed:
        return KillSwitch(True, f"kill switch: {KILL_SWITCH_VAR}=true (committed in "
                                "pyproject.toml)", error)
    if on is None:
        return KillSwitch(True, f"kill switch: {KILL_SWITCH_VAR}={shown_value(raw)} (in the "
                                f"runner's environment; not one of {SWITCH_WORDS}, so treated "
                                "as shut down)", error)
    if on:
        return KillSwitch(True, f"kill switch: {KILL_SWITCH_VAR}={raw.strip()} (in the "
                                "runner's environment)")
    return KillSwitch(False)


class _Overridable(_Variants, Protocol):
    @property
    def key(self) -> str: ...
    @property
    def env_var(self) -> str: ...


def override_hold(flag: _Overridable, env: Mapping[str, str] | None) -> str | None:
    """Why ``flag``'s own override in ``env`` holds it off (it selects a variant other than
    the one being rolled out), as the hold's reason says it; None when it does not."""
    raw = (env or {}).get(flag.env_var)
    if raw is None or not raw.strip():
        return None
    variant = parse_override(flag, raw)
    if variant is None or variant == flag.rollout_variant:
        return None
    return (f"kill switch: {flag.key}'s override {flag.env_var}={raw.strip()} (in the "
            f"runner's environment) serves {variant}")
