"""What a run did, in the lines the changing commands print and the outputs GitHub Actions reads.

``rollout advance``, ``rollback``, ``pause``, ``resume``, ``retry`` and ``approve`` print a
run's :class:`runner.reconcile.runs.Report` through here: its notes (for standard error),
one line per decision, the rollbacks, the push; every line through ``safe_line``. And the
warnings about rollouts whose metrics could not be read, with their job-summary lines.
``advance --dry-run`` adds, under a decision, how far each inconclusive comparison and
absolute gate with a confidence is from deciding, for a plan with ``traffic`` — the words
``rollout status`` uses (:mod:`runner.review.status_evidence`): a hold records no state, so
this is where a person sees it live.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from runner.load.statefile import state_to_dict
from runner.model import Phase, RolloutPlan
from runner.percent import pct
from runner.reconcile.decide import Action, Decision
from runner.reconcile.runs import Report, Unreadable
from runner.safemarkup import markdown
from runner.safetext import safe_line
from runner.timefmt import utc_iso


@dataclass(frozen=True, slots=True)
class RunText:
    """The notes (for standard error) and the lines (for standard output) of one run."""

    notes: list[str]
    lines: list[str]
    #: One per rollout whose metrics could not be read (printed as warnings: ``::warning``
    #: in GitHub Actions), and the same as Markdown lines for the job summary.
    warnings: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)


def already_evaluated(d: Decision, now: datetime | None) -> bool:
    """Whether ``d`` is nothing to do because this very moment was evaluated already (a run
    again with the same ``--now``): the rollout is where that evaluation left it."""
    before = d.before
    return (d.action is None and now is not None and before is not None
            and before.phase is Phase.PROGRESSING and before.last_evaluated_at == now)


def decision_line(d: Decision, sha: str | None, dry_run: bool = False,
                  now: datetime | None = None) -> str:
    """One decision as the commands print it: the move and the commit, as its subject says;
    "already at 25% (evaluated at …); nothing to do" when the run's ``now`` was evaluated
    already, rather than the reason of the move that evaluation made."""
    return safe_line(_words(d, sha, dry_run, now), limit=2000)


def _words(d: Decision, sha: str | None, dry_run: bool, now: datetime | None) -> str:
    at = f" ({sha[:7]})" if sha else ""
    if already_evaluated(d, now):
        assert d.before is not None and now is not None
        return (f"{d.key}: already at {pct(d.before.current_percentage)}% (evaluated at "
                f"{utc_iso(now)}); nothing to do")
    if d.action is None:
        return f"{d.key}: {d.reason}"
    would = "would " if dry_run else ""
    if d.action is Action.START:  # as its commit says: "start at 0%", not "0% → 0%"
        return f"{d.key}: {would}start at {pct(d.to_percentage)}%{at}: {d.reason}"
    if d.action in (Action.ADVANCE, Action.COMPLETE, Action.ROLLBACK):
        move = f"{pct(d.from_percentage)}% → {pct(d.to_percentage)}%"
        return f"{d.key}: {would}{d.action.value} {move}{at}: {d.reason}"
    return f"{d.key}: {would}{d.action.value}{at}: {d.reason}"


def run_text(rep: Report, dry_run: bool = False) -> RunText:
    """The notes, each selected decision, each rollback (``ROLLED BACK: FLAG``, which CI
    logs are searched for) and the push."""
    notes = [safe_line(f"error: {e}", limit=2000) for e in rep.errors]
    notes += [safe_line(f"note: {note}", limit=2000) for note in rep.notes]
    lines = []
    for d in rep.decisions:
        if d.selected:
            lines.append(decision_line(d, rep.commits.get(d.key), dry_run, rep.now))
            if dry_run:
                lines.extend(distance_lines(d, rep.plans.get(d.key)))
    lines += [f"ROLLED BACK: {safe_line(flag)}" + (" (dry run, nothing written)" if dry_run else "")
              for flag in rep.rolled_back]
    if rep.pushed:
        lines.append(f"pushed {len(rep.commits)} commit{'s' * (len(rep.commits) != 1)}")
    found = rep.unreadable
    return RunText(notes, lines, [safe_line(unreadable_words(u, dry_run), limit=2000)
                                  for u in found],
                   [f"- {markdown(safe_line(unreadable_words(u, dry_run), limit=2000))}"
                    for u in found])


def distance_lines(d: Decision, plan: RolloutPlan | None) -> list[str]:
    """``  compare.error_rate: needs ~6,412 more treatment requests (~128,250 in all) to pass
    (~1d19h at the current rate)``, one line per inconclusive gate of ``d`` that can say it:
    from the step as it was (the decision's ``before``) with the gates just evaluated; none
    for a plan without ``traffic`` or one edited since the state was written."""
    if plan is None or plan.traffic is None or d.before is None or not d.gates \
            or d.before.plan_digest != plan.digest:
        return []
    # start-up: the statistics load only for a plan that plans its evidence
    from runner.review.status_evidence import TO_DECIDE, distance_text, with_distances

    row = state_to_dict(dataclasses.replace(d.before, phase=Phase.PROGRESSING,
                                            last_gates=d.gates))
    with_distances(row, plan)
    return [safe_line(f"  {g['name']}: {distance_text(g[TO_DECIDE])}", limit=1000)
            for g in row["last_gates"] if TO_DECIDE in g]


def unreadable_words(u: Unreadable, dry_run: bool = False) -> str:
    """What a warning says of a rollout whose metrics could not be read (``flag@env`` and
    ``--env`` in a declared environment: the command is refused without it)."""
    name = u.flag if u.environment is None else f"{u.flag}@{u.environment}"
    where = "" if u.environment is None else f" --env {u.environment}"
    resume = f"fix the metric source, then `rollout resume {u.flag}{where}`"
    if u.earlier:
        return (f"{name}: still paused because its metrics could not be read: {u.cause}; "
                f"{resume}")
    if u.paused:
        return (f"{name}: {'would be ' if dry_run else ''}paused because its metrics could "
                f"not be read: {u.cause}; {resume}")
    if not u.running:  # paused (or rolled back) for another reason, which its line says
        return f"{name}: metrics could not be read: {u.cause}"
    when = ("after error_limit failures in a row" if u.error
            else "at its progress deadline")
    return (f"{name}: metrics could not be read: {u.cause}; the rollout cannot advance, and "
            f"is paused {when}")


def github_outputs(rep: Report) -> str:
    """The step outputs (``name=value`` lines for ``$GITHUB_OUTPUT``): the rolled back and
    paused flags, the flags whose metrics could not be read, how many decisions changed
    something, the commits, and the commit the run left (a job that reads the rollbacks
    checks it out)."""
    paused = [d.flag for d in rep.decisions if d.action in (Action.PAUSE, Action.HOLD)]
    changed = [d for d in rep.decisions if d.action is not None]
    unread = [u.flag for u in rep.unreadable]
    return (safe_line(f"rolled_back={','.join(rep.rolled_back)}") + "\n"
            + safe_line(f"paused={','.join(paused)}") + "\n"
            + safe_line(f"metrics_unreadable={','.join(unread)}") + "\n"
            + f"changed={len(changed)}\n"
            + f"commits={len(rep.commits)}\n"
            + f"head={rep.head or ''}\n")
