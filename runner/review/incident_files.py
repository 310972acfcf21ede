"""``rollout incident --write``: each report in ``docs/incidents/``, through the atomic
writer (``runner/files.py``), all of them or none.

A report in the way stops every write: a file that differs from this report (edited by
hand) unless ``force``, a path that is not a regular file, a folder outside the repository.
The same report written again changes nothing. Nothing is committed: the person fills in
the checklist and commits the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.files import read_regular, target_problem, write_atomic, write_new
from runner.review.incident import Incident


@dataclass(frozen=True, slots=True)
class Report:
    path: str  # relative to the repository: docs/incidents/<date>-<flag>.md
    data: bytes
    new: bool


def plan_reports(root: Path, incidents: Sequence[Incident], render: Callable[[Incident], str],
                 force: bool = False) -> tuple[list[Report], list[str]]:
    """The reports to write (oldest first) and, when any is in the way, why (then write
    none)."""
    top = str(root.resolve())
    reports: list[Report] = []
    problems: list[str] = []
    for i in reversed(incidents):
        rel = i.report_path
        path = root / rel
        data = render(i).encode("utf-8")
        folder = os.path.realpath(path.parent)
        if os.path.commonpath([folder, top]) != top:
            problems.append(f"{rel}: its folder is outside the repository; nothing written")
            continue
        if (why := target_problem(path)) is not None:
            problems.append(f"{rel} {why}; nothing written")
            continue
        try:
            old: bytes | None = read_regular(path, len(data) + 1)
        except FileNotFoundError:
            old = None
        if old is not None and old != data and not force:
            problems.append(f"{rel} exists and differs from this report (edited?); nothing "
                            "written (--force replaces it)")
            continue
        reports.append(Report(rel, data, old is None))
    return reports, problems


def write_reports(root: Path, reports: Sequence[Report]) -> list[tuple[str, str]]:
    """Write ``reports``; ``(path, "written" | "replaced" | "unchanged")`` for each."""
    done = []
    for r in reports:
        path = root / r.path
        if r.new:
            write_new(path, r.data)
            done.append((r.path, "written"))
        else:
            done.append((r.path, "replaced" if write_atomic(path, r.data) else "unchanged"))
    return done
