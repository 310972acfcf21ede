"""``rollout status --format markdown``: the dashboard of every rollout, for the job summary
of each advance run and for people.

At a glance, each phase has its own icon, word and styling (a rolled back rollout at 0 %
never looks like a pending one at 0 %), every number says what it is, and each active
rollout (progressing, paused or rolled back) has a timeline: what happened in its current
run, from git history (``runner.review.audit.current_runs``: one bounded ``git log``),
beside what the plan still has to do, with the earliest expected times.

Input: the rows ``rollout status`` computes (``runner.reconcile.view.record``) and, per
active rollout, ``timeline(...)``'s happened/planned lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from runner.git import GitError, is_repository
from runner.model import Phase
from runner.percent import percent
from runner.review.audit import current_runs
from runner.review.render import mermaid_label, render
from runner.review.schedule import timeline as plan_timeline
from runner.timefmt import parse_iso, shown_time, utc_iso_seconds

MARKER = "<!-- rollout-status -->"

#: phase -> (icon, word, Markdown style of the word). Every one differs in all three.
PHASES: dict[str, tuple[str, str, str]] = {
    "pending": ("⏳", "pending", "_{}_"),
    "progressing": ("🚀", "progressing", "**{}**"),
    "paused": ("⏸️", "PAUSED", "***{}***"),
    "completed": ("✅", "completed", "{}"),
    "rolled_back": ("⛔", "ROLLED BACK", "**~~{}~~**"),
}
UNKNOWN_PHASE = ("❓", "unknown phase", "`{}`")
#: The phases that get a timeline, the most urgent first.
ACTIVE = ("rolled_back", "paused", "progressing")
#: At most this many rollouts drawn with their timeline (the table has them all).
DETAILS_LIMIT = 20
#: At most this many bars in the chart (active rollouts first): more cannot be read.
CHART_LIMIT = 30

PHASE_ICONS = {p: v[0] for p, v in PHASES.items()}

VERDICTS = {"pass": "✅", "fail": "❌", "inconclusive": "❔", "error": "⚠️"}


def phase_label(phase: str) -> str:
    """``🚀 **progressing**``: the icon, the word and its styling (all of them ours)."""
    icon, word, style = PHASES.get(phase, UNKNOWN_PHASE)
    return f"{icon} {style.format(word)}"


def _serving(pct: float, phase: str, width: int = 10) -> str:
    """The share served, as a bar whose look says the phase too (no bar at all for a
    rollout that has not started or was rolled back: 0 % means different things)."""
    p = percent(pct)
    if phase == "pending":
        return f"{p}, not started"
    if phase == "rolled_back":
        return f"{p}, rolled back"
    filled = round(max(0.0, min(100.0, pct)) / 100 * width)
    full = "▓" if phase == "paused" else "█"
    return f"{full * filled}{'░' * (width - filled)} {p}" + (", paused" if phase == "paused" else "")


def _num(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    return f"{v:g}"


def _gate(g: Mapping[str, Any]) -> dict[str, Any]:
    verdict = str(g.get("verdict", "?"))
    threshold = str(g.get("threshold") or "")
    text = f"{g.get('name', '?')} = {_num(g.get('value'))}"
    text += f" ({threshold})" if threshold else " (no threshold)"
    if g.get("dry_run"):
        text += " dry run"
    cohorts = g.get("cohorts")
    return {"name": str(g.get("name", "?")), "verdict": verdict,
            "icon": VERDICTS.get(verdict, "⚠️"), "text": text,
            "cohorts": _cohorts(cohorts) if isinstance(cohorts, Mapping) else None}


def _cohorts(c: Mapping[str, Any]) -> dict[str, str]:
    """A comparison gate's evidence, in words and numbers (all computed elsewhere)."""
    def rate(key: str, n_key: str) -> str:
        r, n = c.get(key), c.get(n_key)
        return f"{_num(r)}% of {_num(n)} requests" if r is not None else f"no rate ({_num(n)} requests)"

    low, high = c.get("low"), c.get("high")
    conf = c.get("confidence")
    level = f"{_num(conf * 100 if isinstance(conf, int | float) and conf <= 1 else conf)}%"
    diff = (f"[{_num(low)}, {_num(high)}] points at {level} confidence"
            if low is not None and high is not None else "too few requests for an interval")
    return {"treatment": rate("treatment_rate", "treatment_requests"),
            "control": rate("control_rate", "control_requests"),
            "difference": diff, "margin": f"+{_num(c.get('margin'))} points"}


def _time(iso: Any) -> str | None:
    return None if not iso else shown_time(str(iso))


