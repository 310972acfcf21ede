"""``runner.reconcile.freeze.frozen_until`` and the weekly grammar, as a table: week
wraparound, UTC (no DST), touching and overlapping windows merging into one "until"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner.model.freeze import FreezeWindow, parse_weekly
from runner.reconcile.freeze import frozen_until


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def weekly(text: str, reason: str = "weekly") -> FreezeWindow:
    return FreezeWindow(reason=reason, weekly=parse_weekly(text))


def dated(start: str, end: str, reason: str = "dated") -> FreezeWindow:
    return FreezeWindow(reason=reason, start=t(start), end=t(end))


WEEKEND = weekly("fri 16:00-mon 08:00", "weekend")
HOLIDAYS = dated("2026-12-24T00:00:00Z", "2026-12-27T00:00:00Z", "holidays")

# 2026-03-06 is a Friday; 2026-03-29 is the EU's DST change (Sunday): nothing moves in UTC
CASES = [
    # (windows, now, expected until or None, expected reason)
    ([WEEKEND], "2026-03-06T15:59:59Z", None, ""),
    ([WEEKEND], "2026-03-06T16:00:00Z", "2026-03-09T08:00:00Z", "weekend"),  # start included
    ([WEEKEND], "2026-03-08T23:59:00Z", "2026-03-09T08:00:00Z", "weekend"),  # Sunday
    ([WEEKEND], "2026-03-09T07:59:59Z", "2026-03-09T08:00:00Z", "weekend"),  # wraps the week
    ([WEEKEND], "2026-03-09T08:00:00Z", None, ""),  # end excluded
    ([WEEKEND], "2026-03-29T12:00:00Z", "2026-03-30T08:00:00Z", "weekend"),  # DST-free
    ([weekly("sat-sun")], "2026-03-08T23:00:00Z", "2026-03-09T00:00:00Z", "weekly"),
    ([weekly("wed 12:00-wed 13:00")], "2026-03-11T12:30:00Z", "2026-03-11T13:00:00Z", "weekly"),
    ([weekly("wed 12:00-wed 13:00")], "2026-03-11T13:30:00Z", None, ""),
    ([HOLIDAYS], "2026-12-23T23:59:59Z", None, ""),
    ([HOLIDAYS], "2026-12-24T00:00:00Z", "2026-12-27T00:00:00Z", "holidays"),
    ([HOLIDAYS], "2026-12-27T00:00:00Z", None, ""),
    # 2026-12-25 is a Friday: the weekend (from the 25th 16:00 to the 28th 08:00) takes
    # over where the holidays end (the 27th): one freeze until Monday 08:00
    ([HOLIDAYS, WEEKEND], "2026-12-24T10:00:00Z", "2026-12-28T08:00:00Z", "holidays; weekend"),
    # touching windows (one starts where the other ends) are one freeze
    ([dated("2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z", "a"),
      dated("2026-05-02T00:00:00Z", "2026-05-03T00:00:00Z", "b")],
     "2026-05-01T06:00:00Z", "2026-05-03T00:00:00Z", "a; b"),
    # a gap of a second between them: two freezes
    ([dated("2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z", "a"),
      dated("2026-05-02T00:00:01Z", "2026-05-03T00:00:00Z", "b")],
     "2026-05-01T06:00:00Z", "2026-05-02T00:00:00Z", "a"),
    # overlapping: the later end; the window holding now is named first
    ([dated("2026-05-01T00:00:00Z", "2026-05-04T00:00:00Z", "long"),
      dated("2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z", "short")],
     "2026-05-01T06:00:00Z", "2026-05-04T00:00:00Z", "long"),
    # a time with an offset is read in UTC
    ([WEEKEND], "2026-03-06T17:30:00+02:00", None, ""),
    ([WEEKEND], "2026-03-06T18:30:00+02:00", "2026-03-09T08:00:00Z", "weekend"),
]


@pytest.mark.parametrize(("windows", "now", "until", "reason"), CASES)
def test_frozen_until(windows: list[FreezeWindow], now: str, until: str | None,
                      reason: str) -> None:
    got = frozen_until(windows, t(now))
    if until is None:
        assert got is None
    else:
        assert got == (t(until), reason)


def test_windows_covering_the_whole_week_end_at_the_horizon() -> None:
    windows = [weekly("mon-thu"), weekly("fri-sun")]
    got = frozen_until(windows, t("2026-03-06T00:00:00Z"))
    assert got is not None and (got[0] - t("2026-03-06T00:00:00Z")).days == 366


@pytest.mark.parametrize(("text", "start", "length"), [
    ("fri 16:00-mon 08:00", (4 * 24 + 16) * 3600, (2 * 24 + 16) * 3600),
    ("sat-sun", 5 * 86400, 2 * 86400),
    ("Saturday 00:00-Sunday 24:00", 5 * 86400, 2 * 86400),
    ("mon-mon", 0, 86400),
    ("sun 22:00-mon 02:00", (6 * 24 + 22) * 3600, 4 * 3600),
])
def test_weekly_grammar(text: str, start: int, length: int) -> None:
    w = parse_weekly(text)
    assert (w.start, w.length) == (start, length)


@pytest.mark.parametrize(("text", "words"), [
    ("fri 16:00-mun 08:00", "'mun' is not a day of the week"),
    ("fri 25:00-mon 08:00", "25:00 is not a time of day"),
    ("fri 16:60-mon 08:00", "16:60 is not a time of day"),
    ("mon 08:00-mon 08:00", "a window of no length"),
    ("weekends", "is not a weekly window"),
])
def test_weekly_grammar_refuses(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_weekly(text)
