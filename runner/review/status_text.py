"""``rollout status`` as text: one line per fact of each rollout's record, safe for a terminal.

Input: the records ``runner.reconcile.view.record`` computes. Every value from a file
(names, reasons, thresholds...) goes through ``safe_line``: a hand-edited state or a person's
reason never makes two lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.model import CohortEvidence
from runner.safetext import safe_line


def status_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rollouts, each a headline (phase, percentage, step) and its indented facts."""
    out: list[str] = []
    for r in rows:
        out += _rollout(r)
    return "\n".join(out) + ("\n" if out else "")


def _rollout(r: Mapping[str, Any]) -> list[str]:
    steps = "/".join(f"{p}" for p in r["steps"])
    if not r["steps"]:  # an orphaned state: its plan is gone
        where = "orphaned, no plan"
    elif r["step_started_at"]:
        where = f"step {r['step'] + 1} of {len(r['steps'])}; {steps}"
    else:
        where = f"not started; {steps}"
    env = r.get("environment")  # repositories with environments only
    name = f"{r['flag']}@{env}" if env else r["flag"]
    out = [safe_line(f"{name}: {r['phase']} at {r['current_percentage']}% ({where})",
                     limit=1000)]
    if r.get("kill_switch"):
        out.append(safe_line(f"  {r['kill_switch']}: the flag is off; the rollout does not "
                             "advance until it is lifted (a failing gate still rolls back)",
                             limit=1000))
    if r.get("halted"):
        own = r["halted"].get("environment")  # an environment's own halt: unhalt names it
        unhalt = f"rollout unhalt --env {own}" if own else "rollout unhalt"
        out.append(safe_line(f"  {r['halted']['text']}: nothing starts, advances or completes "
                             f"until `{unhalt}` (a failing gate still rolls back)",
                             limit=1000))
    if r.get("frozen"):
        out.append(safe_line(f"  {r['frozen']['text']}: nothing starts, advances or completes "
                             "until then (a failing gate still rolls back)", limit=1000))
    if r.get("baking") and r.get("bake_ends_at"):
        out.append(f"  baking at 100% until {safe_line(r['bake_ends_at'])} (gates still "
                   "evaluated; completed after it)")
    elif r["next_step_at"]:
        out.append(f"  next step at {safe_line(r['next_step_at'])}")
    if r.get("awaiting_approval") is not None:
        i = r["awaiting_approval"]
        out.append(safe_line(f"  step {i + 1} ({r['steps'][i]}%) needs approval: "
                             f"`rollout approve {r['flag']}{f' --env {env}' if env else ''}`",
                             limit=1000))
    elif r.get("approved_step") is not None:
        out.append(safe_line(f"  step {r['approved_step'] + 1} approved by "
                             f"{r['approved_by']}", limit=1000))
    for g in r["last_gates"]:
        dry = ", dry run" if g.get("dry_run") else ""
        out.append("  " + safe_line(f"{g['name']} = {gate_value(g['value'])} "
                                    f"({g['threshold']}{dry}): {g['verdict']}", limit=1000))
        if g.get("cohorts"):  # a comparison gate: treatment against control
            out.append("    " + safe_line(_cohorts(g["cohorts"]), limit=1000))
        if isinstance(g.get("to_decide"), Mapping):  # a plan with traffic: how far from deciding
            from runner.review.status_evidence import distance_text  # loaded with the distance

            out.append("    " + safe_line(distance_text(g["to_decide"]), limit=1000))
    if r["reason"]:
        out.append(f"  {safe_line(r['reason'], limit=1000)}")
    return out


def gate_value(value: object) -> str:
    """A gate's value as the commits write it: whole numbers whole, others to 6 digits
    (a comparison's difference is 5.03509, not 5.035087719298246)."""
    if value is None:
        return "none"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else f"{value:.6g}"
    return str(value)


_COHORT_FIELDS = ("treatment_rate", "control_rate", "treatment_requests", "control_requests",
                  "low", "high", "margin", "confidence")


def _cohorts(c: Mapping[str, Any]) -> str:
    """A state's cohort evidence (a JSON object) in the words of the commit."""
    # start-up: the message module (and the trailer reader under it) costs every text status
    # ~6 ms; only a comparison gate's evidence needs it
    from runner.reconcile.message import cohort_text

    fields: dict[str, Any] = {f: c.get(f) for f in _COHORT_FIELDS}
    return cohort_text(CohortEvidence(**fields))
