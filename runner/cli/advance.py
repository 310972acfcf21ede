"""``rollout advance``: one pass over the rollouts: check gates, step, roll back, commit."""

from __future__ import annotations

import argparse
import os

from runner.cli import runopts


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "advance", help="check the gates of every rollout and commit the next step or a rollback",
        description="One pass over the rollout plans: evaluate the health gates, then advance, "
        "hold, pause or roll back, each change a commit. Exit 0 done, 1 stopped by a problem "
        "(nothing written), 2 usage, 3 internal error, 4 at least one rollout was rolled back.")
    p.add_argument("flags", nargs="*", metavar="FLAG", help="only these rollouts (default: all)")
    runopts.add_change_arguments(p)
    p.add_argument("--dry-run", action="store_true",
                   help="decide and print, write and commit nothing")
    p.add_argument("--publish", metavar="PATH",
                   help="after the run, write the resolved flag artifact to PATH when it changed")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from runner.cli.common import check_target
    from runner.git import GitError
    from runner.reconcile.runs import Stop, advance, gates_evaluator

    # checked before the run: a --publish that cannot work (empty, a folder, a FIFO, a
    # device) must not stop it after commits
    if args.publish is not None:
        check_target("--publish", args.publish, "the artifact file")
    opts = runopts.options(args, flags=tuple(args.flags), dry_run=args.dry_run)
    try:
        rep = advance(opts, gates_evaluator(opts.root, dict(os.environ)))
    except (Stop, GitError) as e:
        return runopts.stopped(e, "advance")
    code = runopts.report(rep, dry_run=args.dry_run)
    if args.publish and not args.dry_run:
        from runner.cli.publishing import publish

        if not publish(opts.root, args.publish, rep.head):
            return 1
    return code


