"""The ``file`` source: a JSON object such as the reference document's ``logs/metrics.json``.

``{"error_rate": 0.4, "p95_latency_ms": 180, "p99_latency_ms": 250, "request_count": 1200,
"error_count": 5, "timestamp": "2026-11-27T04:55:00Z"}`` — ``error_rate`` in percent.

- The path is a sandboxed Jinja2 template (flag, window, percentage), relative to the
  repository root, and must stay inside it.
- A missing file is no data (inconclusive): nothing has reported yet.
- An unreadable file, one larger than :data:`MAX_SIZE` (1 MiB), or one that is not a JSON
  object is an error.
- With comparison gates, the document's ``cohorts`` object holds each cohort's counts
  (docs/guarded.md, "Cohort metrics"); the path template also gets ``step_window``,
  ``treatment_variant`` and ``control_variant``.
- A ``timestamp`` (ISO 8601, or epoch seconds) older than the window before ``now`` means
  the data is stale: no data (inconclusive). Without a ``timestamp`` the file is taken as
  current: the file's writer is responsible for it. A timestamp after ``now`` is accepted
  (clock skew, or a simulation with ``--now`` in the past).
"""

from __future__ import annotations

import json

from runner.gates.readings import (
    MISSING_FILE,
    NoData,
    Reading,
    SourceCall,
    SourceError,
    check_fresh,
    cohort_readings_from_document,
    judges_counts,
    reading_from_document,
    step_readings_from_document,
    template_vars,
)
from runner.gates.templates import render

#: The largest metrics file read; a larger one is an error.
MAX_SIZE = 1024 * 1024


def read(call: SourceCall) -> dict[str, Reading]:
    m = call.metrics
    if not m.path:
        raise SourceError("metrics type file needs a path")
    rendered = render(m.path, what="metrics path", flag=call.flag, window=m.window,
                      percentage=call.percentage, extra=template_vars(call))
    root = call.root.resolve()
    path = (root / rendered).resolve()
    if not path.is_relative_to(root):
        raise SourceError(f"metrics path {rendered!r} leads outside the repository")
    shown = path.relative_to(root).as_posix()
    if path.exists() and not path.is_file():  # a directory, or a FIFO that would block the run
        raise SourceError(f"{shown}: cannot read: not a regular file")
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SIZE + 1)
        if len(raw) > MAX_SIZE:
            raise SourceError(f"{shown}: larger than {MAX_SIZE} bytes: a metrics file holds one "
                              "small JSON object")
        text = raw.decode("utf-8")
    except FileNotFoundError as e:
        raise NoData(f"{shown}{MISSING_FILE}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{shown}: cannot read: {e}") from e
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise SourceError(f"{shown}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from e
    if not isinstance(document, dict):
        raise SourceError(f"{shown}: expected a JSON object, found {type(document).__name__}")

    check_fresh(document, call.now, m.window, shown)
    readings = {g.name: reading_from_document(document, g, shown) for g in call.gates}
    if judges_counts(call.gates):
        readings.update(step_readings_from_document(document, shown))
    if call.compare is not None:
        readings.update(cohort_readings_from_document(document, call.compare, shown))
    return readings
