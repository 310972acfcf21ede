"""The one writer of times and percentages as text (runner/timefmt.py, runner/percent.py):
the formats state files, commit messages, reports and dashboards have always written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from runner.percent import pct, percent
from runner.timefmt import parse_iso, shown_time, utc_iso, utc_iso_seconds

PLUS_TWO = timezone(timedelta(hours=2))


@pytest.mark.parametrize(("t", "full", "seconds"), [
    (datetime(2026, 11, 27, 5, 0, tzinfo=UTC), "2026-11-27T05:00:00Z", "2026-11-27T05:00:00Z"),
    (datetime(2026, 11, 27, 7, 0, 30, tzinfo=PLUS_TWO), "2026-11-27T05:00:30Z",
     "2026-11-27T05:00:30Z"),
    (datetime(2026, 11, 27, 5, 0, 0, 250000, tzinfo=UTC), "2026-11-27T05:00:00.250000Z",
     "2026-11-27T05:00:00Z"),
])
def test_the_two_ways_a_time_is_written(t: datetime, full: str, seconds: str) -> None:
    assert utc_iso(t) == full
    assert utc_iso_seconds(t) == seconds
    assert shown_time(full) == shown_time(seconds) == seconds.replace("T", " ")[:19]
    assert parse_iso(full) == t


def test_none_stays_none_and_a_time_without_offset_is_utc() -> None:
    assert utc_iso(None) is None and utc_iso_seconds(None) is None
    assert parse_iso("2026-11-27T05:00:00") == datetime(2026, 11, 27, 5, tzinfo=UTC)
    assert parse_iso("2026-11-27T07:00:00+02:00").utcoffset() == timedelta(hours=2)
    with pytest.raises(ValueError):
        parse_iso("yesterday")


@pytest.mark.parametrize(("p", "number", "shown"), [
    (0.0, "0", "0%"), (5.0, "5", "5%"), (2.5, "2.5", "2.5%"), (0.01, "0.01", "0.01%"),
    (100.0, "100", "100%"), (33.33, "33.33", "33.33%"),
])
def test_a_percentage_is_written_as_the_commits_write_it(p: float, number: str, shown: str) -> None:
    assert pct(p) == number
    assert percent(p) == shown


def test_a_missing_percentage_is_a_dash_unless_the_output_has_always_said_otherwise() -> None:
    assert percent(None) == "—"
    assert percent(None, "?") == "?"  # incident labels, in the JSON reports
