"""Times as text: the two ways the runner writes a time, the one way it reads one back.

A side module: it imports none of the layers. Every time the runner writes for a state file,
a commit, a document or a person goes through one of the functions here, so a format is
changed in one place (and every output of it is listed by a search for its name).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def utc_iso(t: datetime) -> str: ...
@overload
def utc_iso(t: None) -> None: ...
def utc_iso(t: datetime | None) -> str | None:
    """``2026-11-27T05:00:00Z`` (``…05:00:00.250000Z`` when the time has microseconds): UTC,
    ISO 8601 with ``Z``. How state files, decisions' reasons, ``rollout status --format json``,
    notifications and ``rollout plan`` write a time; None for None."""
    return None if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@overload
def utc_iso_seconds(t: datetime) -> str: ...
@overload
def utc_iso_seconds(t: None) -> None: ...
def utc_iso_seconds(t: datetime | None) -> str | None:
    """``2026-11-27T05:00:00Z``, to the second, always: UTC, ISO 8601 with ``Z``. How
    ``rollout history --since`` hands a time to git, and how incident reports and the status
    dashboard's timelines write one; None for None."""
    return None if t is None else t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown_time(iso: str) -> str:
    """``2026-11-27T05:00:00Z`` -> ``2026-11-27 05:00:00``: a written time for people (the
    Markdown reports' tables) and for Mermaid charts (their dateFormat); to the second."""
    return iso.replace("T", " ").removesuffix("Z")[:19]


def parse_iso(text: str) -> datetime:
    """An ISO 8601 time, ``Z`` or an offset; a time without one is UTC. Kept in the offset
    it was written with (``.astimezone(UTC)`` where UTC is wanted). ValueError when ``text``
    is not a time."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)
