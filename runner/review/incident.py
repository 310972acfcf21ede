"""``rollout incident``: what happened around each rollback of a flag, from git alone. Pure.

Input: the flag's audit trail as ``rollout history`` reads it (:func:`runner.review.audit.history`,
newest first), the state files those commits wrote (for the gates' details and evaluation
times) and, when the artifact is published to a ``branch:`` target, the publication commit
that first served each rollback (``runner/review/incident_read.py`` reads all three).

For each rollback (a runner commit with ``Rollout-Action: rollback``, automatic or
``Rollout-Requested-By`` a person):

- the *run* it ends: from the latest ``start`` or ``retry`` before it;
- when exposure began: the first commit of the run serving more than 0 %;
- the first failing evaluation: the first commit (``observe`` below ``failure_limit``, or
  the rollback itself) with a failing blocking gate since the analysis last started again
  (start, retry, replan, resume, hold: the events that reset the count, see decide.py);
- what followed until the next run (revert, hold, resume, pause, edits, the retry);
- time to rollback: first failing evaluation -> rollback commit -> published;
- the share exposed: the highest percentage served in the run, since when and for how
  long (until the rollback commit), and with ``users`` a count of users;
- who acted: the runner, the people who requested, reverted, edited and published.

Times are the commits' author dates (the runner dates its commits with the run's ``now``);
a publication commit is dated by the clock of the machine that published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from runner.model import GateResult, Verdict
from runner.percent import percent
from runner.reconcile.message import parse_gate
from runner.review.audit import Entry
from runner.timefmt import parse_iso, utc_iso_seconds

__all__ = ["Actor", "Event", "Incident", "Publication", "build_incidents", "failing",
           "gate_dict", "gates_of", "parse_gate", "parse_time", "report_name"]

#: Actions after which the failure count starts again (decide.py: a start, retry, replan,
#: resume, or a person's change that the runner held on).
RESETS = frozenset({"start", "retry", "replan", "resume", "hold"})
#: Actions that begin a run.
RUN_STARTS = frozenset({"start", "retry"})
#: The longest text from a commit kept in a report (a subject, a reason, a name).
TEXT_LIMIT = 300
#: Gates shown per timeline event.
GATES_LIMIT = 8

def _short(text: str | None, limit: int = TEXT_LIMIT) -> str:
    if not text:
        return ""
    s = " ".join(text.split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def parse_time(iso: str) -> datetime | None:
    try:
        return parse_iso(iso).astimezone(UTC)
    except (ValueError, OverflowError):  # not a time, or one UTC cannot hold
        return None


def _num(v: float | None) -> float | int | None:
    return None if v is None else int(v) if float(v).is_integer() else v


def failing(g: GateResult) -> bool:
    """A blocking gate that failed (a dry-run gate never blocks)."""
    return g.verdict is Verdict.FAIL and not g.dry_run


def gate_dict(g: GateResult) -> dict[str, Any]:
    """A gate of a timeline event in the JSON report."""
    return {"name": g.name, "verdict": g.verdict.value, "value": _num(g.value),
            "threshold": g.threshold, "dry_run": g.dry_run, "detail": g.detail,
            "evaluated_at": utc_iso_seconds(g.evaluated_at)}


def gates_of(entry: Entry, state: Mapping[str, Any] | None = None) -> list[GateResult]:
    """The gates a runner commit records (its ``Rollout-Gate`` trailers, read by
    ``runner.reconcile.message``), completed by the ``last_gates`` of the state file it
    wrote (the detail and the evaluation time) when they are the same evaluation."""
    gates = [g for g in map(parse_gate, entry.gates) if g is not None]
    recorded = state.get("last_gates") if isinstance(state, Mapping) else None
    if not isinstance(recorded, list):
        return gates
    by_name = {g.get("name"): g for g in recorded if isinstance(g, Mapping)}
    out = []
    for g in gates:
        r = by_name.get(g.name)
        if isinstance(r, Mapping) and r.get("verdict") == g.verdict.value:
            detail = r.get("detail") if isinstance(r.get("detail"), str) else ""
            at = r.get("evaluated_at") if isinstance(r.get("evaluated_at"), str) else None
            g = replace(g, detail=_short(detail), evaluated_at=parse_time(at) if at else None)
        out.append(g)
    return out


@dataclass(frozen=True, slots=True)
class Publication:
    """A commit of a publication branch: when the served artifact changed, from what."""

    sha: str
    time: str
    author: str
    source: str
    branch: str

    def as_dict(self) -> dict[str, Any]:
        return {"sha": self.sha, "time": self.time, "author": self.author,
                "source_commit": self.source, "branch": self.branch}


@dataclass(frozen=True, slots=True)
class Event:
    """One line of an incident's timeline. ``label`` is this module's own words; ``who``,
    ``detail`` and the gates come from commits (escape them where they are shown)."""

    time: str | None
    kind: str
    label: str
    sha: str | None
    who: str = ""
    detail: str = ""
    before: float | None = None
    after: float | None = None
    gates: tuple[GateResult, ...] = ()
    marks: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"time": self.time, "kind": self.kind, "label": self.label, "sha": self.sha,
                "who": self.who, "detail": self.detail, "from": _num(self.before),
                "to": _num(self.after), "gates": [gate_dict(g) for g in self.gates],
                "marks": list(self.marks)}


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    acts: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "acts": list(self.acts)}


@dataclass(frozen=True, slots=True)
class Incident:
    flag: str
    number: int  # 1 for the flag's first rollback in the history, 2 for the next...
    rollback: Event
    automatic: bool
    requested_by: str | None
    reason: str
    run_started: Event | None
    exposure_began: Event | None
    first_failure: Event | None
    published: Publication | None
    published_note: str
    peak_percentage: float
    peak_since: str | None
    peak_seconds: float | None
    exposed_seconds: float | None
    failure_to_rollback_seconds: float | None
    rollback_to_published_seconds: float | None
    failure_to_published_seconds: float | None
    users: int | None
    users_at_peak: int | None
    timeline: tuple[Event, ...]
    actors: tuple[Actor, ...]
    report_path: str
    notes: tuple[str, ...] = field(default=())
    #: The rollback commit is the runner's own (``last_change.runner_commit_doubts``); False:
    #: a commit claiming to be (a person's, with forged trailers, or one moved or edited),
    #: listed but never reported as the runner's rollback.
    verified: bool = True

    @property
    def date(self) -> str:
        return (self.rollback.time or "0000-00-00")[:10]

    def as_dict(self) -> dict[str, Any]:
        def ev(e: Event | None) -> dict[str, Any] | None:
            return None if e is None else e.as_dict()

        return {
            "flag": self.flag, "number": self.number, "date": self.date,
            "rollback": {**self.rollback.as_dict(), "automatic": self.automatic,
                         "requested_by": self.requested_by, "reason": self.reason,
                         "verified": self.verified},
            "run_started": ev(self.run_started),
            "exposure": {"began": ev(self.exposure_began),
                         "peak_percentage": _num(self.peak_percentage),
                         "peak_since": self.peak_since, "peak_seconds": _num(self.peak_seconds),
                         "exposed_seconds": _num(self.exposed_seconds), "users": self.users,
                         "users_at_peak": self.users_at_peak},
            "first_failure": ev(self.first_failure),
            "published": None if self.published is None else self.published.as_dict(),
            "published_note": self.published_note,
            "time_to_rollback": {
                "failure_to_rollback_seconds": _num(self.failure_to_rollback_seconds),
                "rollback_to_published_seconds": _num(self.rollback_to_published_seconds),
                "failure_to_published_seconds": _num(self.failure_to_published_seconds)},
            "timeline": [e.as_dict() for e in self.timeline],
            "actors": [a.as_dict() for a in self.actors],
            "report_path": self.report_path, "notes": list(self.notes),
        }


_HUMAN = {"flag-add": "flag file added", "flag-edit": "flag file edited",
          "flag-remove": "flag file removed", "plan-add": "plan added", "plan-edit": "plan edited",
          "plan-remove": "plan removed", "state-add": "state file added by a person",
          "state-edit": "state file edited by a person",
          "state-remove": "state file removed by a person", "add": "files added",
          "edit": "files edited"}


def _label(e: Entry) -> str:
    # "?" for an unknown percentage: as the labels in the JSON reports have always said
    a, frm, to = e.action, percent(e.before, "?"), percent(e.after, "?")
    if a == "start":
        return f"rollout started at {to}"
    if a in ("advance", "complete"):
        return f"step {frm} → {to}" + (" (completed)" if a == "complete" else "")
    if a == "rollback":
        return (f"rolled back {frm} → {to} on request" if e.requested_by
                else f"rolled back {frm} → {to} automatically")
    if a == "observe":
        return f"evaluation recorded at {to}"
    if a == "pause":
        return f"paused at {to}" + (" on request" if e.requested_by else "")
    if a == "resume":
        return f"resumed at {to}"
    if a == "retry":
        return f"retried from {to}"
    if a == "hold":
        return f"held at {to} after a revert"
    if a == "replan":
        return f"plan changed at {to}; analysis restarted"
    if a == "cleanup":
        return "orphaned state removed"
    if a == "revert":
        moved = f" ({frm} → {to})" if e.before is not None or e.after is not None else ""
        return f"git revert{moved}"
    return _HUMAN.get(a, "commit")


def _ident(e: Entry) -> str:
    return f"{e.author} <{e.email}>" if e.email else e.author


def _who(e: Entry) -> str:
    return _short(e.requested_by or (e.reverted_by_person if e.action == "hold" else None)
                  or (e.author if e.runner else _ident(e)), 200)


def _event(e: Entry, states: Mapping[str, Mapping[str, Any]], marks: tuple[str, ...] = ()
           ) -> Event:
    detail = e.reason if e.runner else e.subject
    if e.action == "revert" and e.reverts:
        detail = f"reverts {e.reverts[:12]}: {e.subject}"
    return Event(utc_iso_seconds(parse_time(e.time)), e.action or "commit", _label(e), e.sha, _who(e),
                 _short(detail), e.before, e.after,
                 tuple(gates_of(e, states.get(e.sha))[:GATES_LIMIT]) if e.runner else (),
                 marks)


def _seconds(a: str | None, b: str | None) -> float | None:
    """``b - a`` in seconds; None when either is unknown or the clocks disagree (b < a)."""
    ta, tb = parse_time(a) if a else None, parse_time(b) if b else None
    if ta is None or tb is None or tb < ta:
        return None
    return (tb - ta).total_seconds()


def report_name(flag: str, date: str, nth_that_day: int) -> str:
    """``docs/incidents/<date>-<flag>.md``; a second rollback of the flag that day ``-2``."""
    suffix = f"-{nth_that_day}" if nth_that_day > 1 else ""
    return f"docs/incidents/{date}-{flag}{suffix}.md"


def build_incidents(flag: str, entries: Sequence[Entry],
                    states: Mapping[str, Mapping[str, Any]] | None = None,
                    published: Mapping[str, Publication | None] | None = None,
                    published_branch: str | None = None, users: int | None = None,
                    since: datetime | None = None,
                    doubts: Mapping[str, str] | None = None) -> list[Incident]:
    """Every rollback of ``flag`` in ``entries`` (history order: newest first) at or after
    ``since``, newest first. ``published`` maps a rollback commit to the first publication
    serving it (None: none yet) when ``published_branch`` was read; ``doubts`` says why a
    rollback commit may not be the runner's own (a note in its report)."""
    states = states or {}
    doubts = doubts or {}
    published = published or {}
    chron = list(reversed(entries))
    rollbacks = [i for i, e in enumerate(chron) if e.runner and e.action == "rollback"]
    incidents: list[Incident] = []
    per_day: dict[str, int] = {}
    for number, r in enumerate(rollbacks, 1):
        rb = chron[r]
        rb_time = utc_iso_seconds(parse_time(rb.time))
        date = (rb_time or "0000-00-00")[:10]
        per_day[date] = per_day.get(date, 0) + 1
        nth = per_day[date]
        t = parse_time(rb.time)
        if since is not None and (t is None or t < since):
            continue
        incidents.append(_incident(flag, number, chron, r, states, published, published_branch,
                                   users, report_name(flag, date, nth), doubts.get(rb.sha)))
    incidents.reverse()
    return incidents


