"""``rollout history``: who changed a flag or its rollout, when, and on what evidence."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from runner import git
from runner.cli.commands import SUMMARIES
from runner.cli.common import UsageError, add_repo_argument, cannot_show, repo_root
from runner.errors import ContentError
from runner.load.layout import folders, plans_of
from runner.review.audit import (
    history,
    json_pieces,
    of_environment,
    render_json_entry,
    render_text_entry,
    text_pieces,
)
from runner.review.since import HELP as SINCE_HELP
from runner.review.since import git_since, parse_since
from runner.safetext import safe_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "history", help=SUMMARIES["history"],
        description="Every commit that touched the flag's file, its rollout plan or its state: "
        "time, author, action, percentage before and after, gate evidence, and which commit "
        "reverted which. Exit 0; 1 when FLAG has no history; 2 on usage errors.")
    p.add_argument("flag", nargs="?", metavar="FLAG", help="one flag (default: every flag)")
    add_repo_argument(p)
    p.add_argument("--since", metavar="DATE",
                   help=f"only commits after DATE: {SINCE_HELP}")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--env", metavar="NAME",
                   help="only this environment's commits (repositories with "
                   "[tool.rollout.environments]), besides edits of flags and plans")
    p.set_defaults(run=run)


def _git_since(value: str | None) -> str | None:
    """``--since`` checked and handed to git as an exact UTC time (None: no limit)."""
    if value is None:
        return None
    try:
        t = parse_since(value, datetime.now(UTC))
    except ValueError as e:
        raise UsageError(f"--since {safe_line(repr(value), 200)}: {e}") from None
    return git_since(t)


def _write(pieces: Iterable[str]) -> None:
    """Each piece encoded as standard output would and written to its buffer: no string
    (and no encoded copy) of the whole output, megabytes for a long history."""
    out = getattr(sys.stdout, "buffer", None)
    if out is None or os.linesep != "\n":  # no bytes underneath, or newlines to translate
        for piece in pieces:
            sys.stdout.write(piece)
        return
    sys.stdout.flush()
    encoding, errors = sys.stdout.encoding, sys.stdout.errors or "strict"
    for piece in pieces:
        out.write(piece.encode(encoding, errors))
    out.flush()


def run(args: argparse.Namespace) -> int:
    # a short-lived process building tens of thousands of objects without cycles: the
    # collector would only rescan them (about 10 % of the run on 20,000 commits)
    gc.disable()
    since = _git_since(args.since)
    root = repo_root(args)
    if args.env is not None:  # an undeclared one is refused, as by every command
        from runner.cli.runopts import environments_of  # start-up: only with --env

        environments_of(args, root)
    flags_dir, rollouts_dir = folders(root)
    names = plans_of(root, rollouts_dir, args.flag) if args.flag else []
    render = render_json_entry if args.format == "json" else render_text_entry
    try:
        entries = history(root, args.flag, since, flags_dir, rollouts_dir, names, render)
        if args.env is not None:
            entries = of_environment(entries, args.env)
        pieces = json_pieces(entries) if args.format == "json" else text_pieces(entries)
        _write(pieces)
    except git.GitError as e:
        # asked only now that git failed: one git process less on every good run
        if not git.is_repository(root):
            raise UsageError(f"{root}: not a git repository") from e
        raise UsageError(str(e)) from e
    except ContentError as e:  # a commit or file the audit cannot read: one line, exit 1
        return cannot_show("history", "the history cannot be shown", e)
    if args.flag and not entries:
        print(safe_line(f"rollout history: no commit touches flag {args.flag!r}"), file=sys.stderr)
        return 1
    return 0
