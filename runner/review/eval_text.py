"""What ``rollout eval`` says besides the value: whether the kill switch or the flag's own
override decided it, and where that came from (pure: the flags, the environment read once
by the command, the resolution)."""

from __future__ import annotations

from collections.abc import Mapping

from runner.evaluate.compile import FlagSet
from runner.evaluate.environment import KILL_SWITCH_VAR, EnvState, parse_switch, shown_value
from runner.evaluate.resolution import DISABLED, STATIC, Resolution


def decided_by(flags: FlagSet, env: Mapping[str, str], state: EnvState, flag: str,
               r: Resolution) -> str | None:
    """"kill switch: EMERGENCY_SHUTDOWN=true (in this environment)", "kill switch:
    emergency_shutdown = true (committed)", "NEW_SEARCH=false (the flag's override in this
    environment)"; None when neither decided."""
    if r.reason == DISABLED and state.killed:
        raw = env.get(KILL_SWITCH_VAR, "").strip()
        if raw and parse_switch(raw) is None:
            return (f"kill switch: {KILL_SWITCH_VAR}={shown_value(raw)} (in this environment; "
                    "not a recognised value, so treated as shut down)")
        if raw and parse_switch(raw):
            return f"kill switch: {KILL_SWITCH_VAR}={raw} (in this environment)"
        return "kill switch: emergency_shutdown = true (committed in [tool.rollout])"
    f = flags.flags.get(flag)
    if r.reason == STATIC and f is not None and flag in state.overrides:
        return f"{f.env_var}={env.get(f.env_var, '').strip()} (the flag's override in this " \
               "environment)"
    return None
