"""``rollout plan``: what a change does to flags and rollouts, for review in a pull request."""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime

from runner import git
from runner.cli.commands import SUMMARIES
from runner.cli.common import UsageError, add_repo_argument, print_json, repo_root, safe_markdown
from runner.cli.runopts import parse_now
from runner.model import RolloutPlan
from runner.review.plan import compare
from runner.review.plan_markdown import plan_markdown
from runner.review.plan_traffic import Measured, measure
from runner.review.snapshot import load_revision, load_working_tree


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan", help=SUMMARIES["plan"],
        description="Compare two revisions: flags added, removed and changed field by field, "
        "rollouts started, changed and stopped, the share served before and after, and the "
        "risks. Exit 0 when the head is valid, 1 when it does not validate, 2 on usage errors.")
    add_repo_argument(p)
    p.add_argument("--base", metavar="REV",
                   help="the revision before (default: the merge base of HEAD and the default "
                   "branch)")
    p.add_argument("--head", metavar="REV", help="the revision after (default: the working tree)")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.add_argument("--now", metavar="ISO8601",
                   help="the time expected timelines start from (default: now)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root = repo_root(args)
    # the same checks as every --now: an empty one (an unset variable) is an error too
    now = parse_now(args.now) if args.now is not None else None
    if not git.is_repository(root):
        raise UsageError(f"{root}: not a git repository")

    def sha_of(rev: str) -> str:
        sha = git.resolve_commit(root, rev)
        if sha is None:
            raise UsageError(f"{rev!r}: no such revision")
        return sha

    base_rev = args.base
    if base_rev is None:
        branch = git.default_branch(root)
        if branch is None:
            raise UsageError("no default branch found (origin/HEAD, main or master): give --base")
        base_sha = git.merge_base(root, "HEAD", branch)
        if base_sha is None:
            raise UsageError(f"HEAD and {branch} have no merge base: give --base")
        base_rev = f"merge-base({branch})"
    else:
        base_sha = sha_of(base_rev)
    try:
        base = load_revision(root, base_rev, base_sha)
        head = (load_revision(root, args.head, sha_of(args.head)) if args.head
                else load_working_tree(root))
        at = now or datetime.now().astimezone()
        env = dict(os.environ)  # read once: url_env and bearer_token_env of traffic.query

        def traffic(plan: RolloutPlan) -> Measured | None:
            return measure(plan, root, env, at)

        report = compare(base, head, at, traffic)
        # at most one pull-request comment long: cut short, lists say how many were left out
        text = (None if args.format == "json"
                else safe_markdown(plan_markdown(json.loads(json.dumps(report)))))
    except git.GitError as e:  # a revision git cannot read (a missing or damaged object)
        raise UsageError(str(e)) from e
    if text is None:
        print_json(report)
    else:
        print(text, end="")
    return 1 if head.problems else 0
