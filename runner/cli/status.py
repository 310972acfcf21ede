"""``rollout status [FLAG]``: where each rollout is, from the committed state (no metrics read)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from runner.cli.common import add_repo_argument, gitops_root, print_json
from runner.safetext import safe_line

Renderer = Callable[[list[dict[str, Any]]], str]


def _text(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        steps = "/".join(f"{p}" for p in r["steps"])
        if not r["steps"]:  # an orphaned state: its plan is gone
            where = "orphaned, no plan"
        elif r["step_started_at"]:
            where = f"step {r['step'] + 1} of {len(r['steps'])}; {steps}"
        else:
            where = f"not started; {steps}"
        out.append(f"{r['flag']}: {r['phase']} at {r['current_percentage']}% ({where})")
        if r["next_step_at"]:
            out.append(f"  next step at {r['next_step_at']}")
        for g in r["last_gates"]:
            value = "none" if g["value"] is None else g["value"]
            dry = ", dry run" if g.get("dry_run") else ""
            out.append(f"  {g['name']} = {value} ({g['threshold']}{dry}): {g['verdict']}")
        if r["reason"]:
            out.append(f"  {r['reason']}")
    # states and gate details are input-derived: each printed line is one safe line
    return "\n".join(safe_line(line) for line in out) + ("\n" if out else "")


def _markdown(rows: list[dict[str, Any]]) -> str:
    from runner.review.status_markdown import status_markdown

    return status_markdown(rows)


#: --format name -> renderer of the status records.
RENDERERS: dict[str, Renderer] = {"text": _text, "markdown": _markdown}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show where each rollout is",
                       description="Each rollout's phase, percentage, step, next step time, last "
                       "gate results and reason, from the committed state. Exit 0, 1 when FLAG "
                       "has no rollout or the repository is invalid, 2 usage.")
    p.add_argument("flag", nargs="?", metavar="FLAG")
    add_repo_argument(p)
    p.add_argument("--format", choices=(*RENDERERS, "json"), default="text",
                   help="json: a list, or one object when FLAG is given")
    p.add_argument("--now", metavar="ISO8601", help="the time to judge pending plans by")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from runner.cli.runopts import parse_now
    from runner.load import check_repository
    from runner.reconcile.view import records

    root = gitops_root(args)
    now = parse_now(args.now)
    checked = check_repository(root)
    if checked.repository is None:
        for p in checked.problems:
            print(safe_line(p), file=sys.stderr)
        return 1
    rows = records(checked.repository, now)
    if args.flag:
        rows = [r for r in rows if r["flag"] == args.flag]
        if not rows:
            print(safe_line(f"rollout status: no rollout for flag {args.flag!r}"), file=sys.stderr)
            return 1
    if args.format == "json":
        print_json(rows[0] if args.flag else rows)
    else:
        sys.stdout.write(RENDERERS[args.format](rows))
    return 0