def _row(row: Mapping[str, Any]) -> dict[str, Any]:
    phase = str(row.get("phase", ""))
    pct = float(row.get("current_percentage") or 0)
    steps = row.get("steps")
    count = len(steps) if isinstance(steps, Sequence) and not isinstance(steps, str) else steps
    step = row.get("step")
    started = row.get("step_started_at") is not None or phase not in ("pending",)
    extra = []
    if row.get("baking") or row.get("bake_ends_at"):
        end = _time(row.get("bake_ends_at"))
        extra.append(f"baking at 100% until {end} UTC" if end else "baking at 100%")
    if row.get("awaiting_approval"):
        extra.append("awaiting approval")
    if row.get("plan_changed"):
        extra.append("plan changed since this run started")
    held = str(row.get("kill_switch") or "")
    if held:
        extra.append(f"held off by the {held}")
    return {
        "flag": str(row["flag"]) + (f"@{row['environment']}" if row.get("environment") else ""),
        "phase": phase,
        "label": phase_label(phase),
        "word": PHASES.get(phase, UNKNOWN_PHASE)[1],
        "pct": pct,
        # the kill switch serves every user the default, whatever the state records
        "serving": (f"0% (kill switch; {_serving(pct, phase)} once lifted)" if held
                    else _serving(pct, phase)),
        "step": f"step {int(step) + 1} of {count}" if started and step is not None and count
        else (f"{count} steps planned" if count else "no plan"),
        "next": _time(row.get("next_step_at")),
        "gates": [_gate(g) for g in row.get("last_gates") or ()],
        "reason": str(row.get("reason") or ""),
        "extra": extra,
        "timeline": None,
    }


