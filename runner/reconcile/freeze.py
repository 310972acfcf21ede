"""Whether rollouts may move forward now: the freeze windows and the halt switch, as one reason.

Pure: the windows (``runner.model.freeze``), the committed halt and ``now`` in, the reason
out. ``decide`` holds every start, advance and completion while :func:`line_stop` gives one;
rollbacks, pauses and holds go on (docs/environments.md, Freeze windows and halting).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from runner.model.config import RepoConfig
from runner.model.freeze import WEEK, FreezeWindow, Halt
from runner.timefmt import utc_iso_seconds

#: The fields a status record gains while a halt or a freeze holds (:func:`stop_record`).
HALTED, FROZEN = "halted", "frozen"

#: How far ahead "until" is followed through windows that touch or overlap: weekly windows
#: that cover the whole week between them would otherwise never end.
HORIZON = timedelta(days=366)


def _end_if_covers(window: FreezeWindow, t: datetime) -> datetime | None:
    """The end of the occurrence of ``window`` that holds ``t`` (start included, end
    excluded), or None when none does."""
    if window.weekly is None:
        assert window.start is not None and window.end is not None
        return window.end if window.start <= t < window.end else None
    monday = datetime(t.year, t.month, t.day, tzinfo=UTC) - timedelta(days=t.weekday())
    into = (t - monday).total_seconds()
    for week in (0, -1):  # this week's occurrence, or last week's still running
        start = window.weekly.start + week * WEEK
        if start <= into < start + window.weekly.length:
            return monday + timedelta(seconds=start + window.weekly.length)
    return None


def frozen_until(windows: Sequence[FreezeWindow], now: datetime) -> tuple[datetime, str] | None:
    """When the freeze that holds ``now`` ends, and why; None when no window holds it.
    Windows that overlap or touch (one starts where another ends) count as one freeze: the
    end is the first moment no window holds, followed at most :data:`HORIZON` ahead; the
    reason names each window of the chain once, in the order they take over."""
    now = now.astimezone(UTC)
    t, reasons = now, []
    while t - now < HORIZON:
        ends = [(end, w.reason) for w in windows if (end := _end_if_covers(w, t)) is not None]
        if not ends:
            break
        end, reason = max(ends, key=lambda e: e[0])
        if t == now:  # the reason of the window holding now comes first
            reason = next(r for e, r in ends)
        if reason not in reasons:
            reasons.append(reason)
        t = end
    if not reasons:
        return None
    return min(t, now + HORIZON), "; ".join(reasons)


def windows_of(config: RepoConfig, environment: str | None) -> tuple[FreezeWindow, ...]:
    """The freeze windows that apply to ``environment`` (None: the repository without
    environments): ``[tool.rollout] freeze`` and the environment's own."""
    env = config.environment(environment) if environment is not None else None
    return config.freezes + (env.freezes if env is not None else ())


def frozen_reason(until: datetime, reason: str) -> str:
    """``frozen until 2026-12-27T00:00:00Z: holidays``."""
    return f"frozen until {utc_iso_seconds(until)}: {reason}"


def halted_reason(halt: Halt) -> str:
    """``halted by alice at 2026-12-07T10:00:00Z: incident 123``."""
    return f"halted by {halt.by} at {utc_iso_seconds(halt.at)}: {halt.reason}"


def line_stop(config: RepoConfig, halt: Halt | None, environment: str | None,
              now: datetime) -> str | None:
    """Why no rollout of ``environment`` may move forward at ``now``, or None: the halt
    first (a person's act, lifted only by a person), then the freeze windows."""
    if halt is not None:
        return halted_reason(halt)
    frozen = frozen_until(windows_of(config, environment), now)
    return frozen_reason(*frozen) if frozen is not None else None


def stop_record(config: RepoConfig, halt: Halt | None, environment: str | None,
                now: datetime) -> dict[str, Any]:
    """What ``rollout status`` adds to each rollout's record while the line is stopped:
    ``halted`` (by, at, reason) and ``frozen`` (until, reason), each only while it holds;
    ``{}`` otherwise (the records stay as they were)."""
    out: dict[str, Any] = {}
    if halt is not None:
        out[HALTED] = {"by": halt.by, "at": utc_iso_seconds(halt.at), "reason": halt.reason,
                       "text": halted_reason(halt)}
        if halt.environment is not None:  # its own halt (`rollout unhalt --env` lifts it)
            out[HALTED]["environment"] = halt.environment
    frozen = frozen_until(windows_of(config, environment), now)
    if frozen is not None:
        out[FROZEN] = {"until": utc_iso_seconds(frozen[0]), "reason": frozen[1],
                       "text": frozen_reason(*frozen)}
    return out


__all__ = [
    "FROZEN",
    "HALTED",
    "HORIZON",
    "frozen_reason",
    "frozen_until",
    "halted_reason",
    "line_stop",
    "stop_record",
    "windows_of",
]
