"""``rollout issue``: open (or comment on) the GitHub issue of each rolled-back rollout."""

from __future__ import annotations

import argparse
import os
import sys

from runner.cli.commands import SUMMARIES
from runner.cli.common import UsageError, add_repo_argument, gitops_root, safe_markdown
from runner.git import GitError
from runner.integrations.github_issues import (
    REPORT_LIMIT,
    IssueError,
    find_rollback,
    from_environment,
    record,
)
from runner.review.incident_read import rollback_report
from runner.safetext import safe_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "issue", help=SUMMARIES["issue"],
        description="For each FLAG whose rollout is rolled back: open an issue titled "
        "'Rollout rolled back: FLAG' with the label (default rollout-rollback), or, when one "
        "is open, comment on it; a rollback already recorded there changes nothing. Reads the "
        "rollback from git (a checkout with history) and calls the GitHub REST API with "
        "GITHUB_TOKEN, GITHUB_REPOSITORY and GITHUB_API_URL (default https://api.github.com). "
        "Exit 0 done (also when no FLAG is rolled back), 1 an issue could not be opened or "
        "updated, 2 usage.")
    p.add_argument("flags", nargs="*", metavar="FLAG",
                   help="flags, or comma-separated lists of them (advance's rolled_back output)")
    p.add_argument("--label", default="rollout-rollback", metavar="NAME",
                   help="the label the issues carry and are found by (default: rollout-rollback)")
    add_repo_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root = gitops_root(args)
    flags = list(dict.fromkeys(f.strip() for arg in args.flags for f in arg.split(",")
                               if f.strip()))
    if not args.label.strip() or len(args.label) > 50 or "," in args.label:
        raise UsageError("--label: a name of 1 to 50 characters, no comma")
    if not flags:
        print("no rolled back rollout: no issue to open")
        return 0
    env = dict(os.environ)
    try:
        gh = from_environment(env)
    except IssueError as e:
        print(safe_line(f"rollout issue: {e}"), file=sys.stderr)
        return 1
    code = 0
    for flag in flags:
        try:
            rb = find_rollback(root, flag, env)
            if rb is None:
                print(safe_line(f"{flag}: not rolled back; no issue"))
                continue
            report = _safe(rollback_report(root, flag, rb.sha, REPORT_LIMIT))
            print(safe_line(f"{flag}: {record(gh, rb, args.label, report)}"))
        except (IssueError, GitError) as e:
            print(safe_line(f"rollout issue: {flag}: {e}"), file=sys.stderr)
            code = 1
    return code


def _safe(report: str | None) -> str | None:
    return None if report is None else safe_markdown(report)
