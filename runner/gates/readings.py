"""What a metric source hands back: one reading per gate, or one failure for all of them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runner.errors import ExternalError
from runner.load.durations import format_duration, parse_duration
from runner.model import Comparison, Gate, MetricsConfig
from runner.timefmt import parse_iso


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
    #: The plan's comparison gates, when this step compares the cohorts: the source then
    #: also reads the cohort counts, under :func:`cohort_key` names.
    compare: Comparison | None = None
    #: The flag's rollout_variant (treatment) and default_variant (control).
    treatment_variant: str = "on"
    control_variant: str = "off"
    #: When the current step started: cohort counts are cumulative since then.
    step_started_at: datetime | None = None


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


class SourceError(ExternalError):
    """The whole source failed: every gate of the call gets verdict ``error``."""


#: How a source says a metrics file is missing (``file`` source: ``NoData``, detail ending in
#: it): no data, but no lack of traffic either, since nothing puts the file where the runner
#: runs; ``rollout advance`` is loud about it (``runner.reconcile.runs.unreadable_cause``).
MISSING_FILE = " does not exist (nothing reported yet)"


class NoData(ExternalError):
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
    if name == "error_rate" and (why := _rate_as_fraction(document, value)) is not None:
        return Reading(error=f"{where} {why}", detail=where)
    return _number(value, where)


def _rate_as_fraction(document: Mapping[str, object], rate: float) -> str | None:
    """Why ``rate`` (the document's ``error_rate``) is a fraction where percent is meant, or
    None. Only the document itself can tell: when it also gives ``error_count`` and
    ``request_count`` (as the reference's ``logs/metrics.json`` does) and the rate equals
    their quotient rather than 100 times it. A rate alone cannot be told from a low one, so
    it is never guessed at; a fraction taken for percent would pass a gate 100 times too
    loose, so this is an error (no advance on it), not a warning."""
    errors, requests = document.get("error_count"), document.get("request_count")
    if (isinstance(errors, bool) or not isinstance(errors, int | float)
            or isinstance(requests, bool) or not isinstance(requests, int | float)):
        return None
    try:
        if not (errors > 0 and requests > 0 and math.isfinite(rate)):
            return None
        fraction = errors / requests
    except (OverflowError, ZeroDivisionError):
        return None
    if math.isclose(rate, fraction, rel_tol=1e-3) and not math.isclose(rate, 100 * fraction,
                                                                          rel_tol=1e-3):
        return (f"is {rate:g}: error_count / request_count ({errors:g} / {requests:g}) as a "
                f"fraction; gates are in percent: the metrics export must write "
                f"{100 * fraction:g} for {100 * fraction:g} %")
    return None


def _number(value: int | float, where: str) -> Reading:
    """A JSON number as a reading: an integer too large for a float (``10**400``) is an error
    naming the field, never an OverflowError."""
    try:
        return Reading(value=float(value), detail=where)
    except OverflowError:
        digits = math.ceil(abs(int(value)).bit_length() * math.log10(2))
        return Reading(error=f"{where} is an integer of {digits} digits, too large to be a "
                             "number the runner reads", detail=where)


def parse_timestamp(value: object) -> datetime:
    """ISO 8601 (no offset: UTC) or seconds since the epoch. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"timestamp {value!r} is neither ISO 8601 nor epoch seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"timestamp {value!r} is not finite")
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        return parse_iso(value)
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


# --- cohort counts (comparison gates, docs/guarded.md "Cohort metrics") ----------------------

TREATMENT, CONTROL = "treatment", "control"
COHORTS = (TREATMENT, CONTROL)
#: The counts a cohort can have; ``assigned`` is optional (the sample-ratio check), and so
#: is ``users`` unless the comparison's unit is users (``users_with_errors`` and
#: ``users_slow`` are read only then).
COUNTS = ("requests", "errors", "slow", "assigned", "users", "users_with_errors", "users_slow")
#: Counts read when the source has them, needed by no comparison of requests.
OPTIONAL_COUNTS = ("assigned", "users")
#: The count of each compared metric's events, by the comparison's unit.
EVENT_COUNTS = {("requests", "error_rate"): "errors", ("requests", "slow_rate"): "slow",
                ("users", "error_rate"): "users_with_errors", ("users", "slow_rate"): "users_slow"}
#: ``metrics.queries`` names of the cohort counts for Prometheus: ``cohort_requests``...
QUERY_PREFIX = "cohort_"


def cohort_key(cohort: str, count: str) -> str:
    """The readings key of one cohort count (never a gate name: those have no colon)."""
    return f"cohort:{cohort}:{count}"


def counts_needed(spec: Comparison) -> tuple[str, ...]:
    """The counts every cohort must have for ``spec``'s comparisons (``assigned`` aside):
    ``requests`` always, ``users`` with the unit users, and each metric's events."""
    names = {m.metric for m in spec.metrics}
    users = ("users",) if spec.unit == "users" else ()
    return ("requests", *users, *(EVENT_COUNTS[(spec.unit, metric)] for metric in COMPARED_ORDER
                                  if metric in names))


#: The order of the compared metrics' counts.
COMPARED_ORDER = ("error_rate", "slow_rate")


def counts_read(spec: Comparison, optional: tuple[str, ...] = OPTIONAL_COUNTS) -> tuple[str, ...]:
    """The counts a source reads for ``spec``: those needed, then those of ``optional`` it
    may have (the Prometheus source passes the optional counts it has queries for)."""
    needed = counts_needed(spec)
    return (*needed, *(c for c in optional if c not in needed))


def objective_ms(spec: Comparison | None) -> float | None:
    if spec is None:
        return None
    return next((m.objective_ms for m in spec.metrics if m.metric == "slow_rate"), None)


def step_window(call: SourceCall) -> str:
    """A Prometheus duration from the step's start to ``now``, whole seconds, at least 1s;
    the metrics window when the step's start is unknown."""
    if call.step_started_at is None:
        return call.metrics.window
    started = call.step_started_at
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return f"{max(1, int((call.now - started).total_seconds()))}s"


def _number_text(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def template_vars(call: SourceCall, cohort: str | None = None) -> dict[str, object]:
    """The variables templates get besides flag, window and percentage; with ``cohort``,
    also ``cohort`` and its ``variant``."""
    out: dict[str, object] = {"treatment_variant": call.treatment_variant,
                              "control_variant": call.control_variant,
                              "step_window": step_window(call)}
    objective = objective_ms(call.compare)
    if objective is not None:
        out["objective_ms"] = _number_text(objective)
        # as prometheus_client writes a bucket's le: 0.5, 1.0, 2.5
        out["objective_seconds"] = repr(objective / 1000.0)
    if cohort is not None:
        out["cohort"] = cohort
        out["variant"] = call.treatment_variant if cohort == TREATMENT else call.control_variant
    return out


def cohort_readings_from_document(document: Mapping[str, object], spec: Comparison,
                                  origin: str) -> dict[str, Reading]:
    """The cohort counts of a metrics document: ``{"cohorts": {"treatment": {"requests": …,
    "errors": …, "slow": …, "assigned": …, "users": …, "users_with_errors": …,
    "users_slow": …}, "control": {…}}}``. Missing or null: no data; not an object or not a
    number: an error."""
    out: dict[str, Reading] = {}
    cohorts = document.get("cohorts")
    for cohort in COHORTS:
        for count in counts_read(spec):
            where = f"{origin} field cohorts.{cohort}.{count}"
            key = cohort_key(cohort, count)
            if cohorts is None:
                out[key] = Reading(detail=f"{origin}: no cohorts object")
                continue
            if not isinstance(cohorts, Mapping):
                out[key] = Reading(error=f"{origin} field cohorts is not an object: {cohorts!r:.60}",
                                   detail=where)
                continue
            one = cohorts.get(cohort)
            if one is None:
                out[key] = Reading(detail=f"{origin} field cohorts.{cohort}: missing")
            elif not isinstance(one, Mapping):
                out[key] = Reading(error=f"{origin} field cohorts.{cohort} is not an object: "
                                   f"{one!r:.60}", detail=where)
            elif one.get(count) is None:
                out[key] = Reading(detail=f"{where}: missing")
            elif isinstance(one[count], bool) or not isinstance(one[count], int | float):
                out[key] = Reading(error=f"{where} is not a number: {one[count]!r:.60}", detail=where)
            else:
                out[key] = _number(one[count], where)
    return out


# --- step counts (gates with a confidence, docs/metrics.md "Gates with a confidence") --------

#: The counts a gate with a confidence reads, cumulative since the current step started:
#: document fields ``step.requests`` and ``step.errors``, Prometheus queries
#: ``step_requests`` and ``step_errors``.
STEP_COUNTS = ("requests", "errors")
#: ``metrics.queries`` names of the step counts for Prometheus: ``step_requests``...
STEP_QUERY_PREFIX = "step_"


def step_key(count: str) -> str:
    """The readings key of one step count (never a gate name: those have no colon)."""
    return f"step:{count}"


def judges_counts(gates: tuple[Gate, ...]) -> bool:
    """Whether a gate of ``gates`` has a confidence, and so needs the step counts."""
    return any(g.confidence is not None for g in gates)


def step_readings_from_document(document: Mapping[str, object], origin: str) -> dict[str, Reading]:
    """The step counts of a metrics document: ``{"step": {"requests": …, "errors": …}}``.
    Missing or null: no data; not an object or not a number: an error."""
    out: dict[str, Reading] = {}
    step = document.get("step")
    for count in STEP_COUNTS:
        where = f"{origin} field step.{count}"
        if step is None:
            out[step_key(count)] = Reading(detail=f"{origin}: no step object")
        elif not isinstance(step, Mapping):
            out[step_key(count)] = Reading(error=f"{origin} field step is not an object: "
                                                 f"{step!r:.60}", detail=where)
        elif step.get(count) is None:
            out[step_key(count)] = Reading(detail=f"{where}: missing")
        elif isinstance(step[count], bool) or not isinstance(step[count], int | float):
            out[step_key(count)] = Reading(error=f"{where} is not a number: {step[count]!r:.60}",
                                           detail=where)
        else:
            out[step_key(count)] = _number(step[count], where)
    return out
