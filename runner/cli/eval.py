"""``rollout eval``: evaluate one flag for one context, as the SDK would in this environment."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from runner.cli.commands import SUMMARIES
from runner.cli.common import UsageError, add_repo_argument, cannot_show, gitops_root, print_json
from runner.cli.environment_option import add_env_argument, one_environment
from runner.evaluate.compile import ArtifactError, FlagSet
from runner.evaluate.environment import env_state
from runner.evaluate.resolution import FLAG_NOT_FOUND
from runner.load import check_repository
from runner.safetext import safe_line
from runner.sdk import FlagClient, load_artifact


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help=SUMMARIES["eval"],
        description="Evaluate FLAG for the context given, from the repository (or an artifact "
        "with --file), with this process's environment: EMERGENCY_SHUTDOWN and the flag's "
        "override variable apply. Exit 0 when evaluated, 1 when the flag is unknown or the "
        "repository or artifact is invalid, 2 on usage errors.")
    p.add_argument("flag", metavar="FLAG")
    p.add_argument("--key", metavar="ID", help="the targeting key (user id)")
    p.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE",
                   help="a context attribute, e.g. region=eu-west-1 (repeatable; values are "
                   "strings)")
    add_repo_argument(p)
    p.add_argument("--file", type=Path, metavar="PATH",
                   help="evaluate against this artifact (rollout build's output) instead")
    add_env_argument(p, "evaluate the flags as served")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


def _context(args: argparse.Namespace) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    for item in args.attr:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--attr {item!r}: expected NAME=VALUE")
        ctx[name] = value
    if args.key is not None:
        ctx["targetingKey"] = args.key
    return ctx


def run(args: argparse.Namespace) -> int:
    ctx = _context(args)
    if args.file is not None:
        if not args.file.exists():
            raise UsageError(f"--file {safe_line(args.file)}: no such file")
        if not args.file.is_file():  # a folder, a FIFO, a device: never read
            raise UsageError(f"--file {safe_line(args.file)}: not a regular file")
        try:
            flags = load_artifact(args.file)
        except ArtifactError as e:
            print(safe_line(f"rollout eval: {e}", limit=2000), file=sys.stderr)
            return 1
        if args.env is not None and flags.environment != args.env:
            made = flags.environment or "a repository without environments"
            print(safe_line(f"rollout eval: {args.file}: an artifact of {made}, not of "
                            f"{args.env}", limit=2000), file=sys.stderr)
            return 1
    else:
        checked = check_repository(gitops_root(args))
        if checked.repository is None:
            for problem in checked.problems:
                print(safe_line(problem, limit=2000), file=sys.stderr)
            return 1
        environment = one_environment(checked.repository.config, args.env)
        try:
            flags = FlagSet.from_repository(checked.repository.for_environment(environment))
        except ArtifactError as e:  # flags the checks let through that cannot be compiled
            return cannot_show("eval", "the repository's flags cannot be resolved", e)
    env = dict(os.environ)  # the one read of the environment: the client and the text share it
    r = FlagClient(flags, env=env).evaluate(args.flag, ctx)
    if r.error_code == FLAG_NOT_FOUND:
        known = ", ".join(sorted(flags.flags)) or "none"
        print(safe_line(f"rollout eval: no flag {args.flag!r} (flags: {known})", limit=2000),
              file=sys.stderr)
        return 1
    from runner.review.eval_text import decided_by

    # an unrecognised EMERGENCY_SHUTDOWN: the client logged its error (once) on stderr
    state = env_state(flags, env)
    by = decided_by(flags, env, state, args.flag, r)
    if args.format == "json":
        print_json({"flag": args.flag, "value": r.value, "variant": r.variant,
                    "reason": r.reason, "error_code": r.error_code, "details": r.details,
                    "context": ctx, "decided_by": by})
    else:
        detail = f" ({r.details})" if r.details else ""
        print(safe_line(f"{args.flag} = {json.dumps(r.value)}  variant {r.variant}  reason "
                       f"{r.reason}{detail}", limit=2000))
        if by is not None:
            print(safe_line(f"  decided by the {by}" if by.startswith("kill switch")
                            else f"  decided by {by}", limit=2000))
    return 0
