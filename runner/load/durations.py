"""Durations as plans write them: ``300s``, ``5m``, ``1h30m``, ``2d``, ``500ms`` or seconds."""

from __future__ import annotations

import math
import re

#: The longest duration a plan may give (a step's wait, a deadline, a timeout): beyond a year
#: a number is a typo, and beyond a few thousand years no clock can add it.
MAX_DURATION = 366 * 86400.0

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d|w))+$")


def parse_duration(value: str | float | int) -> float:
    """Seconds. Raises ValueError with a message fit for a user."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"{value!r} is not a duration (seconds, 0 or more)")
        return float(value)
    if not isinstance(value, str) or not _WHOLE.match(value):
        raise ValueError(f"{value!r} is not a duration such as 300s, 5m, 1h30m or 2d")
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))


def format_duration(seconds: float) -> str:
    """The shortest exact form: 300 -> 5m, 5400 -> 1h30m, 0.5 -> 500ms."""
    if seconds <= 0:
        return "0s"
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            out += f"{s // size}{unit}"
            s %= size
    return out
