"""What a run did, in the lines the changing commands print and the outputs GitHub Actions reads.

``rollout advance``, ``rollback``, ``pause``, ``resume``, ``retry`` and ``approve`` print a
run's :class:`runner.reconcile.runs.Report` through here: its notes (for standard error),
one line per decision, the rollbacks, the push; every line through ``safe_line``.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.percent import pct
from runner.reconcile.decide import Action, Decision
from runner.reconcile.runs import Report
from runner.safetext import safe_line


@dataclass(frozen=True, slots=True)
class RunText:
    """The notes (for standard error) and the lines (for standard output) of one run."""

    notes: list[str]
    lines: list[str]


def decision_line(d: Decision, sha: str | None, dry_run: bool = False) -> str:
    """One decision as the commands print it: the move and the commit, as its subject says."""
    return safe_line(_words(d, sha, dry_run), limit=2000)


def _words(d: Decision, sha: str | None, dry_run: bool) -> str:
    at = f" ({sha[:7]})" if sha else ""
    if d.action is None:
        return f"{d.flag}: {d.reason}"
    would = "would " if dry_run else ""
    if d.action is Action.START:  # as its commit says: "start at 0%", not "0% → 0%"
        return f"{d.flag}: {would}start at {pct(d.to_percentage)}%{at}: {d.reason}"
    if d.action in (Action.ADVANCE, Action.COMPLETE, Action.ROLLBACK):
        move = f"{pct(d.from_percentage)}% → {pct(d.to_percentage)}%"
        return f"{d.flag}: {would}{d.action.value} {move}{at}: {d.reason}"
    return f"{d.flag}: {would}{d.action.value}{at}: {d.reason}"


def run_text(rep: Report, dry_run: bool = False) -> RunText:
    """The notes, each selected decision, each rollback (``ROLLED BACK: FLAG``, which CI
    logs are searched for) and the push."""
    notes = [safe_line(f"error: {e}", limit=2000) for e in rep.errors]
    notes += [safe_line(f"note: {note}", limit=2000) for note in rep.notes]
    lines = [decision_line(d, rep.commits.get(d.flag), dry_run)
             for d in rep.decisions if d.selected]
    lines += [f"ROLLED BACK: {safe_line(flag)}" + (" (dry run, nothing written)" if dry_run else "")
              for flag in rep.rolled_back]
    if rep.pushed:
        lines.append(f"pushed {len(rep.commits)} commit{'s' * (len(rep.commits) != 1)}")
    return RunText(notes, lines)


def github_outputs(rep: Report) -> str:
    """The step outputs (``name=value`` lines for ``$GITHUB_OUTPUT``): the rolled back and
    paused flags, how many decisions changed something, the commits, and the commit the run
    left (a job that reads the rollbacks checks it out)."""
    paused = [d.flag for d in rep.decisions if d.action in (Action.PAUSE, Action.HOLD)]
    changed = [d for d in rep.decisions if d.action is not None]
    return (safe_line(f"rolled_back={','.join(rep.rolled_back)}") + "\n"
            + safe_line(f"paused={','.join(paused)}") + "\n"
            + f"changed={len(changed)}\n"
            + f"commits={len(rep.commits)}\n"
            + f"head={rep.head or ''}\n")