def _run_bounds(chron: Sequence[Entry], r: int) -> tuple[int | None, int, int, bool]:
    """Around the rollback ``chron[r]``: the run's ``start``/``retry`` (None: before the
    history), where its failing evaluations count from (the last reset), the end of what
    followed (the next run or rollback, or the history's end) and whether a new run closes it."""
    def last_before(actions: frozenset[str] | tuple[str, ...]) -> int | None:
        return next((j for j in range(r - 1, -1, -1) if chron[j].runner
                     and chron[j].action in actions), None)

    start = last_before(RUN_STARTS)
    analysis = last_before(RESETS)
    counted_from = analysis if analysis is not None else (start if start is not None else 0)
    end = next((j for j in range(r + 1, len(chron)) if chron[j].runner
                and chron[j].action in (*RUN_STARTS, "rollback")), len(chron))
    closing = end < len(chron) and chron[end].action in RUN_STARTS
    return start, counted_from, end, closing


def _first_failure(chron: Sequence[Entry], counted_from: int, r: int) -> int | None:
    """The first runner commit from ``counted_from`` to the rollback with a failing
    blocking gate."""
    return next((j for j in range(counted_from, r + 1)
                 if chron[j].runner and any(map(failing, gates_of(chron[j])))), None)


def _exposure(chron: Sequence[Entry], first: int, r: int
              ) -> tuple[int | None, float, str | None, float | None]:
    """The share served along the run: when it first went above 0 % (an index), the peak,
    since when, and for how long until the rollback (None: unknown)."""
    rb = chron[r]
    began: int | None = None
    segments: list[tuple[float, str | None]] = []
    for j in range(first, r):
        e = chron[j]
        if (e.runner or e.action == "revert") and e.after is not None:
            if began is None and e.after > 0:
                began = j
            segments.append((e.after, utc_iso_seconds(parse_time(e.time))))
    rb_time = utc_iso_seconds(parse_time(rb.time))
    peak = max([p for p, _ in segments] + [rb.before or 0.0])
    peak_since = next((t for p, t in segments if p == peak), None) if peak > 0 else None
    peak_seconds: float | None = 0.0 if peak > 0 else None
    for k, (p, t) in enumerate(segments):
        if p != peak or peak_seconds is None:
            continue
        nxt = segments[k + 1][1] if k + 1 < len(segments) else rb_time
        d = _seconds(t, nxt)
        peak_seconds = None if d is None else peak_seconds + d
    return began, peak, peak_since, peak_seconds


