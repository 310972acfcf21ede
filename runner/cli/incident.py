"""``rollout incident``: a report of each rollback of a flag, from git alone."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from runner import git
from runner.cli.commands import SUMMARIES
from runner.cli.common import UsageError, add_repo_argument, cannot_show, repo_root, safe_markdown
from runner.errors import ContentError
from runner.load.layout import folders, plans_of
from runner.review.incident import Incident
from runner.review.incident_files import plan_reports, write_reports
from runner.review.incident_markdown import incident_markdown
from runner.review.incident_read import UnknownBranch, read_incidents
from runner.review.since import parse_since
from runner.safetext import safe_line
from runner.timefmt import utc_iso_seconds

_FLAG = re.compile(r"[a-z][a-z0-9_]*")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return n


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "incident", help=SUMMARIES["incident"],
        description="For each rollback of FLAG: when exposure began, each step, the first "
        "failing evaluation and its values, the rollback commit (automatic or requested by a "
        "person), when the artifact was published (with --published-branch), the reverts, "
        "holds and resumes that followed, time to rollback, the share of users exposed and "
        "who acted; then the post-rollback checklist of what git cannot answer. Exit 0 (also "
        "when FLAG has no rollback in range), 1 unknown flag, a report in the way of --write, "
        "or history that cannot be read; 2 usage errors.")
    p.add_argument("flag", metavar="FLAG")
    add_repo_argument(p)
    p.add_argument("--since", metavar="DATE",
                   help="only rollbacks at or after DATE (as `rollout history --since`: an ISO "
                   "8601 date or time, or '2 weeks ago', 3d, yesterday); each report still "
                   "reads its rollout from the start")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.add_argument("--published-branch", metavar="NAME",
                   help="the branch a `--publish branch:NAME` target writes (or origin/NAME): "
                   "when each rollback was published. Without it the time is 'not recorded' "
                   "(a dir: or file: target leaves no trace in git)")
    p.add_argument("--users", type=_positive, metavar="N",
                   help="the size of the user base, to turn the share exposed into users")
    p.add_argument("--limit", type=_positive, metavar="N", help="only the N newest rollbacks")
    p.add_argument("--write", action="store_true",
                   help="write each report to docs/incidents/<date>-<flag>.md (the date of the "
                   "rollback, UTC) instead of printing it; nothing is committed")
    p.add_argument("--force", action="store_true",
                   help="with --write, replace a report that differs (one edited by hand)")
    p.set_defaults(run=run)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_since(value, datetime.now(UTC))
    except ValueError as e:
        raise UsageError(f"--since {safe_line(repr(value), 200)}: {e}") from None


def _fail(message: str) -> int:
    print(safe_line(f"rollout incident: {message}", limit=1000), file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    if args.force and not args.write:
        raise UsageError("--force goes with --write")
    since = _since(args.since)
    root = repo_root(args)
    flag = args.flag
    if not _FLAG.fullmatch(flag):
        return _fail(f"no flag {flag!r}: a flag key is lowercase letters, digits and _")
    flags_dir, rollouts_dir = folders(root)
    names = plans_of(root, rollouts_dir, flag)
    try:
        entries, incidents = read_incidents(
            root, flag, flags_dir=flags_dir, rollouts_dir=rollouts_dir, plan_names=names,
            published_branch=args.published_branch, users=args.users, since=since)
    except UnknownBranch as e:
        raise UsageError(f"--published-branch {safe_line(repr(args.published_branch))}: {e}"
                         ) from None
    except git.GitError as e:
        if not git.is_repository(root):
            raise UsageError(f"{root}: not a git repository") from e
        raise UsageError(str(e)) from e
    except ContentError as e:  # a commit the report cannot read: one line, exit 1
        return cannot_show("incident", "the history cannot be read", e)
    if not entries and not names and not any(
            (root / flags_dir / f"{flag}{ext}").is_file() for ext in (".yaml", ".yml")):
        return _fail(f"no flag or rollout {flag!r} in this repository or its history")
    if args.limit:
        incidents = incidents[: args.limit]
    when = f"since {utc_iso_seconds(since)}" if since else "in its history"
    if not incidents:
        message = safe_line(f"no rollback of {flag} {when}")
        if args.format == "json" and not args.write:
            _json({"flag": flag, "since": utc_iso_seconds(since), "incidents": []})
            print(f"rollout incident: {message}", file=sys.stderr)
        else:
            print(message)
        return 0
    if args.write:
        return _write(root, incidents, args.force)
    if args.format == "json":
        _json({"flag": flag, "since": utc_iso_seconds(since),
               "incidents": [i.as_dict() for i in incidents]})
    else:
        sys.stdout.write(safe_markdown(incident_markdown(incidents)))
    return 0


def _json(doc: dict[str, object]) -> None:
    """As ``rollout history --format json``: ASCII, so that no character of a commit (a
    line separator, a bidirectional override) reaches a terminal or a CI log raw."""
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n")


def _write(root: Path, incidents: list[Incident], force: bool) -> int:
    reports, problems = plan_reports(root, incidents,
                                     lambda i: safe_markdown(incident_markdown([i])), force)
    if problems:
        for p in problems:
            print(safe_line(f"rollout incident: {p}", limit=1000), file=sys.stderr)
        return 1
    for path, outcome in write_reports(root, reports):
        note = {"written": " (not committed: fill in the checklist, then commit it)",
                "replaced": " (not committed)"}.get(outcome, "")
        print(f"{path}: {outcome}{note}")
    return 0
