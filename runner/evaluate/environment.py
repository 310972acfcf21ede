"""The environment as evaluation reads it: the kill switch and per-flag overrides.

``EMERGENCY_SHUTDOWN`` (true/false/1/0/on/off/yes/no) serves every flag's default variant
with reason ``DISABLED``; a flag's override variable (``env_var``, by default its key in
upper case) names a variant, or for a boolean flag a truth word, and serves it with reason
``STATIC``. The environment is parsed once into :class:`EnvState` (a client re-reads it once
per reload interval), never on the call path; a value that means nothing is warned about
once and ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from runner.evaluate.compile import CompiledFlag, FlagSet
from runner.evaluate.resolution import DISABLED, STATIC, Resolution

log = logging.getLogger("runner.evaluate")

KILL_SWITCH_VAR = "EMERGENCY_SHUTDOWN"
TRUE_WORDS = frozenset({"true", "1", "on", "yes"})
FALSE_WORDS = frozenset({"false", "0", "off", "no"})


@dataclass(frozen=True, slots=True)
class EnvState:
    """The kill switch and the parsed overrides, with the outcomes they impose.

    ``outcomes`` holds, per flag the environment decides, the Resolution it serves, so that
    evaluation asks one question: is this flag in it? It follows from the other two fields,
    so equality leaves it out.
    """

    killed: bool
    overrides: dict[str, str]
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


def parse_switch(raw: str) -> bool | None:
    low = raw.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    return None


def parse_override(flag: CompiledFlag, raw: str) -> str | None:
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
    raw = env.get(KILL_SWITCH_VAR)
    if raw is not None and raw.strip():
        on = parse_switch(raw)
        if on is None:
            warn_once((KILL_SWITCH_VAR, raw), f"{KILL_SWITCH_VAR}={raw!r} is not true/false/1/0/"
                      "on/off/yes/no: ignored")
        else:
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
    return _with_outcomes(flags, killed, overrides)


def _items(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """A copy of the environment's items; another thread may be changing os.environ."""
    for _ in range(3):
        try:
            return list(env.items())
        except RuntimeError:  # changed size during iteration
            continue
    return []


def _with_outcomes(flags: FlagSet, killed: bool, overrides: dict[str, str]) -> EnvState:
    if killed:
        outcomes = {k: f.outcome(f.default_variant, DISABLED, "kill switch")
                    for k, f in flags.flags.items()}
    else:
        outcomes = {k: flags.flags[k].outcome(v, STATIC,
                                              f"environment override {flags.flags[k].env_var}")
                    for k, v in overrides.items()}
    return EnvState(killed, overrides, outcomes)