def _with_publication(timeline: list[Event], after: int, pub: Publication | None) -> None:
    """The publication that first served the rollback, placed in ``timeline`` by its time
    after position ``after`` (the rollback's)."""
    if pub is None:
        return
    pos = next((k for k, e in enumerate(timeline)
                if k > after and e.time and e.time > pub.time), len(timeline))
    timeline.insert(pos, Event(pub.time, "published", "rollback published", pub.sha,
                               _short(pub.author, 200), f"branch {pub.branch}",
                               marks=("published",)))


def _published_note(branch: str | None, pub: Publication | None) -> str:
    if branch is None:
        return ("not recorded: a dir: or file: publication leaves no trace in git (give "
                "--published-branch NAME when the artifact is published to branch:NAME)")
    if pub is None:
        return f"not yet: no commit of branch {branch} serves this rollback"
    return f"branch {branch}"


def _notes(doubt: str | None, rb: Entry, failure_found: bool, timeline: Sequence[Event],
           pub: Publication | None, rb_time: str | None) -> tuple[str, ...]:
    notes = [] if doubt is None else [_short(doubt)]
    if not failure_found:
        notes.append("no failing evaluation recorded before this rollback" +
                     (": a person rolled it back" if rb.requested_by else ""))
    times = [e.time for e in timeline if e.kind != "published" and e.time]
    if times != sorted(times) or (pub is not None and rb_time and pub.time < rb_time):
        notes.append("commit dates out of history order (clocks disagree): durations "
                     "computed from them may be wrong or unknown")
    return tuple(notes)


