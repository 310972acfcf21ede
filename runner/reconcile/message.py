"""Commit messages of runner commits, per the trailer contract (docs/runner.md).

Subject, a body with the evidence in words, and trailers in the last paragraph.
"""

from __future__ import annotations

from runner.model import GateResult, RolloutPlan
from runner.reconcile.decide import Action, Decision, pct
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


def evidence_line(g: GateResult, window: str) -> str:
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
