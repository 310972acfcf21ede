"""``rollout advance``: one pass over the rollouts: check gates, step, roll back, commit."""

from __future__ import annotations

import argparse

from runner.cli import notifying, publishing, runopts
from runner.cli.commands import SUMMARIES
from runner.git import GitError
from runner.reconcile.runs import Stop, advance, gates_evaluator


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "advance", help=SUMMARIES["advance"],
        description="One pass over the rollout plans: evaluate the health gates, then advance, "
        "hold, pause or roll back, each change a commit. A rollout whose metrics could not be "
        "read (a missing metrics file, a failing source) is a warning at every run "
        "(::warning under GitHub Actions, a $GITHUB_STEP_SUMMARY line). Exit 0 done, 1 stopped "
        "by a problem (nothing written), or a rollout is paused because its metrics could not "
        "be read (at every run until `rollout resume`), 2 usage, 3 internal error, 4 at least "
        "one rollout was rolled back, "
        "5 a rollout was rolled back and --publish failed (the rollback is in git, not where "
        "applications read their flags; an ::error line names the flags). A --publish failure "
        "without a rollback exits 1.")
    p.add_argument("flags", nargs="*", metavar="FLAG", help="only these rollouts (default: all)")
    runopts.add_change_arguments(p)
    runopts.add_env_argument(p, acting=False)
    p.add_argument("--shard", metavar="I/N",
                   help="only the rollouts of shard I of N (I from 0 to N-1), chosen by a stable "
                   "hash (SHA-256) of the plan's name: N runners with 0/N ... N-1/N, e.g. a GitHub "
                   "Actions matrix, share the rollouts, each taken by exactly one")
    p.add_argument("--dry-run", action="store_true",
                   help="decide and print, write and commit nothing")
    publishing.add_publish_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    shard = runopts.parse_shard(args.shard)
    opts = runopts.options(args, flags=tuple(args.flags), dry_run=args.dry_run, shard=shard)
    # checked before the run: a --publish that cannot work (empty, a folder, a FIFO, a
    # device, a bad branch name) must not stop it after commits
    targets = publishing.plan_targets("--publish", args.publish, opts.root,
                                      push_branch=args.branch if args.push else None)
    try:
        rep = advance(opts, gates_evaluator(opts.root, opts.env))
    except (Stop, GitError) as e:
        return runopts.stopped(e, "advance")
    code = runopts.report(rep, opts)
    failed = None
    if targets and not args.dry_run:
        failed = publishing.publish_plan(opts.root, targets, rep.head, opts.env,
                                         command="advance", option="--publish", push=opts.push,
                                         remote=opts.remote, rolled_back=rep.rolled_back)
    notifying.after_run(opts, rep)  # never fails the run
    return failed if failed is not None else code
