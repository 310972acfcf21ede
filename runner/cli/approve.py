"""``rollout approve FLAG``: a person's approval of the rollout's next step that needs one."""

from __future__ import annotations

import argparse

from runner.cli import runopts
from runner.cli.commands import SUMMARIES
from runner.git import GitError
from runner.reconcile.decide import Refused
from runner.reconcile.runs import Stop, apply_approval, approver
from runner.safetext import safe_line

DESCRIPTION = (
    "Approve the next step of the rollout that has approval: true; the rollout moves there "
    "at the next `rollout advance` whose gates pass after the current step's wait. One commit "
    "recording the approver in the state (approved_step, approved_by) and in the trailer "
    "Rollout-Approved-By; a `git revert` of it takes the approval back (and holds the "
    "rollout, as any person's change of a state). The approver is $GITHUB_ACTOR in GitHub "
    "Actions (GITHUB_ACTIONS=true), else the git identity, which proves nothing: when the "
    "plan lists approvers, it must be one of them. Exit 0 approved, 1 refused or stopped "
    "(nothing to approve, not an approver, a completed or rolled back rollout; nothing "
    "written), 2 usage, 3 internal error.")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("approve", help=SUMMARIES["approve"],
                       description=DESCRIPTION)
    p.add_argument("flag", metavar="FLAG")
    p.add_argument("--step", type=int, metavar="N",
                   help="the step being approved, counted from 1 as `rollout status` shows "
                   "(refused unless it is the next step that needs approval)")
    p.add_argument("--reason", default="", metavar="TEXT", help="why, recorded in the commit")
    runopts.add_change_arguments(p)
    runopts.add_env_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    opts = runopts.options(args)
    reason = safe_line(args.reason.strip())
    try:
        who = approver(opts.env, opts.root)
        who = type(who)(safe_line(who.name), who.verified, who.names)
        rep = apply_approval(opts, args.flag, who, reason, args.step)
    except (Stop, GitError, Refused) as e:
        return runopts.stopped(e, "approve")
    # an approval changes no served percentage: nothing to publish
    return runopts.report(rep, opts)
