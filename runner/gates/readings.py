"""What a metric source hands back: one reading per gate, or one failure for all of them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runner.load.durations import format_duration, parse_duration
from runner.model import Gate, MetricsConfig


@dataclass(frozen=True, slots=True)
class SourceCall:
    """Everything a source may use to read the metrics of one rollout's gates."""

    flag: str
    percentage: float
    metrics: MetricsConfig
    gates: tuple[Gate, ...]
    root: Path
    #: The injected clock: the moment whose metrics are read. Sources never read the time.
    now: datetime
    #: The environment of the run (bearer tokens, command environment).
    env: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Reading:
    """One gate's metric as the source saw it.

    ``value`` None and ``error`` None: no data. ``error`` set: the source failed for this
    metric (bad query, ambiguous answer, non-numeric value).
    """

    value: float | None = None
    error: str | None = None
    #: Where the value came from (field, query), for the evidence in commit messages.
    detail: str = ""


class SourceError(Exception):
    """The whole source failed: every gate of the call gets verdict ``error``."""


class NoData(Exception):
    """The source answered, but has nothing for this moment: every gate is ``inconclusive``."""


def field_name(gate: Gate) -> str:
    """The metric a gate reads from a JSON document: built-ins by name, custom by ``query``."""
    return gate.query if gate.query is not None else gate.name


def reading_from_document(document: Mapping[str, object], gate: Gate, origin: str) -> Reading:
    """The value of ``gate`` in a JSON object (metrics file, command output).

    A missing key or ``null`` is no data; a string, boolean, list or object is nonsense.
    A dotted custom field (``latency.p50``) walks nested objects when no key has the
    dotted name itself.
    """
    name = field_name(gate)
    where = f"{origin} field {name!r}"
    value: object
    if name in document:
        value = document[name]
    else:
        value = document
        for part in name.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return Reading(detail=f"{where}: missing")
            value = value[part]
    if value is None:
        return Reading(detail=f"{where}: null")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Reading(error=f"{where} is not a number: {value!r:.60}", detail=where)
    return Reading(value=float(value), detail=where)


def parse_timestamp(value: object) -> datetime:
    """ISO 8601 (no offset: UTC) or seconds since the epoch. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"timestamp {value!r} is neither ISO 8601 nor epoch seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"timestamp {value!r} is not finite")
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return t if t.tzinfo else t.replace(tzinfo=UTC)
    raise ValueError(f"timestamp {value!r:.60} is neither ISO 8601 nor epoch seconds")


def check_fresh(document: Mapping[str, object], now: datetime, window: str, origin: str) -> None:
    """Raise NoData when the document's ``timestamp`` is older than ``window`` before ``now``.

    No ``timestamp``: the document is taken as current. A timestamp after ``now`` is accepted
    (clock skew, or a simulation with ``--now`` in the past). A malformed one is an error.
    """
    if "timestamp" not in document:
        return
    try:
        written = parse_timestamp(document["timestamp"])
    except (ValueError, OverflowError, OSError) as e:
        raise SourceError(f"{origin}: timestamp: {e}") from e
    try:
        limit = parse_duration(window)
    except ValueError as e:
        raise SourceError(f"metrics window: {e}") from e
    age = (now - written).total_seconds()
    if age > limit:
        raise NoData(f"{origin} is stale: written {written.isoformat()}, "
                     f"{format_duration(age)} before now, older than the window {window}")
