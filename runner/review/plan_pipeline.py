"""``rollout plan``'s pipeline: one plan's expected walk through the environments, soaks and freezes included.

Pure over the two loaded snapshots (only a repository with ``[tool.rollout.environments]``
reaches it): per environment the plan runs in, in promotion order, what the flag serves there
before and after the change (each snapshot's view of that environment,
:meth:`~runner.model.Repository.for_environment`), the plan's fields that environment
overrides and those the change edits, and the expected schedule: each step held its wait (or,
with ``traffic``, the time its evidence takes: :mod:`runner.review.plan_evidence`), the next
environment starting ``promote_after`` after the previous one completed, and every start,
advance and completion that falls in a freeze window held until it ends, as the runner holds
them (:mod:`runner.reconcile.freeze`). An approval is assumed given when due: the schedule is
the earliest. The risks of the pipeline: a last environment reached with no approval step and
no soak, and environments a plan skips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from runner.load.durations import format_duration
from runner.model import Repository, Risk, RolloutPlan, RolloutState
from runner.model.freeze import FreezeWindow
from runner.model.state import Phase
from runner.reconcile.freeze import frozen_until, windows_of
from runner.review.plan_evidence import about, plan_evidence
from runner.timefmt import utc_iso

#: The fields compared between an environment's plan and the plan as written.
Fields = Callable[[RolloutPlan], dict[str, Any]]
Changes = Callable[[dict[str, Any], dict[str, Any]], list[dict[str, Any]]]
Served = Callable[[Repository, str], float | int | None]


def _thawed(windows: Sequence[FreezeWindow], t: datetime, freezes: list[dict[str, Any]],
            what: str) -> datetime:
    """``t``, or the end of the freeze that holds it (recorded in ``freezes``, with what it
    holds): the runner moves nothing forward in a freeze window."""
    frozen = frozen_until(windows, t)
    if frozen is None:
        return t
    until, reason = frozen
    freezes.append({"start": utc_iso(t), "end": utc_iso(until), "reason": reason,
                    "holds": what, "seconds": (until - t).total_seconds()})
    return until


def _holds(plan: RolloutPlan, measured: float | None) -> tuple[list[float | None], bool]:
    """How long each step is expected to hold (its wait, the last step its bake; with
    ``traffic``, the time its evidence takes when longer), and whether evidence was used."""
    last = len(plan.steps) - 1
    holds: list[float | None] = [plan.step_wait(i) if i < last else (plan.bake or 0.0)
                                 for i in range(len(plan.steps))]
    evidence = plan_evidence(plan, measured)
    if not evidence or "steps" not in evidence:
        return holds, False
    for st in evidence["steps"]:
        holds[st["index"]] = st["seconds"]
    return holds, True


def schedule(plan: RolloutPlan, state: RolloutState | None, ready: datetime,
             windows: Sequence[FreezeWindow], measured: float | None) -> dict[str, Any]:
    """The expected schedule of ``plan`` in one environment from ``ready`` (the earliest
    moment it may start: the merge, ``start_at``, or the soak's end), or from where
    ``state`` is. ``complete_at`` None: a step never passes at the declared traffic."""
    holds, evidence = _holds(plan, measured)
    freezes: list[dict[str, Any]] = []
    first, t = 0, ready
    if plan.start_at is not None and plan.start_at > t:
        t = plan.start_at
    if state is not None and state.phase is Phase.PROGRESSING and state.step_started_at:
        first, t = state.step, state.step_started_at
    else:
        t = _thawed(windows, t, freezes, "start")
    started = t
    steps: list[dict[str, Any]] = []
    last = len(plan.steps) - 1
    for i in range(first, len(plan.steps)):
        hold = holds[i]
        end = None if hold is None else t + timedelta(seconds=hold)
        if end is not None:
            end = _thawed(windows, end, freezes, "completion" if i == last else "advance")
        steps.append({"index": i, "percentage": _number(plan.steps[i].percentage),
                      "hold": format_duration(hold) if hold is not None else None,
                      "expected": about(hold) if evidence and hold is not None else None,
                      "approval": plan.steps[i].approval, "bake": i == last and bool(plan.bake),
                      "start": utc_iso(t), "end": utc_iso(end)})
        if end is None:
            break
        t = end
    done = None if steps and steps[-1]["end"] is None else t
    return {"start": utc_iso(started), "complete_at": utc_iso(done),
            "seconds": None if done is None else (done - started).total_seconds(),
            "steps": steps, "freezes": freezes, "evidence": evidence}


def _number(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(v, 4)


def _state(state: RolloutState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {"phase": state.phase.value, "step": state.step,
            "current_percentage": _number(state.current_percentage), "reason": state.reason}


def _environment(key: str, top: RolloutPlan, bview: Repository, hview: Repository,
                 ready: datetime | None, upstream: bool, measured: float | None,
                 now: datetime, fields: Fields, changes: Changes, served: Served
                 ) -> dict[str, Any]:
    env = hview.environment
    assert env is not None
    plan = hview.plans[key]
    before_plan = bview.plans.get(key)
    state = hview.states.get(key)
    out: dict[str, Any] = {
        "environment": env, "plan": plan.name,
        "serving_before": served(bview, key) if key in bview.flags else None,
        "serving_after": served(hview, key),
        "promote_after": format_duration(plan.promote_after),
        "state": _state(state),
        "overrides": changes(fields(top), fields(plan)),
        "changes": changes(fields(before_plan), fields(plan)) if before_plan else [],
    }
    if state is not None and state.phase in (Phase.ROLLED_BACK, Phase.PAUSED):
        out["schedule"] = None  # nothing moves until a person's retry or resume
        return out
    if state is not None and state.phase is Phase.COMPLETED:
        done = state.completed_at or state.step_started_at or now
        out["schedule"] = {"start": None, "complete_at": utc_iso(done), "seconds": 0.0,
                           "steps": [], "freezes": [], "evidence": False, "soak": None}
        return out
    if ready is None:  # the environment before it has no schedule: neither has this one
        out["schedule"] = None
        return out
    soak = None
    start = ready
    if plan.promote_after and upstream:
        start = ready + timedelta(seconds=plan.promote_after)
        soak = {"start": utc_iso(ready), "end": utc_iso(start),
                "seconds": plan.promote_after}
    start = max(start, now)
    windows = windows_of(hview.config, env)
    out["schedule"] = {**schedule(plan, state, start, windows, measured), "soak": soak}
    return out


def pipeline(key: str, b: Repository, h: Repository, now: datetime, measured: float | None,
             fields: Fields, changes: Changes, served: Served) -> dict[str, Any] | None:
    """The pipeline of ``key``'s plan across ``h``'s environments (JSON-ready), or None in a
    repository that declares none. ``fields``/``changes``/``served``: ``rollout plan``'s own
    (:mod:`runner.review.plan`), passed in so both read a plan alike."""
    if not h.environments or key not in h.plans:
        return None
    top = h.plans[key]
    envs: list[dict[str, Any]] = []
    skipped: list[str] = []
    ready: datetime | None = max(now, top.start_at) if top.start_at else now
    first = True
    for hview in h.views():
        env = hview.environment
        assert env is not None
        if key not in hview.plans:
            skipped.append(env)
            continue
        try:
            bview = b.for_environment(env)
        except KeyError:  # the base did not declare it
            bview = Repository(b.config)
        entry = _environment(key, top, bview, hview, ready, not first, measured, now, fields,
                             changes, served)
        first = False
        envs.append(entry)
        sched = entry["schedule"]
        done = sched["complete_at"] if sched is not None else None
        ready = datetime.fromisoformat(done.replace("Z", "+00:00")) if done else None
    start = next((e["schedule"]["start"] for e in envs
                  if e["schedule"] is not None and e["schedule"]["start"]), None)
    end = envs[-1]["schedule"]["complete_at"] if envs and envs[-1]["schedule"] else None
    seconds = None
    if end is not None:
        seconds = (datetime.fromisoformat(end.replace("Z", "+00:00")) - now).total_seconds()
    frozen = sum(f["seconds"] for e in envs if e["schedule"] for f in e["schedule"]["freezes"])
    soaked = sum(e["schedule"]["soak"]["seconds"] for e in envs
                 if e["schedule"] and e["schedule"]["soak"])
    return {"environments": envs, "skipped": skipped, "start": start, "complete_at": end,
            "seconds": seconds, "total": about(seconds) if seconds is not None else None,
            "soak_seconds": soaked, "frozen_seconds": frozen,
            "summary": _summary(envs, seconds, soaked, frozen)}


def _summary(envs: list[dict[str, Any]], seconds: float | None, soaked: float,
             frozen: float) -> str:
    """The pipeline's expected duration in one line."""
    parts = []
    for e in envs:
        s = e["schedule"]
        if s is not None and s.get("soak"):
            parts.append(f"soak {format_duration(s['soak']['seconds'])}")
        if s is None:
            what = e["state"]["phase"].replace("_", " ") if e["state"] else "no schedule"
        elif s["steps"] == [] and s["seconds"] == 0.0:
            what = "completed"
        elif s["seconds"] is None:
            what = "a step never passes at the declared traffic"
        else:
            what = f"~{about(s['seconds'])}"
        parts.append(f"{e['environment']} {what}")
    chain = " → ".join(parts)
    if seconds is None:
        return f"{chain}: no expected completion"
    extra = [f"soaks {format_duration(soaked)}"] if soaked else []
    if frozen:
        extra.append(f"freezes {about(frozen)}")
    return (f"{chain}: ~{about(seconds)} from now to the last environment's completion"
            + (f" ({', '.join(extra)} included)" if extra else ""))


def pipeline_risks(key: str, h: Repository, envs: list[dict[str, Any]] | None,
                   pipe: dict[str, Any] | None) -> list[dict[str, str]]:
    """The pipeline's risks: the last environment reached with no approval step and no
    soak, and environments the plan skips. ``envs``: the rollout's ``environments``."""
    if not pipe or not envs:
        return []
    out = []
    flag = h.flags.get(key)
    level = "high" if flag is not None and flag.risk is Risk.HIGH else "warning"
    last = envs[-1]
    if len(envs) > 1:
        plan = h.for_environment(last["environment"]).plans[key]
        upstream = h.for_environment(envs[-2]["environment"]).plans[key]
        if not plan.promote_after and not any(s.approval for s in plan.steps):
            baked = (f" (after its bake of {format_duration(upstream.bake)})"
                     if upstream.bake else "")
            out.append({"level": level, "kind": "promotion_unguarded", "flag": key,
                        "message": f"{key} starts in {last['environment']} as soon as "
                        f"{envs[-2]['environment']} completes it{baked}, with no approval "
                        f"step and no soak (promote_after 0): nobody looks and nothing "
                        "settles before it moves there"})
    if pipe["skipped"]:
        ran = [e["environment"] for e in envs]
        order = [e.name for e in h.environments]
        first_skipped = order.index(ran[0]) > 0
        out.append({"level": "warning", "kind": "environment_skipped", "flag": key,
                    "message": f"{key}'s plan skips {', '.join(pipe['skipped'])}: it runs in "
                    f"{', '.join(ran)} only"
                    + (f", and starts in {ran[0]} with no earlier environment" if first_skipped
                       else "")})
    return out


__all__ = ["pipeline", "pipeline_risks", "schedule"]
