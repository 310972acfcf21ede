"""Freeze windows and the halt switch: the periods and the switch that stop rollouts moving forward.

A freeze window is declared in ``[tool.rollout] freeze`` (every environment) or
``[tool.rollout.environments.NAME] freeze`` (that one): dated (``start``/``end``) or weekly in
UTC (``weekly = "fri 16:00-mon 08:00"``, :func:`parse_weekly`). A halt is one committed file
a person writes with ``rollout halt`` (:class:`Halt`). Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

#: The days of the week as the weekly grammar writes them, Monday first (``datetime.weekday``).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = 24 * 3600
WEEK = 7 * DAY

_BOUND = r"\s*([A-Za-z]+)(?:\s+(\d{1,2}):(\d{2}))?\s*"
_WEEKLY = re.compile(_BOUND + "-" + _BOUND)


@dataclass(frozen=True, slots=True)
class Weekly:
    """A weekly window in UTC: from ``start`` seconds after Monday 00:00 for ``length``
    seconds (it may run past Sunday into the next week)."""

    start: int
    length: int
    #: As written in the config (``fri 16:00-mon 08:00``).
    text: str


@dataclass(frozen=True, slots=True)
class FreezeWindow:
    """One period in which no rollout advances or starts. Either dated (``start`` and
    ``end``, UTC) or ``weekly``."""

    reason: str
    start: datetime | None = None
    end: datetime | None = None
    weekly: Weekly | None = None


@dataclass(frozen=True, slots=True)
class Halt:
    """The stop-the-line switch as committed by ``rollout halt`` (``<rollouts_dir>/HALT.json``,
    or ``HALT.<env>.json`` for one environment): who, when, why."""

    by: str
    at: datetime
    reason: str
    #: None: the whole repository (a repository without environments, or every environment).
    environment: str | None = None


_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _day(name: str) -> int:
    day = name.lower()
    if day in WEEKDAYS:
        return WEEKDAYS.index(day)
    if day in _FULL:
        return _FULL.index(day)
    raise ValueError(f"{name!r} is not a day of the week (mon, tue, wed, thu, fri, sat, sun)")


def _clock(hours: str | None, minutes: str | None, default: int) -> int:
    if hours is None or minutes is None:
        return default
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and m):
        raise ValueError(f"{hours}:{minutes} is not a time of day (00:00 to 24:00)")
    return h * 3600 + m * 60


def parse_weekly(text: str) -> Weekly:
    """``DAY [HH:MM]-DAY [HH:MM]`` in UTC: ``fri 16:00-mon 08:00``, ``sat-sun`` (a missing
    start time is 00:00, a missing end time 24:00: ``sat-sun`` is the whole weekend),
    ``wed 12:00-wed 13:00``. An end at or before the start runs into the next week
    (``fri 16:00-mon 08:00``); a window of no length is refused. ValueError says why."""
    m = _WEEKLY.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a weekly window: DAY [HH:MM]-DAY [HH:MM] in UTC, "
                         "e.g. 'fri 16:00-mon 08:00' or 'sat-sun'")
    first, last = _day(m[1]), _day(m[4])
    start = first * DAY + _clock(m[2], m[3], 0)
    end = last * DAY + _clock(m[5], m[6], DAY)
    length = (end - start) % WEEK
    if length == 0:
        raise ValueError(f"{text!r} starts where it ends: a window of no length (a week-long "
                         "freeze is a dated window)")
    return Weekly(start, length, text)


__all__ = ["DAY", "WEEK", "WEEKDAYS", "FreezeWindow", "Halt", "Weekly", "parse_weekly"]
