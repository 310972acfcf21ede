"""Commit messages of runner commits, per the trailer contract (docs/runner.md).

Subject, a body with the evidence in words, and trailers in the last paragraph.
"""

from __future__ import annotations

from runner.model import CohortEvidence, GateResult, RolloutPlan
from runner.percent import pct
from runner.reconcile.decide import Action, Decision
from runner.safetext import record_line


def subject(d: Decision) -> str:
    head = f"rollout({d.flag}):"
    a, frm, to = d.action, pct(d.from_percentage), pct(d.to_percentage)
    if a is Action.START:
        return f"{head} start at {to}%"
    if a in (Action.ADVANCE, Action.COMPLETE):
        return f"{head} {frm}% → {to}%"
    if a is Action.ROLLBACK:
        return f"{head} rollback {frm}% → {to}%"
    if a is Action.PAUSE:
        return f"{head} pause at {to}%"
    if a is Action.RESUME:
        return f"{head} resume at {to}%"
    if a is Action.RETRY:
        return f"{head} retry from {to}%"
    if a is Action.HOLD:
        return f"{head} hold at {to}% after revert of {(d.reverted_commit or '')[:7]}"
    if a is Action.REPLAN:
        return f"{head} replan at {to}%"
    if a is Action.CLEANUP:
        return f"{head} remove orphaned state"
    if a is Action.OBSERVE:
        return f"{head} observe at {to}%"
    if a is Action.APPROVE:
        step = d.after.approved_step if d.after else None
        return f"{head} approve step {(step or 0) + 1} at {to}%"
    raise ValueError(f"no commit for {a}")


def _value(g: GateResult) -> str:
    return "none" if g.value is None else f"{g.value:g}"


def _rate(x: float | None) -> str:
    return "none" if x is None else f"{x:.3g}%"


def _points(x: float) -> str:
    return f"{x:+.3g}"


def cohort_text(c: CohortEvidence) -> str:
    """Treatment against control in one bounded line: ``treatment 5.1% (n=1,204) control
    0.3% (n=22,870) diff +4.8 pp [+3.9, +5.7] margin 0.5 pp``."""
    parts = [f"treatment {_rate(c.treatment_rate)} (n={c.treatment_requests:,})",
             f"control {_rate(c.control_rate)} (n={c.control_requests:,})"]
    if c.treatment_rate is not None and c.control_rate is not None:
        parts.append(f"diff {_points(c.treatment_rate - c.control_rate)} pp")
    if c.low is not None and c.high is not None:
        parts.append(f"[{_points(c.low)}, {_points(c.high)}] at {c.confidence * 100:.4g}%")
    else:
        parts.append("no interval yet")
    parts.append(f"margin {c.margin:g} pp")
    return " ".join(parts)


def compare_trailer(g: GateResult) -> str:
    """``error_rate treatment 5.1% (n=…) control 0.3% (n=…) diff +4.8 pp [+3.9, +5.7] at
    99.2% margin 0.5 pp: fail``; only for a result with cohort evidence."""
    assert g.cohorts is not None
    dry = " dry-run" if g.dry_run else ""
    return f"{g.name.removeprefix('compare.')} {cohort_text(g.cohorts)}: {g.verdict.value}{dry}"


def evidence_line(g: GateResult, window: str) -> str:
    if g.name.startswith("compare."):  # cumulative since the step started, not the window
        window = "since the step started"
    extra = ", dry run" if g.dry_run else ""
    detail = f" — {g.detail}" if g.detail else ""
    return (f"{g.name} = {_value(g)} (threshold {g.threshold or 'none'}, window {window}{extra})"
            f": {g.verdict.value}{detail}")


def gate_trailer(g: GateResult) -> str:
    dry = " dry-run" if g.dry_run else ""
    return f"{g.name}={_value(g)} {g.verdict.value} ({g.threshold}){dry}"


def message(d: Decision, plan: RolloutPlan | None, state_before: str | None = None,
            state_after: str | None = None) -> str:
    """The commit message of ``d``; ``state_before``/``state_after`` are the digests of the
    state file the commit starts from and writes (``sha256:<hex>`` or ``none``)."""
    assert d.action is not None
    window = plan.metrics.window if plan and plan.metrics else "5m"
    body = [record_line(d.reason)]
    if d.gates:
        body.append("")
        body.extend(record_line(evidence_line(g, window)) for g in d.gates)
    phase = d.after.phase.value if d.after else "removed"
    trailers = [
        f"Rollout-Flag: {d.flag}",
        f"Rollout-Action: {d.action.value}",
        f"Rollout-From: {pct(d.from_percentage)}",
        f"Rollout-To: {pct(d.to_percentage)}",
        f"Rollout-Phase: {phase}",
        f"Rollout-Plan: {d.plan}",
        f"Rollout-Plan-Digest: {d.plan_digest}",
        *([f"Rollout-State-Before: {state_before}"] if state_before is not None else []),
        *([f"Rollout-State-After: {state_after}"] if state_after is not None else []),
        *(f"Rollout-Gate: {record_line(gate_trailer(g))}" for g in d.gates),
        *(f"Rollout-Compare: {record_line(compare_trailer(g))}" for g in d.gates
          if g.cohorts is not None),
        f"Rollout-Reason: {record_line(d.reason)}",
    ]
    if d.requested_by:
        trailers.append(f"Rollout-Requested-By: {record_line(d.requested_by)}")
    if d.approved_by:
        trailers.append(f"Rollout-Approved-By: {record_line(d.approved_by)}")
    if d.reverted_commit:
        trailers.append(f"Rollout-Reverted-Commit: {d.reverted_commit}")
    if d.reverted_by:
        trailers.append(f"Rollout-Reverted-By: {record_line(d.reverted_by)}")
    return f"{subject(d)}\n\n" + "\n".join(body) + "\n\n" + "\n".join(trailers) + "\n"
