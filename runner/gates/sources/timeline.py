"""The ``timeline`` source: recorded metrics documents, one a line, read back at past moments.

``rollout simulate --timeline FILE`` replays a plan over it. Each line of the JSONL file is
one JSON object with a ``timestamp`` (ISO 8601, no offset: UTC, or epoch seconds) and the
fields the ``file`` and ``command`` sources read (docs/metrics.md), ``cohorts`` included
(docs/guarded.md); lines are in time order, blank lines are skipped::

    {"timestamp": "2026-01-15T12:00:00Z", "error_rate": 0.3, "request_count": 1200,
     "cohorts": {"treatment": {"requests": 0, "errors": 0},
                 "control": {"requests": 0, "errors": 0}}}

At a moment ``now`` the source reads the last line at or before it, under the ``file``
source's rules (a ``timestamp`` older than the window before ``now`` is stale: no data).
The cohort counts of a timeline are running totals since the timeline's start, as counters
are (they never decrease); the comparison gets what grew since the step started: the
counts of the line read minus those of the last line at or before the step's start (none:
from zero). So are the ``step`` counts (``requests``, ``errors``) a gate with a confidence
judges. A count a line lacks is no data at that line.

Parsing checks what can be checked without the plan (JSON, an object, the timestamp and its
order, the shape of ``cohorts``, ``step`` and their counts) and raises :class:`TimelineProblem` naming
the file, the line and the field; a gate's own field is read at the look, as the runner
reads a metrics file (a string where a number is meant is an ``error`` for that gate).
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runner.errors import ContentError
from runner.gates.readings import (
    COHORTS,
    COUNTS,
    STEP_COUNTS,
    NoData,
    Reading,
    SourceCall,
    check_fresh,
    cohort_readings_from_document,
    judges_counts,
    parse_timestamp,
    reading_from_document,
    step_readings_from_document,
)


class TimelineProblem(ContentError):
    """A line of a timeline cannot be read: ``FILE:LINE: field: why`` (exit 1)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a timeline: its moment, its line number and its document."""

    at: datetime
    line: int
    document: Mapping[str, Any]


@dataclass(frozen=True)
class Timeline:
    """A parsed timeline (:func:`parse_timeline`); :meth:`read` is its metric source."""

    #: The file as messages and evidence name it.
    name: str
    entries: tuple[Entry, ...]

    @property
    def start(self) -> datetime:
        return self.entries[0].at

    @property
    def end(self) -> datetime:
        return self.entries[-1].at

    def at(self, moment: datetime) -> Entry | None:
        """The last entry at or before ``moment`` (None: the timeline starts after it)."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        i = bisect.bisect_right([e.at for e in self.entries], moment)
        return self.entries[i - 1] if i else None

    def read(self, call: SourceCall) -> dict[str, Reading]:
        """What the ``file`` source would read at ``call.now`` had the file held the line
        recorded then; the cohort counts since ``call.step_started_at``."""
        entry = self.at(call.now)
        if entry is None:
            raise NoData(f"{self.name}: no line at or before {call.now.isoformat()} "
                         f"(the timeline starts at {self.start.isoformat()})")
        origin = f"{self.name}:{entry.line}"
        check_fresh(entry.document, call.now, call.metrics.window, origin)
        readings = {g.name: reading_from_document(entry.document, g, origin) for g in call.gates}
        base = self.at(call.step_started_at) if call.step_started_at is not None else None
        if judges_counts(call.gates):  # a gate with a confidence: the step's own counts
            grown_step = _grown_step(entry.document.get("step"),
                                     base.document.get("step") if base else None)
            since = f" since line {base.line}" if base is not None else ""
            readings.update(step_readings_from_document({"step": grown_step},
                                                        f"{origin} (counts{since})"))
        if call.compare is not None:
            grown = {"cohorts": _grown(entry.document.get("cohorts"),
                                       base.document.get("cohorts") if base else None)}
            since = f" since line {base.line}" if base is not None else ""
            readings.update(cohort_readings_from_document(grown, call.compare,
                                                          f"{origin} (counts{since})"))
        return readings


def _grown_step(now: object, then: object) -> dict[str, float] | None:
    """The ``step`` counts of ``now`` minus those of ``then`` (running totals, like the
    cohorts'); None when ``now`` has none."""
    if not isinstance(now, Mapping):
        return None
    before = then if isinstance(then, Mapping) else {}
    return {count: float(now[count]) - float(before.get(count) or 0)
            for count in STEP_COUNTS if now.get(count) is not None}


