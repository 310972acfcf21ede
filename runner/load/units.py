"""The unit of each numeric field of a plan, and what to write instead of a value with a unit.

A plan's numbers carry no unit: ``p95_latency_ms: 500`` is milliseconds, ``error_rate: 1`` is
percent, a step of ``5`` is 5 % of users. A value written with its unit (``'500ms'``,
``'5%'``) is a string to YAML; the schema error then says what to write.
"""

from __future__ import annotations

import re
from typing import Any

from runner.load.durations import parse_duration

_NUMBER = re.compile(r"^\s*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*(%|pp)?\s*$")

#: field name -> (unit, how the unit reads in the advice)
PERCENT = "percent"
MILLISECONDS = "milliseconds"
PERCENTAGE_POINTS = "percentage points"
COUNT = "count"
FRACTION = "fraction"

_BY_NAME = {
    "error_rate": PERCENT,
    "p95_latency_ms": MILLISECONDS,
    "p99_latency_ms": MILLISECONDS,
    "objective_ms": MILLISECONDS,
    "max_increase": PERCENTAGE_POINTS,
    "request_count": COUNT,
    "min_requests": COUNT,
    "failure_limit": COUNT,
    "error_limit": COUNT,
    "confidence": FRACTION,
    "srm_p_value": FRACTION,
    "percentage": PERCENT,
}


def unit_of(path: tuple[Any, ...]) -> str | None:
    """The unit of the numeric field at ``path`` in a plan, None when it has none known."""
    names = [p for p in path if isinstance(p, str)]
    if not names:
        return None
    if names[0] == "steps" and (isinstance(path[-1], int) or path[-1] == "percentage"):
        return PERCENT  # a step: the share of users
    if "custom" in names:
        return None  # a custom metric's unit is its query's
    last = names[-1]
    if last in ("max", "min") and len(names) >= 2:
        last = names[-2]
    if names[0] == "compare" and last == "error_rate":
        return None  # compare.error_rate is an object
    return _BY_NAME.get(last)


def _number(text: str) -> str:
    value = float(text)
    return f"{value:g}" if abs(value) < 1e15 else text


def _shown(value: float) -> str:
    return f"{round(value, 6):g}"


def unit_advice(path: tuple[Any, ...], instance: Any) -> str:
    """What to write instead of ``instance``, a string where the field at ``path`` wants a
    number: ``"write 500 (milliseconds, without a unit)"``; ``""`` when nothing fits."""
    if not isinstance(instance, str) or len(instance) > 40:
        return ""
    unit = unit_of(path)
    if path and path[0] == "steps" and unit is None:
        return ""
    if unit is None:
        if "custom" in [p for p in path if isinstance(p, str)]:
            m = _NUMBER.match(instance)
            return f"write {_number(m.group(1))} (a number, without a unit)" if m else ""
        return ""
    text = instance.strip()
    m = _NUMBER.match(text)
    if unit == MILLISECONDS:
        try:
            ms = parse_duration(text) * 1000 if not m else float(m.group(1))
        except ValueError:
            return "write a number of milliseconds, such as 500 (without a unit)"
        return f"write {_shown(ms)} (milliseconds, without a unit)"
    if unit == PERCENT:
        what = "a percentage of users" if path[0] == "steps" else "percent"
        if m:
            return f"write {_number(m.group(1))} ({what}, without %)"
        return f"write a number ({what}, without %), such as 5"
    if unit == PERCENTAGE_POINTS:
        if m:
            return f"write {_number(m.group(1))} (percentage points, without % or pp)"
        return "write a number of percentage points, such as 0.5 (without % or pp)"
    if unit == COUNT:
        if m and float(m.group(1)).is_integer():
            return f"write {int(float(m.group(1)))} (a whole number, without quotes)"
        return "write a whole number, such as 100 (without quotes)"
    if unit == FRACTION:
        if m and m.group(2) == "%":
            return f"write {_shown(float(m.group(1)) / 100)} (a fraction of 1, without %)"
        if m:
            return f"write {_number(m.group(1))} (a fraction of 1, without quotes)"
        return "write a fraction of 1, such as 0.95"
    return ""
