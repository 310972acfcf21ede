"""What ``rollout simulate`` prints: a replay's looks as text lines or one JSON document."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runner.load.durations import format_duration
from runner.model import GateResult
from runner.percent import pct
from runner.reconcile.simulate import Look, Replay
from runner.timefmt import utc_iso

#: What every output says about approvals (``runner.reconcile.simulate``).
APPROVALS = ("steps that need a person's approval are simulated as approved as soon as they "
             "are due")


@dataclass(frozen=True, slots=True)
class Setting:
    """What was replayed over: the source as people read it, the range and the interval."""

    source: str
    since: datetime
    until: datetime
    every: float  # seconds
    #: The plan's file, as the repository names it.
    plan_file: str = ""


def _percentage(look: Look) -> str:
    d = look.decision
    before = d.before.current_percentage if d.before is not None else None
    after = d.after.current_percentage if d.after is not None else None
    if after is None:
        return "-"
    if before is None or before == after:
        return f"{pct(after)}%"
    return f"{pct(before)}% -> {pct(after)}%"


def _number(x: float | None) -> float | int | None:
    if x is None or not math.isfinite(x):
        return None
    return int(x) if float(x).is_integer() else x


def _gate(g: GateResult) -> dict[str, Any]:
    out: dict[str, Any] = {"name": g.name, "verdict": g.verdict.value, "value": _number(g.value),
                           "threshold": g.threshold, "dry_run": g.dry_run, "detail": g.detail}
    if g.cohorts is not None:
        out["cohorts"] = {k: (_number(v) if isinstance(v, float) else v)
                          for k, v in dataclasses.asdict(g.cohorts).items()}
    return out


def _summary(replay: Replay, total: int) -> str:
    """The last line: how the replay ended, and when."""
    looks = replay.looks
    start = replay.started_at
    plan = replay.plan
    if not looks:
        return "no look in the range"
    last = looks[-1]
    after = (f", {format_duration((last.at - start).total_seconds())} after the start"
             if start is not None and last.at > start else "")
    where = f" (look {len(looks)} of {total})"
    state = replay.final
    if replay.outcome == "completed":
        return f"outcome: completed at {utc_iso(last.at)}{after}{where}"
    if replay.outcome == "rolled_back":
        return f"outcome: rolled back at {utc_iso(last.at)}{after}{where}"
    if replay.outcome == "paused":
        return (f"outcome: paused at {utc_iso(last.at)}{after}{where}; a person would have "
                "to resume it")
    if state is None:
        return f"outcome: never started by {utc_iso(last.at)}: {last.decision.reason}"
    return (f"outcome: still running at {utc_iso(last.at)}, the end of the range: step "
            f"{state.step + 1} of {len(plan.steps)} at {pct(state.current_percentage)}%")


def simulate_json(replay: Replay, setting: Setting, total: int) -> dict[str, Any]:
    """The replay as one JSON document (every look, with its gate results)."""
    where = ({"environment": replay.plan.environment}
             if replay.plan.environment is not None else {})
    return {
        "flag": replay.plan.flag,
        **where,
        "plan": replay.plan.name,
        "plan_file": setting.plan_file,
        "source": setting.source,
        "since": utc_iso(setting.since),
        "until": utc_iso(setting.until),
        "every": format_duration(setting.every),
        "looks_in_range": total,
        "outcome": replay.outcome,
        "started_at": utc_iso(replay.started_at),
        "ended_at": utc_iso(replay.ended_at),
        "completed_at": utc_iso(replay.ended_at) if replay.outcome == "completed" else None,
        "summary": _summary(replay, total),
        "approvals": APPROVALS,
        "written": False,
        "looks": [{
            "at": utc_iso(look.at),
            "action": look.kind,
            "from_percentage": _number(look.decision.from_percentage),
            "to_percentage": _number(look.decision.to_percentage),
            "step": look.decision.after.step + 1 if look.decision.after is not None else None,
            "reason": look.decision.reason,
            "approval_assumed": look.assumed_approval is not None,
            "gates": [_gate(g) for g in look.decision.gates],
        } for look in replay.looks],
    }


def _groups(looks: tuple[Look, ...]) -> list[list[Look]]:
    """Looks as printed: each change alone; holds in a row at the same percentage and for
    the same kind of reason (the words before its first colon) together."""
    out: list[list[Look]] = []
    for look in looks:
        prev = out[-1][-1] if out else None
        same = (prev is not None and look.kind == prev.kind == "hold"
                and _percentage(look) == _percentage(prev)
                and look.decision.reason.split(":")[0] == prev.decision.reason.split(":")[0])
        if same:
            out[-1].append(look)
        else:
            out.append([look])
    return out


def simulate_text(replay: Replay, setting: Setting, total: int) -> list[str]:
    """The replay for people: a header, one line per change (holds in a row as one), the end."""
    plan = replay.plan
    named = f" ({setting.plan_file})" if setting.plan_file else ""
    where = f"@{plan.environment}" if plan.environment is not None else ""
    lines = [f"rollout simulate {plan.flag}{where}{named}: {len(plan.steps)} steps "
             f"({', '.join(pct(p) + '%' for p in plan.percentages)}) over {setting.source}",
             f"from {utc_iso(setting.since)} to {utc_iso(setting.until)}, a look every "
             f"{format_duration(setting.every)} ({total} looks); nothing is written"]
    for group in _groups(replay.looks):
        first, last = group[0], group[-1]
        kind = first.kind if len(group) == 1 else f"{first.kind} x{len(group)}"
        reason = last.decision.reason
        if len(group) > 1:
            reason += f" (to {utc_iso(last.at)})"
        if first.assumed_approval is not None:
            reason += f" [approval of step {first.assumed_approval + 1} assumed]"
        lines.append(f"{utc_iso(first.at)}  {kind:<9} {_percentage(first):<12} {reason}")
    if any(look.assumed_approval is not None for look in replay.looks):
        lines.append(f"note: {APPROVALS}")
    lines.append(_summary(replay, total))
    return lines


@dataclass(frozen=True, slots=True)
class Stage:
    """One environment of a pipeline's replay: its replay over its looks, or why it never
    started (``replay`` None)."""

    environment: str
    replay: Replay | None
    setting: Setting | None
    total: int
    #: When and why it started where it did (after the previous environment and the soak),
    #: or why it never started.
    note: str | None = None


def _held_by_freeze(replay: Replay, every: float) -> float:
    """About how long the replay's looks were held by a freeze window (looks x interval)."""
    return sum(every for look in replay.looks if "frozen until " in look.decision.reason
               and look.kind in ("hold", "pending"))


