"""The ``--since DATE`` grammar of ``rollout history`` and ``rollout incident``: a date or a time ago."""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta

from runner.timefmt import utc_iso_seconds

_UNITS = {"s": "seconds", "sec": "seconds", "second": "seconds", "m": "minutes",
          "min": "minutes", "minute": "minutes", "h": "hours", "hour": "hours", "d": "days",
          "day": "days", "w": "weeks", "week": "weeks", "month": "months", "y": "years",
          "year": "years"}
_AGO = re.compile(r"(\d{1,7})[ .]*([a-z]+?)s?(?:[ .]+ago)?", re.IGNORECASE)

#: What ``--help`` says ``--since`` accepts.
HELP = ("an ISO 8601 date or time (2026-01-01 is its midnight UTC), or a time ago: '2 weeks "
        "ago', 2.weeks.ago, 3d, 12h, yesterday; anything else is a usage error")


def parse_since(value: str, now: datetime) -> datetime:
    """``--since``: an ISO 8601 date or time, or a time before ``now`` (``2 weeks ago``,
    ``2.weeks.ago``, ``3d``, ``yesterday``). ValueError, saying what is accepted, for
    anything else: git's own parser reads nonsense as "now" and prints nothing."""
    text = value.strip()
    if text.lower() in ("yesterday", "today", "now"):
        return now - timedelta(days=1 if text.lower() == "yesterday" else 0)
    m = _AGO.fullmatch(text)
    if m is not None and (unit := _UNITS.get(m.group(2).lower())) is not None:
        n = int(m.group(1))
        try:
            if unit in ("months", "years"):
                months = n * (12 if unit == "years" else 1)
                year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
                day = min(now.day, calendar.monthrange(year, month + 1)[1])
                return now.replace(year=year, month=month + 1, day=day)
            return now - timedelta(**{unit: n})
        except (OverflowError, ValueError):
            raise ValueError("too long ago") from None
    # start-up: the loader's module costs `rollout history` ~20 ms, needed only for a date
    from runner.load.assemble import parse_time

    try:
        return parse_time(text)
    except ValueError as e:
        if re.match(r"\d{4}-\d\d", text):  # a date, out of range: say so
            raise ValueError(f"not a usable ISO 8601 date or time ({e})") from None
        raise ValueError("not an ISO 8601 date or time, nor a time ago such as '2 weeks "
                         "ago', 2.weeks.ago, 3d or yesterday") from None


def git_since(t: datetime) -> str | None:
    """A ``--since`` time as git is handed it: an exact UTC time; None (no limit) before
    git's epoch, where every commit is after it."""
    if t.year < 1970:
        return None
    return utc_iso_seconds(t)
