"""``rollout history``: who changed a flag or its rollout, when, and on what evidence."""

from __future__ import annotations

import argparse
import calendar
import os
import re
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from runner.cli.common import add_repo_argument, repo_root
from runner.safetext import safe_line
from runner.timefmt import utc_iso_seconds


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "history", help="the audit trail of a flag (or all flags) from git",
        description="Every commit that touched the flag's file, its rollout plan or its state: "
        "time, author, action, percentage before and after, gate evidence, and which commit "
        "reverted which. Exit 0; 1 when FLAG has no history; 2 on usage errors.")
    p.add_argument("flag", nargs="?", metavar="FLAG", help="one flag (default: every flag)")
    add_repo_argument(p)
    p.add_argument("--since", metavar="DATE",
                   help="only commits after DATE: an ISO 8601 date or time (2026-01-01 is its "
                   "midnight UTC), or a time ago: '2 weeks ago', 2.weeks.ago, 3d, 12h, "
                   "yesterday; anything else is a usage error")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


_UNITS = {"s": "seconds", "sec": "seconds", "second": "seconds", "m": "minutes",
          "min": "minutes", "minute": "minutes", "h": "hours", "hour": "hours", "d": "days",
          "day": "days", "w": "weeks", "week": "weeks", "month": "months", "y": "years",
          "year": "years"}
_AGO = re.compile(r"(\d{1,7})[ .]*([a-z]+?)s?(?:[ .]+ago)?", re.IGNORECASE)


def parse_since(value: str, now: datetime) -> datetime:
    """``--since``: an ISO 8601 date or time, or a time before ``now`` (``2 weeks ago``,
    ``2.weeks.ago``, ``3d``, ``yesterday``). ValueError, saying what is accepted, for
    anything else: git's own parser reads nonsense as "now" and prints nothing."""
    text = value.strip()
    if text.lower() in ("yesterday", "today", "now"):
        return now - timedelta(days=1 if text.lower() == "yesterday" else 0)
    m = _AGO.fullmatch(text)
    if m is not None and (unit := _UNITS.get(m.group(2).lower())) is not None:
        n = int(m.group(1))
        try:
            if unit in ("months", "years"):
                months = n * (12 if unit == "years" else 1)
                year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
                day = min(now.day, calendar.monthrange(year, month + 1)[1])
                return now.replace(year=year, month=month + 1, day=day)
            return now - timedelta(**{unit: n})
        except (OverflowError, ValueError):
            raise ValueError("too long ago") from None
    from runner.load.assemble import parse_time

    try:
        return parse_time(text)
    except ValueError as e:
        if re.match(r"\d{4}-\d\d", text):  # a date, out of range: say so
            raise ValueError(f"not a usable ISO 8601 date or time ({e})") from None
        raise ValueError("not an ISO 8601 date or time, nor a time ago such as '2 weeks "
                         "ago', 2.weeks.ago, 3d or yesterday") from None


def _git_since(value: str | None) -> str | None:
    """``--since`` checked and handed to git as an exact UTC time (None: no limit)."""
    from runner.cli.common import UsageError

    if value is None:
        return None
    try:
        t = parse_since(value, datetime.now(UTC))
    except ValueError as e:
        raise UsageError(f"--since {safe_line(repr(value), 200)}: {e}") from None
    if t.year < 1970:  # before git's epoch: every commit
        return None
    return utc_iso_seconds(t)


#: Text fields of an entry (commit messages, names, reasons: what people wrote) and the list
#: fields of strings; each printed through safe_line.
_TEXT_FIELDS = ("action", "author", "email", "subject", "reason", "requested_by", "sha",
                "time", "reverts", "held_after_revert_of", "reverted_by_person", "reconciles")
_LIST_FIELDS = ("flags", "gates", "reverted_by")
_LINE_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
                          "\u2066-\u2069]|^\\s*(?:::|##\\[)", re.MULTILINE)


class _SafeLineView:
    """An entry whose text fields read as :func:`runner.safetext.safe_line` makes them."""

    def __init__(self, entry: Any) -> None:
        self._entry = entry

    def __getattr__(self, name: str) -> Any:
        from runner.safetext import safe_line

        value = getattr(self._entry, name)
        if name in _TEXT_FIELDS and isinstance(value, str):
            return safe_line(value)
        if name in _LIST_FIELDS and isinstance(value, list):
            return [safe_line(v) if isinstance(v, str) else v for v in value]
        return value


def _safe_line_entry(render: Callable[[Any], str]) -> Callable[[Any], str]:
    """``render`` (the text format), its every line one line of the output: an entry
    whose text has a stray line break, a control character, a line GitHub would run as a
    workflow command or an overlong field is rendered again from :class:`_SafeLineView`.
    The check costs one regular expression over the text, the common case nothing more."""
    def safe(e: Any) -> str:
        text = render(e)
        lines = (2 + bool(e.gates) + bool(e.reason) + bool(e.requested_by) + bool(e.reverts)
                 + len(e.reverted_by) + bool(e.held_after_revert_of))
        if (text.count("\n") + 1 != lines or len(text) > 400 * lines
                or _LINE_UNSAFE.search(text) is not None):
            text = render(_SafeLineView(e))
        return text
    return safe


def _text_pieces(entries: list[Any], render: Callable[[Any], str],
                 batch: int = 2000) -> Iterable[str]:
    """The text format in pieces, each entry rendered once (ahead, while git was writing,
    when it could be)."""
    for i in range(0, len(entries), batch):
        lines = [r[1] if (r := e.rendered) is not None and r[0] is render else render(e)
                 for e in entries[i: i + batch]]
        yield "\n".join(lines) + "\n"


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
    import gc

    from runner import git
    from runner.cli.common import UsageError, cannot_show
    from runner.errors import ContentError
    from runner.load import folders, plans_of
    from runner.review.audit import (
        history,
        json_pieces,
        render_json_entry,
        render_text_entry,
    )

    # a short-lived process building tens of thousands of objects without cycles: the
    # collector would only rescan them (about 10 % of the run on 20,000 commits)
    gc.disable()
    since = _git_since(args.since)
    root = repo_root(args)
    flags_dir, rollouts_dir = folders(root)
    names = plans_of(root, rollouts_dir, args.flag) if args.flag else []
    render = render_json_entry if args.format == "json" else _safe_line_entry(render_text_entry)
    try:
        entries = history(root, args.flag, since, flags_dir, rollouts_dir, names, render)
        pieces = json_pieces(entries) if args.format == "json" else _text_pieces(entries, render)
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