def _incident(flag: str, number: int, chron: list[Entry], r: int,
              states: Mapping[str, Mapping[str, Any]],
              published: Mapping[str, Publication | None], branch: str | None,
              users: int | None, path: str, doubt: str | None = None) -> Incident:
    """The report of the rollback ``chron[r]``: the run it ends, what followed, and the
    times and shares measured on them."""
    rb = chron[r]
    start, counted_from, end, closing = _run_bounds(chron, r)
    first = start if start is not None else 0
    fail_at = _first_failure(chron, counted_from, r)
    began, peak, peak_since, peak_seconds = _exposure(chron, first, r)
    rb_time = utc_iso_seconds(parse_time(rb.time))
    marks = ((began, "exposure began"), (fail_at, "first failing evaluation"), (r, "rollback"))

    def mark(j: int) -> tuple[str, ...]:
        # in this order when one commit is several of them
        return tuple(m for k, m in marks if k == j)

    indices = list(range(first, end)) + ([end] if closing else [])
    timeline = [_event(chron[j], states, mark(j)) for j in indices]
    pub = published.get(rb.sha)
    _with_publication(timeline, indices.index(r), pub)
    fail_ev = timeline[indices.index(fail_at)] if fail_at is not None else None
    rb_ev = timeline[indices.index(r)]
    began_ev = timeline[indices.index(began)] if began is not None else None
    return Incident(
        flag=flag, number=number, rollback=rb_ev,
        automatic=not rb.requested_by and doubt is None, verified=doubt is None,
        requested_by=_short(rb.requested_by, 200) or None, reason=_short(rb.reason),
        run_started=timeline[0] if start is not None else None, exposure_began=began_ev,
        first_failure=fail_ev, published=pub, published_note=_published_note(branch, pub),
        peak_percentage=peak, peak_since=peak_since, peak_seconds=peak_seconds,
        exposed_seconds=_seconds(began_ev.time, rb_time) if began_ev else None,
        failure_to_rollback_seconds=_seconds(fail_ev.time, rb_time) if fail_ev else None,
        rollback_to_published_seconds=_seconds(rb_time, pub.time) if pub else None,
        failure_to_published_seconds=(_seconds(fail_ev.time, pub.time)
                                      if fail_ev and pub else None),
        users=users, users_at_peak=None if users is None else round(users * peak / 100),
        timeline=tuple(timeline),
        actors=tuple(_actors([chron[j] for j in indices], pub,
                             unverified=rb.sha if doubt is not None else None)),
        report_path=path, notes=_notes(doubt, rb, fail_at is not None, timeline, pub, rb_time))


def _actors(entries: Sequence[Entry], pub: Publication | None,
            unverified: str | None = None) -> list[Actor]:
    """Who acted; the rollback commit ``unverified`` (not the runner's own, whatever its
    trailers say) is its author's and committer's act, never the runner's."""
    acts: dict[str, list[str]] = {}

    def add(name: str | None, act: str) -> None:
        if not name:
            return
        key = _short(name, 200)
        have = acts.setdefault(key, [])
        if act not in have:
            have.append(act)

    for e in entries:
        if e.sha == unverified:
            add(_ident(e), "committed a rollback not verified as the runner's")
        elif e.runner:
            add(e.author, "runner commits" if not e.requested_by else "committed requests")
            if e.requested_by:
                add(e.requested_by, f"requested the {e.action}")
        elif e.action == "revert":
            add(_ident(e), "reverted " + (e.reverts or "")[:7])
        else:
            add(_ident(e), _HUMAN.get(e.action, "committed"))
    if pub is not None:
        add(pub.author, "published the rollback")
    return [Actor(name, tuple(a)) for name, a in acts.items()]
