"""``rollout publish``: put the flags as served where applications and flagd read them
(runner.reconcile.publish); each declared environment its own."""

from __future__ import annotations

import argparse
import os

from runner.cli.commands import SUMMARIES
from runner.cli.common import add_repo_argument, gitops_root
from runner.cli.publishing import TARGET_HELP, plan_targets, publish_plan
from runner.load.config import load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "publish", help=SUMMARIES["publish"],
        description="Render the native artifact and the flagd export of the repository at "
        "HEAD and publish them to each target, only when what they serve changed, and never "
        "over a newer publication (one made at a commit HEAD is an ancestor of). In a "
        "repository that declares environments each publishes its own (--env NAME: that "
        "one; the default targets: its [tool.rollout.environments.NAME] publish). Exit 0 "
        "published, unchanged, or a newer one in place (a warning line), 1 a target could "
        "not be published (the repository is invalid, a push kept being rejected, the "
        "publication in place is from a diverged history...), 2 usage, 3 internal error.")
    add_repo_argument(p)
    p.add_argument("--to", metavar="TARGET", nargs="+", action="extend", default=[],
                   help=f"where to publish; one or more of: {TARGET_HELP}. Required in a "
                   "repository without environments; with them, the default is each "
                   "environment's [tool.rollout.environments.NAME] publish")
    p.add_argument("--env", metavar="NAME",
                   help="publish this declared environment only (default: each of them, to "
                   "its own targets)")
    p.add_argument("--push", action="store_true",
                   help="push a branch target to the remote (compare-and-swap; a rejected push "
                   "is fetched, rebuilt if it serves something else, and retried)")
    p.add_argument("--remote", default="origin", metavar="NAME", help="default: origin")
    p.set_defaults(run=run, parser=p)


def run(args: argparse.Namespace) -> int:
    root = gitops_root(args)
    if not args.to and args.env is None and not load_config(root)[0].environments:
        args.parser.error("the following arguments are required: --to")  # as it always was
    plan = plan_targets("--to", args.to or [""], root, environment=args.env)
    failed = publish_plan(root, plan, None, dict(os.environ), command="publish", option="--to",
                          push=args.push, remote=args.remote)
    return 0 if failed is None else failed
