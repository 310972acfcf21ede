"""The person commands: ``rollback``, ``pause``, ``resume``, ``retry`` (one commit each)."""

from __future__ import annotations

import argparse
from pathlib import Path

from runner.cli import notifying, publishing, runopts
from runner.cli.commands import SUMMARIES
from runner.git import GitError
from runner.reconcile.decide import Action, Refused
from runner.reconcile.runs import Stop, apply_request, requester
from runner.safetext import safe_line

#: Each person command's description (its one-line help: runner/cli/commands.py).
DESCRIPTIONS = {
    "rollback": ("Roll the rollout back to 0 % at once and pause the running rollouts of the "
                 "flags that require it."),
    "pause": "Stop the rollout at its current percentage until `rollout resume`.",
    "resume": ("Continue a paused (or held) rollout: the analysis of its current step starts "
               "again now, under the current plan."),
    "retry": ("Start a rolled back (or paused) rollout again from its first step; no edit of "
              "the plan needed."),
}


def register(sub: argparse._SubParsersAction, name: str) -> None:
    module = __import__(f"runner.cli.{name}", fromlist=["run"])
    p = sub.add_parser(name, help=SUMMARIES[name],
                       description=DESCRIPTIONS[name] + " Exit 0 done, 1 refused or "
                       "stopped (nothing written) or --publish failed, 2 usage, 3 internal "
                       "error" + (", 5 rolled back but --publish failed (the rollback is in "
                                  "git, not where applications read their flags)"
                                  if name == "rollback" else "") + ".")
    p.add_argument("flag", metavar="FLAG")
    p.add_argument("--reason", default="", metavar="TEXT", help="why, recorded in the commit")
    runopts.add_change_arguments(p)
    runopts.add_env_argument(p)
    publishing.add_publish_argument(p)
    p.set_defaults(run=module.run, request=name)


def run(args: argparse.Namespace) -> int:
    opts = runopts.options(args)
    targets = publishing.plan_targets("--publish", args.publish, opts.root,
                                      environment=getattr(args, "env", None),
                                      push_branch=args.branch if args.push else None)
    # recorded in the state, the commit's body and trailers, and printed: one safe line
    reason = safe_line(args.reason.strip())
    try:
        rep = apply_request(opts, Action(args.request), args.flag,
                            safe_line(requester(opts.env, Path.cwd())), reason)
    except (Stop, GitError, Refused) as e:
        return runopts.stopped(e, args.request)
    runopts.report(rep, opts)
    failed = None
    if targets:
        failed = publishing.publish_plan(opts.root, targets, rep.head, opts.env,
                                         command=args.request, option="--publish",
                                         push=opts.push, remote=opts.remote,
                                         rolled_back=rep.rolled_back)
    notifying.after_run(opts, rep)  # never fails the command
    return failed if failed is not None else 0
