"""The Markdown of ``rollout incident`` (``runner/templates/incident.md.j2``, its chart
``incident_gantt.md.j2``): one section per rollback, newest first, then the checklist of
what git cannot answer.

Bounded so that it fits a GitHub issue body or comment (65,536 characters): every text from
a commit is shortened (runner.review.incident), a timeline longer than :data:`ROWS` keeps its
first and last events, and when the whole is still too long the oldest incidents are left
out, the document saying how many. No local path appears in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runner.load.durations import format_duration
from runner.model import GateResult
from runner.reconcile.message import gate_trailer
from runner.review.incident import Event, Incident, failing, parse_time
from runner.review.render import render
from runner.timefmt import shown_time

MARKER = "<!-- rollout-incident -->"
LIMIT = 65_000
#: Timeline rows drawn per incident; more keep the first ROWS // 4 and the rest from the end.
ROWS = 60


def _when(iso: str | None) -> str:
    return "—" if not iso else shown_time(iso)


def _for(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return format_duration(round(seconds)) if seconds >= 1 else "0s"


def _gate(g: GateResult) -> str:
    """As the commit's ``Rollout-Gate`` writes it, and a failing gate's detail."""
    detail = f" — {g.detail}" if g.detail and failing(g) else ""
    return f"{gate_trailer(g)}{detail}"


def _event(e: Event) -> dict[str, Any]:
    show = any(map(failing, e.gates))
    return {"gap": 0, "when": _when(e.time), "marks": list(e.marks), "label": e.label,
            "after": e.after, "sha": (e.sha or "")[:10], "who": e.who, "detail": e.detail,
            "gates": [_gate(g) for g in e.gates if failing(g) or g.verdict != "pass"]
            if show else []}


#: People's acts drawn as milestones on the chart, beside the runner's.
_MILESTONES = {"revert": "git revert", "hold": "held", "resume": "resumed", "pause": "paused"}


def _chart(i: Incident) -> dict[str, Any]:
    segments: list[dict[str, Any]] = []
    times = [t for t in (e.time for e in i.timeline) if t]
    shares = [e for e in i.timeline if e.kind not in ("published",) and e.after is not None
              and (e.sha, e.kind) != (i.rollback.sha, "rollback")]
    rb = i.rollback
    upto = [e for e in shares if e.time and rb.time and e.time <= rb.time]
    for k, e in enumerate(upto):
        end = upto[k + 1].time if k + 1 < len(upto) else rb.time
        if e.after and e.time and end and end > e.time:
            if segments and segments[-1]["pct"] == e.after and segments[-1]["end"] == e.time:
                segments[-1]["end"] = end  # an evaluation recorded at the same share
            else:
                segments.append({"pct": e.after, "start": e.time, "end": end})
    milestones = []
    if i.exposure_began is not None and i.exposure_began.time:
        milestones.append({"name": "exposure began", "time": i.exposure_began.time})
    if i.first_failure is not None and i.first_failure.time:
        milestones.append({"name": "first failing evaluation", "time": i.first_failure.time})
    if rb.time:
        milestones.append({"name": "rolled back", "time": rb.time})
    if i.published is not None:
        milestones.append({"name": "published", "time": i.published.time})
    milestones += [{"name": _MILESTONES[e.kind], "time": e.time} for e in i.timeline
                   if e.kind in _MILESTONES and e.time][:20]
    milestones.sort(key=lambda m: m["time"])  # stable: the order above at the same time
    parsed = [t for t in (parse_time(x) for x in times) if t is not None]
    span = (max(parsed) - min(parsed)).total_seconds() if parsed else 0
    return {"segments": segments, "milestones": milestones, "seconds": span}


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def view(i: Incident, rows: int = ROWS) -> dict[str, Any]:
    timeline = [_event(e) for e in i.timeline]
    if len(timeline) > rows:
        head = max(rows // 4, 1)
        tail = rows - head
        timeline = [*timeline[:head], {"gap": len(timeline) - rows}, *timeline[-tail:]]
    fail = i.first_failure
    return {
        "flag": i.flag, "when": _when(i.rollback.time), "sha": (i.rollback.sha or "")[:10],
        "automatic": i.automatic, "verified": i.verified,
        "requested_by": i.requested_by or "", "from": i.rollback.before,
        "ordinal": _ordinal(i.number), "reason": i.reason,
        "failure": None if fail is None else {
            "when": _when(fail.time), "sha": (fail.sha or "")[:10],
            "gates": [_gate(g) for g in fail.gates if failing(g)]},
        "began": None if i.exposure_began is None else {
            "when": _when(i.exposure_began.time), "pct": i.exposure_began.after,
            "sha": (i.exposure_began.sha or "")[:10]},
        "peak": i.peak_percentage, "peak_since": _when(i.peak_since),
        "peak_for": _for(i.peak_seconds), "exposed_for": _for(i.exposed_seconds),
        "users": i.users, "users_at_peak": i.users_at_peak,
        "published": None if i.published is None else {
            "when": _when(i.published.time), "branch": i.published.branch,
            "sha": i.published.sha[:10], "author": i.published.author},
        "published_note": i.published_note,
        "failure_to_rollback": _for(i.failure_to_rollback_seconds) if fail else "no failure",
        "rollback_to_published": _for(i.rollback_to_published_seconds)
        if i.published else "not recorded",
        "failure_to_published": _for(i.failure_to_published_seconds)
        if fail and i.published else "—",
        "actors": [{"name": a.name, "acts": list(a.acts)} for a in i.actors],
        "notes": list(i.notes), "timeline": timeline, "chart": _chart(i),
    }


def incident_markdown(incidents: Sequence[Incident], limit: int = LIMIT) -> str:
    """The report of ``incidents`` (newest first), at most ``limit`` characters when one
    incident with a shortened timeline fits: the most incidents that fit (found by
    halving, each incident's view built once), then fewer timeline rows if need be."""
    def at(count: int, rows: int) -> str:
        shown = views[rows][:count]
        return render("incident.md.j2", incidents=shown, marker=MARKER,
                      hidden=len(incidents) - count)

    views = {ROWS: [view(i, ROWS) for i in incidents]}
    text = at(len(incidents), ROWS)
    if len(text) <= limit:
        return text
    lo, hi = 1, len(incidents)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(at(mid, ROWS)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    rows = ROWS
    while len(text := at(lo, rows)) > limit and rows > 8:
        rows //= 2
        views[rows] = [view(i, rows) for i in incidents[:lo]]
    return text
