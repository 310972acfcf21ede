"""``rollout status [FLAG]``: where each rollout is, from the committed state (no metrics read)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.cli.commands import SUMMARIES
from runner.cli.common import (
    add_repo_argument,
    cannot_show,
    check_target,
    gitops_root,
    safe_markdown,
)
from runner.cli.runopts import add_env_argument, environments_of, parse_now
from runner.errors import RolloutError
from runner.files import write_atomic
from runner.load import check_repository
from runner.load.halt import halt_of
from runner.model import Repository
from runner.reconcile.freeze import stop_record
from runner.reconcile.view import kill_switches
from runner.review.status import FORMATS, render_status, selected, status_rows
from runner.safetext import safe_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help=SUMMARIES["status"],
                       description="Each rollout's phase, percentage, step, next step time (or "
                       "the end of the bake at 100 %), the step awaiting approval, last "
                       "gate results and reason, from the committed state. Exit 0, 1 when FLAG "
                       "has no rollout or the repository is invalid, 2 usage.")
    p.add_argument("flag", nargs="?", metavar="FLAG")
    add_repo_argument(p)
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="json: a list, or one object when FLAG is given; markdown: the "
                   "dashboard, with a timeline of each active rollout's current run (from "
                   "git history); openmetrics: gauges for a node-exporter textfile or a "
                   "Pushgateway")
    p.add_argument("--output", type=Path, metavar="FILE",
                   help="write to FILE atomically (a temporary file renamed over it, as "
                   "node-exporter's textfile collector needs) instead of standard output")
    p.add_argument("--now", metavar="ISO8601", help="the time to judge pending plans by")
    add_env_argument(p, acting=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root = gitops_root(args)
    now = parse_now(args.now)
    if args.output is not None:
        check_target("--output", args.output)
    checked = check_repository(root)
    if checked.repository is None:
        for p in checked.problems:
            print(safe_line(p, limit=2000), file=sys.stderr)
        return 1
    repo = checked.repository
    flags = selected(repo, args.flag or None)
    if args.flag and not flags:
        print(f"rollout status: no rollout for flag {safe_line(repr(args.flag), 200)}",
              file=sys.stderr)
        return 1
    # one rollout whose committed state makes no sense (a hand edit the checks let through)
    # is reported on its own line; the others are still shown, and the exit code is 1
    # the kill switch as a run in this environment would read it (the one read of it here)
    held, switch_error = kill_switches(repo, dict(os.environ))
    if switch_error is not None:
        print(f"rollout status: error: {safe_line(switch_error, 1000)}", file=sys.stderr)

    def stop_of(view: Repository) -> Mapping[str, Any] | None:  # its halt or freeze
        environment = view.environment
        return stop_record(view.config, halt_of(root, view.config, environment), environment, now)

    environments = environments_of(args, root)
    rows, unshowable = status_rows(repo, flags, now, args.format, held, environments, stop_of)
    if args.flag and environments and not rows and not unshowable:
        print(f"rollout status: no rollout for flag {safe_line(repr(args.flag), 200)} in "
              f"{', '.join(environments)} (its plan does not run there)", file=sys.stderr)
        return 1
    broken = 0
    for u in unshowable:
        broken += cannot_show("status", u.what, u.error)
    if args.format == "json" and args.flag and not rows:
        return 1
    # a flag in several environments: a list, one object per environment
    one = bool(args.flag) and not (repo.environments and len(rows) > 1)
    try:
        text = render_status(args.format, rows, root, repo, now, one=one)
    except RolloutError as e:
        return cannot_show("status", "the rollouts cannot be shown", e)
    if args.format == "markdown":
        text = safe_markdown(text)
    if args.output is None:
        sys.stdout.write(text)
        return 1 if broken else 0
    try:
        write_atomic(args.output, text.encode("utf-8"))
    except OSError as e:
        print(f"rollout status: --output {safe_line(args.output)}: cannot write: "
              f"{safe_line(e.strerror or str(e))} (nothing written)", file=sys.stderr)
        return 1
    return 1 if broken else 0
