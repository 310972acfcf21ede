"""Arguments and output shared by the commands that change rollouts (advance, rollback...).

Exit codes of these commands (docs/runner.md):
0 done (also when nothing needed to change), 1 a problem stopped the run and nothing was
written (invalid repository, uncommitted changes, a refused request, a push that kept being
rejected, a git failure; or, after the run, a --publish failure), or a rollout is paused
because its metrics could not be read (at every run while it stays paused), 2 usage,
3 internal error, 4 the run rolled at least one rollout back, 5 it rolled one back and
--publish failed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from runner.cli.common import UsageError, add_repo_argument, gitops_root
from runner.errors import EXIT_PROBLEM, RolloutError
from runner.load.assemble import parse_time
from runner.reconcile.decide import CLOCK_SKEW
from runner.reconcile.shard import Shard
from runner.safetext import safe_line, safe_lines

if TYPE_CHECKING:  # imported where used: see options() and report()
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


#: The most shards ``--shard`` takes (GitHub runs at most 256 jobs of one matrix).
MAX_SHARDS = 256


def parse_shard(value: str | None) -> Shard | None:
    """``--shard I/N``: shard I (0-based, as GitHub's ``strategy.job-index``) of N."""
    if value is None:
        return None
    shown = safe_line(repr(value), 100)
    m = re.fullmatch(r"([0-9]{1,6})/([0-9]{1,6})", value)
    if m is None:
        raise UsageError(f"--shard {shown}: not I/N (shard I of N, I from 0 to N-1: 0/4 ... 3/4)")
    index, count = int(m[1]), int(m[2])
    if not 1 <= count <= MAX_SHARDS:
        raise UsageError(f"--shard {shown}: N must be 1 to {MAX_SHARDS}")
    if index >= count:
        raise UsageError(f"--shard {shown}: I must be 0 to {count - 1} (shards count from 0)")
    return Shard(index, count)


def check_recorded_now(value: str | None, now: datetime, env: Mapping[str, str],
                       clock: datetime | None = None) -> None:
    """A ``--now`` that a command records (in states, commit dates) may not lie ahead of the
    clock by more than ``decide.CLOCK_SKEW`` (5 minutes), unless ``ROLLOUT_ALLOW_FUTURE_NOW=1``
    says this is a simulation: a typo or a skewed clock would be written into history."""
    if value is None or env.get(ALLOW_FUTURE_NOW) == "1":
        return
    clock = clock or datetime.now(UTC)
    ahead = (now - clock).total_seconds()
    if ahead > CLOCK_SKEW.total_seconds():
        raise UsageError(
            f"--now {safe_line(value)}: {ahead:.0f}s ahead of this machine's clock "
            f"({clock.isoformat(timespec='seconds')}), more than the allowed skew of "
            f"{CLOCK_SKEW.total_seconds() / 60:g} minutes; nothing was written. Omit --now to act "
            f"at the clock, or set {ALLOW_FUTURE_NOW}=1 for a simulation on a simulated clock")


def add_env_argument(p: argparse.ArgumentParser, acting: bool = True) -> None:
    """``--env NAME`` (repositories with ``[tool.rollout.environments]``). ``acting``: the
    command acts in one environment, so a repository declaring several needs it named."""
    p.add_argument("--env", metavar="NAME",
                   help="the environment of [tool.rollout.environments] to act in"
                   + (" (required when several are declared)" if acting
                      else " (default: every one)"))
    p.set_defaults(env_acting=acting)


def environments_of(args: argparse.Namespace, root: Path) -> tuple[str, ...]:
    """The environments ``--env`` names: () when it is not given (every one, or the one
    implicit environment). A usage error for an undeclared name, for ``--env`` in a
    repository without environments, and for an acting command in a repository that
    declares several, none named."""
    name = getattr(args, "env", None)
    if name is None and not getattr(args, "env_acting", False):
        return ()
    from runner.load import load_config  # start-up: as gitops_root

    declared = [e.name for e in load_config(root)[0].environments]
    if name is None:
        if len(declared) > 1:
            raise UsageError("name the environment with --env: " + ", ".join(declared))
        return tuple(declared)
    if not declared:
        raise UsageError(f"--env {safe_line(name)}: [tool.rollout] declares no environments")
    if name not in declared:
        raise UsageError(f"--env {safe_line(name)}: not a declared environment ("
                         + ", ".join(declared) + ")")
    return (name,)


def options(args: argparse.Namespace, **kw: object) -> Options:
    """The run's options from the arguments, and the environment: read here, once, and
    passed down (``Options.env``)."""
    # start-up: `rollout status` and `rollout plan` import this module for parse_now alone;
    # the run (reconcile.runs, and review.run_text on it) would cost them ~18 ms
    from runner.reconcile.runs import Options

    env = dict(os.environ)
    root: Path = gitops_root(args)
    if args.branch is not None and not args.push:
        # without --push the commits land on the checked out branch, whatever --branch says
        raise UsageError("--branch names the branch to push to: use it with --push")
    now = parse_now(args.now)
    if not kw.get("dry_run"):  # a dry run records nothing
        check_recorded_now(args.now, now, env)
    environments = environments_of(args, root)
    if environments:
        kw["environments"] = environments
    return Options(root=root, now=now, push=args.push, remote=args.remote,
                   branch=args.branch, env=env, **kw)  # type: ignore[arg-type]


def report(rep: Report, opts: Options) -> int:
    """Print what happened (``runner.review.run_text``); warn about metrics that could not be
    read (``::warning`` lines in GitHub Actions, and ``$GITHUB_STEP_SUMMARY``); tell CI about
    rollbacks (``$GITHUB_OUTPUT``); the exit code."""
    from runner.review.run_text import github_outputs, run_text  # start-up: see options()

    text = run_text(rep, opts.dry_run)
    for note in text.notes:
        print(note, file=sys.stderr)
    if opts.env.get("GITHUB_ACTIONS") == "true":
        for error in rep.errors:  # an annotation on the run, beside the error line
            line = safe_line(error, 1000).replace("%", "%25")
            print(f"::error title=kill switch::{line}", file=sys.stderr)
    for line in text.lines:
        print(line)
    github = opts.env.get("GITHUB_ACTIONS") == "true"
    for warning in text.warnings:
        print(f"::warning title=rollout metrics::{warning.replace('%', '%25')}" if github
              else f"warning: {warning}", file=sys.stderr)
    if text.summary and (summary := opts.env.get("GITHUB_STEP_SUMMARY")):
        try:
            with open(summary, "a", encoding="utf-8") as f:
                f.write("\n### Rollout metrics not read\n\n")
                f.writelines(f"{line}\n" for line in text.summary)
        except OSError as e:
            print(safe_line(f"warning: cannot write the step summary: {e}"), file=sys.stderr)
    if gh := opts.env.get("GITHUB_OUTPUT"):
        with open(gh, "a", encoding="utf-8") as f:
            f.write(github_outputs(rep))
    # a repository with problems is a failed run even when the rollbacks it could make went
    # through: CI turns red, and the note says what was not done. So is a rollout paused
    # because its metrics could not be read, at every run until a person resumes it: a
    # rollout that stalls in silence is the failure nobody sees
    stuck = any(u.paused for u in rep.unreadable)
    return EXIT_ROLLED_BACK if rep.rolled_back else (1 if rep.degraded or stuck else 0)


def stopped(e: Exception, command: str) -> int:
    """Print why the command stopped; its kind's exit code (1, or 2 for a usage error such
    as a folder that is no git repository)."""
    print(safe_lines(f"rollout {command}: {e}"), file=sys.stderr)
    return e.exit_code if isinstance(e, RolloutError) else EXIT_PROBLEM
