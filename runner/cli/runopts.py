"""Arguments and output shared by the commands that change rollouts (advance, rollback...).

Exit codes of these commands (docs/runner.md):
0 done (also when nothing needed to change), 1 a problem stopped the run and nothing was
written (invalid repository, uncommitted changes, a refused request, a push that kept being
rejected, a git failure; or, after the run, a --publish failure), 2 usage, 3 internal error,
4 the run rolled at least one rollout back, 5 it rolled one back and --publish failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.cli.common import add_repo_argument, gitops_root
from runner.safetext import safe_line, safe_lines

if TYPE_CHECKING:  # imported where used: every `rollout` command registers these options,
    # and importing the reconcile layer costs ~150 ms of start-up to commands that never run it
    from runner.reconcile.decide import Decision
    from runner.reconcile.runs import Options, Report

EXIT_ROLLED_BACK = 4
#: Set to 1 to allow a ``--now`` further ahead in commands that record it: simulations on
#: a simulated clock (``rollout demo``, the test-suite). Nothing else should set it.
ALLOW_FUTURE_NOW = "ROLLOUT_ALLOW_FUTURE_NOW"


def add_change_arguments(p: argparse.ArgumentParser) -> None:
    add_repo_argument(p)
    p.add_argument("--now", metavar="ISO8601",
                   help="the time the run acts at (default: the clock); for tests and "
                   "simulations. When the run records it, at most 5 minutes ahead of the clock "
                   f"unless {ALLOW_FUTURE_NOW}=1")
    p.add_argument("--push", action="store_true",
                   help="push the commits; on a rejected push fetch, recompute and retry")
    p.add_argument("--remote", default="origin", metavar="NAME", help="default: origin")
    p.add_argument("--branch", metavar="NAME",
                   help="the branch to push to, with --push (default: the current branch)")


def parse_now(value: str | None) -> datetime:
    from runner.cli.common import UsageError
    from runner.load.assemble import parse_time

    if value is None:
        return datetime.now(UTC)
    if not value.strip():
        # an empty --now is more likely an unset variable ("--now $NOW") than a wish for
        # the clock: acting at the real time in a simulation could pause or roll back
        raise UsageError("--now '': empty (omit --now to use the clock)")
    shown = safe_line(repr(value), 200)
    try:
        now = parse_time(value)
    except (ValueError, OverflowError) as e:
        raise UsageError(f"--now {shown}: not an ISO 8601 time ({e})") from None
    # waits and deadlines are added to it: keep far from datetime's limits (year 1..9999)
    if not 1970 <= now.year <= 9000:
        raise UsageError(f"--now {shown}: out of range (years 1970 to 9000)")
    return now


def check_recorded_now(value: str | None, now: datetime, clock: datetime | None = None) -> None:
    """A ``--now`` that a command records (in states, commit dates) may not lie ahead of the
    clock by more than ``decide.CLOCK_SKEW`` (5 minutes), unless ``ROLLOUT_ALLOW_FUTURE_NOW=1``
    says this is a simulation: a typo or a skewed clock would be written into history."""
    from runner.cli.common import UsageError
    from runner.reconcile.decide import CLOCK_SKEW

    if value is None or os.environ.get(ALLOW_FUTURE_NOW) == "1":
        return
    clock = clock or datetime.now(UTC)
    ahead = (now - clock).total_seconds()
    if ahead > CLOCK_SKEW.total_seconds():
        raise UsageError(
            f"--now {safe_line(value)}: {ahead:.0f}s ahead of this machine's clock "
            f"({clock.isoformat(timespec='seconds')}), more than the allowed skew of "
            f"{CLOCK_SKEW.total_seconds() / 60:g} minutes; nothing was written. Omit --now to act "
            f"at the clock, or set {ALLOW_FUTURE_NOW}=1 for a simulation on a simulated clock")


def options(args: argparse.Namespace, **kw: object) -> Options:
    from runner.cli.common import UsageError
    from runner.reconcile.runs import Options

    root: Path = gitops_root(args)
    if args.branch is not None and not args.push:
        # without --push the commits land on the checked out branch, whatever --branch says
        raise UsageError("--branch names the branch to push to: use it with --push")
    now = parse_now(args.now)
    if not kw.get("dry_run"):  # a dry run records nothing
        check_recorded_now(args.now, now)
    return Options(root=root, now=now, push=args.push, remote=args.remote,
                   branch=args.branch, **kw)  # type: ignore[arg-type]


def requested_by() -> str:
    """Who asked: ROLLOUT_REQUESTED_BY, GitHub's actor, else the git identity."""
    if who := os.environ.get("ROLLOUT_REQUESTED_BY"):
        return who
    if actor := os.environ.get("GITHUB_ACTOR"):
        return actor
    from runner.git import author_ident

    ident = author_ident(Path.cwd())
    return ident.rsplit(" ", 2)[0] if ident else os.environ.get("USER", "someone")


def line(d: Decision, sha: str | None, dry_run: bool = False) -> str:
    from runner.percent import pct
    from runner.reconcile.decide import Action
    from runner.safetext import safe_line

    return safe_line(_line(d, sha, dry_run, Action, pct), limit=2000)


def _line(d: Decision, sha: str | None, dry_run: bool, Action: Any, pct: Any) -> str:
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


def report(rep: Report, dry_run: bool = False) -> int:
    """Print what happened (each line through safe_line); tell CI about rollbacks; the
    exit code."""
    from runner.reconcile.decide import Action
    from runner.safetext import safe_line

    for note in rep.notes:
        print(safe_line(f"note: {note}", limit=2000), file=sys.stderr)
    for d in rep.decisions:
        if not d.selected:
            continue
        print(line(d, rep.commits.get(d.flag), dry_run))
    rolled = rep.rolled_back
    for flag in rolled:
        print(f"ROLLED BACK: {safe_line(flag)}" + (" (dry run, nothing written)" if dry_run else ""))
    paused = [d.flag for d in rep.decisions if d.action in (Action.PAUSE, Action.HOLD)]
    changed = [d for d in rep.decisions if d.action is not None]
    if rep.pushed:
        print(f"pushed {len(rep.commits)} commit{'s' * (len(rep.commits) != 1)}")
    if gh := os.environ.get("GITHUB_OUTPUT"):
        with open(gh, "a", encoding="utf-8") as f:
            f.write(safe_line(f"rolled_back={','.join(rolled)}") + "\n")
            f.write(safe_line(f"paused={','.join(paused)}") + "\n")
            f.write(f"changed={len(changed)}\n")
            f.write(f"commits={len(rep.commits)}\n")
            # the commit the run left (a job that reads the rollbacks checks it out)
            f.write(f"head={rep.head or ''}\n")
    # a repository with problems is a failed run even when the rollbacks it could make went
    # through: CI turns red, and the note says what was not done
    return EXIT_ROLLED_BACK if rolled else (1 if rep.degraded else 0)


def stopped(e: Exception, command: str) -> int:
    print(safe_lines(f"rollout {command}: {e}"), file=sys.stderr)
    return 1