def _grown(now: object, then: object) -> dict[str, dict[str, float]] | None:
    """The cohort counts of ``now`` minus those of ``then`` (both checked by the parser);
    None when ``now`` has no cohorts."""
    if not isinstance(now, Mapping):
        return None
    before = then if isinstance(then, Mapping) else {}
    out: dict[str, dict[str, float]] = {}
    for cohort in COHORTS:
        counts = now.get(cohort)
        if not isinstance(counts, Mapping):
            continue
        earlier = before.get(cohort)
        earlier = earlier if isinstance(earlier, Mapping) else {}
        out[cohort] = {}
        for count in COUNTS:
            value = counts.get(count)
            if value is None:
                continue
            start = earlier.get(count)
            out[cohort][count] = float(value) - float(start if start is not None else 0)
    return out


def parse_timeline(text: str, name: str) -> Timeline:
    """The entries of a JSONL timeline; :class:`TimelineProblem` at the first bad line."""
    entries: list[Entry] = []
    last_count: dict[tuple[str, str], tuple[float, int]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{name}:{number}"
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as e:
            raise TimelineProblem(f"{where}:{e.colno}: invalid JSON: {e.msg}") from None
        except RecursionError:
            raise TimelineProblem(f"{where}: invalid JSON: nested too deep") from None
        if not isinstance(document, dict):
            raise TimelineProblem(f"{where}: expected a JSON object, found "
                                  f"{type(document).__name__}")
        if "timestamp" not in document:
            raise TimelineProblem(f"{where}: timestamp: missing (each line records its moment)")
        try:
            moment = parse_timestamp(document["timestamp"])
        except (ValueError, OverflowError, OSError) as e:
            raise TimelineProblem(f"{where}: timestamp: {e}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if entries and moment < entries[-1].at:
            raise TimelineProblem(f"{where}: timestamp: {moment.isoformat()} is before line "
                                  f"{entries[-1].line}'s {entries[-1].at.isoformat()}: lines "
                                  "are in time order")
        for field, value in [*_counts(document.get("cohorts"), where),
                             *_step_counts(document.get("step"), where)]:
            previous = last_count.get(field)
            if previous is not None and value < previous[0]:
                name_of = ".".join(field) if field[0] == "step" else f"cohorts.{'.'.join(field)}"
                raise TimelineProblem(
                    f"{where}: {name_of}: {value:g} is less than "
                    f"{previous[0]:g} on line {previous[1]}: counts are running totals "
                    "since the timeline's start and never decrease")
            last_count[field] = (value, number)
        entries.append(Entry(moment, number, document))
    if not entries:
        raise TimelineProblem(f"{name}: no lines: a timeline holds one JSON object a line")
    return Timeline(name, tuple(entries))


def _step_counts(step: object, where: str) -> list[tuple[tuple[str, str], float]]:
    """The ``step`` counts of one line (a gate with a confidence), checked like a cohort's."""
    if step is None:
        return []
    if not isinstance(step, Mapping):
        raise TimelineProblem(f"{where}: step: not an object: {step!r:.60}")
    out = []
    for count in STEP_COUNTS:
        value = step.get(count)
        if value is None:
            continue
        number = _count_value(value, f"{where}: step.{count}")
        out.append((("step", count), number))
    return out


def _count_value(value: object, where: str) -> float:
    """``value`` as a count (a finite number, 0 or more), else :class:`TimelineProblem`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TimelineProblem(f"{where}: not a number: {value!r:.60}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number < 0:
        raise TimelineProblem(f"{where}: {value!r:.60} is not a count (a finite number, 0 "
                              "or more)")
    return number


def _counts(cohorts: object, where: str) -> list[tuple[tuple[str, str], float]]:
    """The cohort counts of one line, checked: ((cohort, count), value) for each present."""
    if cohorts is None:
        return []
    if not isinstance(cohorts, Mapping):
        raise TimelineProblem(f"{where}: cohorts: not an object: {cohorts!r:.60}")
    out = []
    for cohort in COHORTS:
        counts = cohorts.get(cohort)
        if counts is None:
            continue
        if not isinstance(counts, Mapping):
            raise TimelineProblem(f"{where}: cohorts.{cohort}: not an object: {counts!r:.60}")
        for count in COUNTS:
            value = counts.get(count)
            if value is None:
                continue
            out.append(((cohort, count), _count_value(value, f"{where}: cohorts.{cohort}.{count}")))
    return out