def status_markdown(rows: Sequence[Mapping[str, Any]],
                    timelines: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """Markdown for rows with flag, phase, current_percentage, step, steps (a list of
    percentages or their number), step_started_at, next_step_at, last_gates, reason (and,
    when present, baking/bake_ends_at/awaiting_approval); ``timelines``: flag -> the
    ``timeline`` of an active rollout."""
    view = [_row(r) for r in rows]
    timelines = timelines or {}
    for v in view:
        t = timelines.get(v["flag"])
        if t is not None:
            v["timeline"] = _chart(v["flag"], t)
    counts: dict[str, int] = {}
    for v in view:
        counts[v["phase"]] = counts.get(v["phase"], 0) + 1
    summary = []
    for p in ("rolled_back", "paused", "progressing", "pending", "completed"):
        if counts.get(p):
            summary.append(f"{counts[p]} {phase_label(p)}")
    others = sum(n for p, n in counts.items() if p not in PHASES)
    if others:
        summary.append(f"{others} {phase_label('?')}")
    details = [v for p in ACTIVE for v in view if v["phase"] == p]
    chart = [v for v in view if v["phase"] in ACTIVE][:CHART_LIMIT]
    chart += [v for v in view if v["phase"] not in ACTIVE][:CHART_LIMIT - len(chart)]
    order = {id(v): i for i, v in enumerate(view)}
    chart.sort(key=lambda v: order[id(v)])
    killed = sorted({str(r["kill_switch"]) for r in rows if r.get("kill_switch")})
    # a halt or freeze holds every rollout shown: said once, at the top
    stopped = _stopped(rows)
    return render("status.md.j2", rows=view, marker=MARKER, summary=summary, chart=chart,
                  killed=killed, stopped=stopped,
                  attention=[v for v in details if v["phase"] != "progressing"],
                  details=details[:DETAILS_LIMIT],
                  hidden=max(0, len(details) - DETAILS_LIMIT))


def _stopped(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each halt and freeze holding the rollouts shown, in words, once; with environments,
    led by the environments it holds (``production: halted by …``)."""
    held: dict[str, list[str]] = {}
    for r in rows:
        for k in ("halted", "frozen"):
            if isinstance(r.get(k), Mapping):
                envs = held.setdefault(str(r[k]["text"]), [])
                if r.get("environment") and r["environment"] not in envs:
                    envs.append(str(r["environment"]))
    return sorted(f"{', '.join(envs)}: {text}" if envs else text
                  for text, envs in held.items())


# --- timelines -------------------------------------------------------------------------


def _utc(iso: str) -> datetime:
    return parse_iso(iso).astimezone(UTC)




#: action -> (what it did, in words; drawn as a marker on the chart, with Mermaid tags)
_MARKERS = {"rollback": "crit", "hold": "crit", "revert": "crit", "pause": "active"}


def happened(entries: Sequence[Any]) -> list[dict[str, Any]]:
    """``audit.Entry`` objects of one run (oldest first) as plain records."""
    out = []
    for e in entries:
        out.append({
            "time": utc_iso_seconds(_utc(e.time)), "action": e.action or "edit",
            "from": e.before, "to": e.after, "phase": e.phase,
            "by": e.requested_by or e.reverted_by_person or e.author,
            "sha": e.sha[:7], "reason": e.reason or e.subject,
            "reverted": bool(e.reverted_by),
        })
    return out


def planned(plan: Any, state: Any, now: datetime) -> list[dict[str, Any]]:
    """The plan's remaining steps with their earliest start, for a progressing rollout:
    ``runner.review.schedule.timeline`` from the current step, never earlier than ``now``
    (a step also needs an advance run after its wait)."""
    if plan is None or state is None or state.phase is not Phase.PROGRESSING:
        return []
    steps = [s for s in plan_timeline(plan, state, now)["steps"] if s["index"] > state.step]
    if not steps:
        return []
    late = max(timedelta(0), now - _utc(steps[0]["start"]))
    return [{"index": s["index"], "percentage": s["percentage"], "wait": s["wait"],
             "start": utc_iso_seconds(_utc(s["start"]) + late), "end": utc_iso_seconds(_utc(s["end"]) + late)}
            for s in steps]


def timelines(root: Path, repo: Any, rows: Sequence[Mapping[str, Any]], now: datetime,
              limit: int = DETAILS_LIMIT) -> dict[str, dict[str, Any]]:
    """For the first ``limit`` active rollouts (most urgent first) what happened in their
    current run (one bounded ``git log``) and what is planned."""
    active = [r for p in ACTIVE for r in rows if r.get("phase") == p][:limit]
    runs = {str(r["flag"]): (str(r["plan"]), r.get("started_at")) for r in active}
    missing = None
    found: dict[str, list[Any]] = {}
    if not is_repository(root):
        missing = "no git history here (not a git repository)"
    else:
        try:
            found = current_runs(root, runs, repo.config.rollouts_dir)
        except GitError as e:  # an empty repository, a broken object: the rest still shows
            missing = f"the git history cannot be read: {e}"
    return {flag: {"happened": happened(found.get(flag, ())), "missing": missing,
                   "planned": planned(repo.plans.get(flag), repo.states.get(flag), now),
                   "now": utc_iso_seconds(now)}
            for flag in runs}


def _chart(flag: str, t: Mapping[str, Any]) -> dict[str, Any]:
    """The timeline's table rows and its Mermaid gantt tasks (every label ours or passed
    through ``mermaid_label``; every date ours)."""
    done = list(t.get("happened") or ())
    todo = list(t.get("planned") or ())
    now = str(t.get("now") or (done[-1]["time"] if done else utc_iso_seconds(datetime.now(UTC))))
    tasks: list[dict[str, str]] = []
    for i, h in enumerate(done):
        nxt = done[i + 1]["time"] if i + 1 < len(done) else now
        if _utc(nxt) < _utc(h["time"]):
            nxt = h["time"]
        a = h["action"]
        if a in _MARKERS or a == "complete" or h["phase"] == "rolled_back":
            what = {"rollback": f"rollback {percent(h['from'])} to {percent(h['to'])}",
                    "hold": f"hold at {percent(h['to'])}", "revert": f"revert {h['sha']}",
                    "pause": f"paused at {percent(h['to'])}",
                    "complete": f"completed at {percent(h['to'])}"}.get(a, f"{a} {percent(h['to'])}")
            tag = _MARKERS.get(a, "crit" if h["phase"] == "rolled_back" else "done")
            tasks.append({"section": "happened", "name": what,
                          "data": f"{tag}, milestone, h{i}, {shown_time(h['time'])}, 0d"})
        if h["to"] is not None and h["phase"] in ("progressing", "paused") and a != "revert":
            style = "active" if h["phase"] == "paused" else "done"
            word = "paused at" if h["phase"] == "paused" else "at"
            tasks.append({"section": "happened", "name": f"{word} {percent(h['to'])}",
                          "data": f"{style}, h{i}s, {shown_time(h['time'])}, "
                                  f"{shown_time(nxt)}"})
    for s in todo:
        last = s is todo[-1]
        pct = percent(float(s["percentage"]))
        if last:
            tasks.append({"section": "planned", "name": f"reach {pct}",
                          "data": f"milestone, p{s['index']}, {shown_time(s['start'])}, 0d"})
        else:
            tasks.append({"section": "planned", "name": f"at {pct}",
                          "data": f"p{s['index']}, {shown_time(s['start'])}, "
                                  f"{shown_time(s['end'])}"})
    times = [_utc(h["time"]) for h in done] + [_utc(s["end"]) for s in todo] + [_utc(now)]
    span = (max(times) - min(times)).total_seconds() if times else 0
    return {"happened": done, "planned": todo, "tasks": tasks, "missing": t.get("missing"),
            "label": mermaid_label(flag),
            "axis": "%m-%d %H:%M" if span > 86_400 else "%H:%M"}