def pipeline_outcome(stages: list[Stage]) -> dict[str, Any]:
    """How the whole pipeline ended: ``completed`` (every environment), or where it stopped
    (``rolled_back``, ``paused``, ``progressing``, ``pending`` in ``stopped_in``)."""
    ran = [st for st in stages if st.replay is not None]
    start = next((st.replay.started_at for st in ran if st.replay is not None), None)
    stop = next((st for st in stages if st.replay is None or st.replay.outcome != "completed"),
                None)
    last = ran[-1].replay if ran else None
    end = last.ended_at if last is not None and stop is None else (
        stop.replay.ended_at if stop is not None and stop.replay is not None else None)
    soaks = sum(st.replay.plan.promote_after for st in ran[1:] if st.replay is not None)
    frozen = sum(_held_by_freeze(st.replay, st.setting.every) for st in ran
                 if st.replay is not None and st.setting is not None)
    return {"outcome": "completed" if stop is None else
            (stop.replay.outcome if stop.replay is not None else "pending"),
            "stopped_in": stop.environment if stop is not None else None,
            "started_at": utc_iso(start), "ended_at": utc_iso(end),
            "seconds": (end - start).total_seconds() if start and end else None,
            "soak_seconds": soaks, "frozen_seconds": frozen}


def _pipeline_summary(stages: list[Stage], flag: str) -> str:
    o = pipeline_outcome(stages)
    names = [st.environment for st in stages]
    extra = [f"soaks {format_duration(o['soak_seconds'])}"] if o["soak_seconds"] else []
    if o["frozen_seconds"]:
        extra.append(f"held by freezes about {format_duration(o['frozen_seconds'])}")
    incl = f" ({', '.join(extra)} included)" if extra else ""
    took = (f", {format_duration(o['seconds'])} after the start in {names[0]}{incl}"
            if o["seconds"] else "")
    if o["outcome"] == "completed":
        return f"pipeline: completed in {names[-1]} at {o['ended_at']}{took}"
    where = o["stopped_in"]
    later = names[names.index(where) + 1:]
    never = f"; {', '.join(later)} never start{'s' * (len(later) == 1)}" if later else ""
    if o["outcome"] == "rolled_back":
        return (f"pipeline: stopped in {where}: rolled back at {o['ended_at']}{took}; the plan "
                f"version is rejected{never} (until `rollout retry {flag} --env {where}` or a "
                "new plan version)")
    if o["outcome"] == "paused":
        return (f"pipeline: stopped in {where}: paused at {o['ended_at']}{took}; a person "
                f"would have to resume it{never}")
    if o["outcome"] == "progressing":
        return f"pipeline: still running in {where} at the end of its range{never}"
    stage = next(st for st in stages if st.environment == where)
    return f"pipeline: {where} never started: {stage.note}{never}"


def pipeline_text(stages: list[Stage], flag: str, plan_file: str) -> list[str]:
    """A pipeline's replay for people: each environment's replay in promotion order, then
    the whole pipeline's outcome in one line."""
    named = f" ({plan_file})" if plan_file else ""
    lines = [f"rollout simulate {flag}{named}: the pipeline "
             f"{' → '.join(st.environment for st in stages)}; nothing is written"]
    for st in stages:
        if st.note:
            lines.append(f"{flag}@{st.environment}: {st.note}")
        if st.replay is not None and st.setting is not None:
            lines.extend(simulate_text(st.replay, st.setting, st.total))
    lines.append(_pipeline_summary(stages, flag))
    return lines


def pipeline_json(stages: list[Stage], flag: str, plan_file: str) -> dict[str, Any]:
    """A pipeline's replay as one JSON document: each environment's replay (as
    :func:`simulate_json`, or never started with why), and the whole."""
    envs: list[dict[str, Any]] = []
    for st in stages:
        if st.replay is not None and st.setting is not None:
            envs.append({**simulate_json(st.replay, st.setting, st.total), "note": st.note})
        else:
            envs.append({"environment": st.environment, "outcome": "not_started",
                         "note": st.note, "looks": []})
    return {"flag": flag, "plan_file": plan_file,
            "pipeline": [st.environment for st in stages], **pipeline_outcome(stages),
            "summary": _pipeline_summary(stages, flag), "approvals": APPROVALS,
            "written": False, "environments": envs}


__all__ = ["APPROVALS", "Setting", "Stage", "pipeline_json", "pipeline_outcome",
           "pipeline_text", "simulate_json", "simulate_text"]
