"""``rollout halt [--env E] --reason TEXT``: stop the line, one commit of the switch file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.cli import notifying, runopts
from runner.cli.commands import SUMMARIES
from runner.errors import Declined
from runner.git import GitError
from runner.reconcile.freeze import halted_reason
from runner.reconcile.halt import apply_switch
from runner.reconcile.runs import Stop, requester
from runner.safetext import safe_line

DESCRIPTIONS = {
    "halt": ("Stop the line: commit <rollouts_dir>/HALT.json (HALT.ENV.json with --env) "
             "saying who halted, when and why. Until `rollout unhalt`, no rollout of the "
             "repository (of that environment) starts, advances or completes; rollbacks, "
             "pauses and holds still happen."),
    "unhalt": ("Lift a halt: commit the removal of <rollouts_dir>/HALT.json (HALT.ENV.json "
               "with --env); the rollouts go on at the next run."),
}


def register(sub: argparse._SubParsersAction, name: str = "halt") -> None:
    p = sub.add_parser(name, help=SUMMARIES[name],
                       description=DESCRIPTIONS[name] + " Exit 0 done, 1 refused (already "
                       "halted, not halted) or stopped (nothing written), 2 usage, 3 "
                       "internal error.")
    p.add_argument("--env", metavar="NAME", default=None,
                   help="the environment to halt (default: every environment)")
    p.add_argument("--reason", default=None if name == "halt" else "", metavar="TEXT",
                   required=name == "halt", help="why, recorded in the file and the commit")
    runopts.add_change_arguments(p)
    p.set_defaults(run=run, switch=name)


def run(args: argparse.Namespace) -> int:
    opts = runopts.options(args)
    on = args.switch == "halt"
    reason = safe_line((args.reason or "").strip(), 500)
    if on and not reason:
        print("rollout halt: --reason must say why (an incident, a change freeze...)",
              file=sys.stderr)
        return 2
    by = safe_line(requester(opts.env, Path.cwd()), 200)
    try:
        done = apply_switch(opts, args.env, on, by, reason)
    except (Stop, GitError, Declined) as e:
        return runopts.stopped(e, args.switch)
    where = f" environment {args.env}" if args.env else ""
    if on:
        print(f"halted{where}: {halted_reason(done.halt)} ({done.path}, {done.sha[:7]})")
    else:
        print(f"unhalted{where} by {by}" + (f" ({reason})" if reason else "")
              + f": removed {done.path} ({done.sha[:7]}); it was {halted_reason(done.halt)}")
    if done.pushed:
        print(f"pushed to {opts.remote}")
    said = (halted_reason(done.halt) if on else
            f"unhalted by {by}" + (f" ({reason})" if reason else "")
            + f"; it was {halted_reason(done.halt)}")
    notifying.after_switch(opts, args.switch, args.env, said, done.sha, done.pushed, by)
    return 0
