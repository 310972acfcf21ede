"""``rollout build``: render the resolved artifact (or a flagd flag file) from the repository."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from runner.cli.commands import SUMMARIES
from runner.cli.common import add_repo_argument, check_target, gitops_root
from runner.cli.environment_option import add_env_argument, one_environment
from runner.evaluate.flagd import BUNDLED_SCHEMAS, flagd_problems
from runner.evaluate.render import render_artifact
from runner.files import write_atomic
from runner.git import GitError, resolve_commit
from runner.load import check_repository
from runner.safetext import safe_line

SCHEMA_DIR_VAR = "ROLLOUT_FLAGD_SCHEMAS"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build", help=SUMMARIES["build"],
        description="Resolve every flag (rollout percentages from the rollout state files "
        "applied) into one JSON document. Same input, same bytes; written atomically and "
        "only when it changed. Exit 0 on success, 1 when the repository is invalid or --out "
        "cannot be written (nothing written), 2 on usage errors.")
    add_repo_argument(p)
    p.add_argument("--out", type=Path, metavar="PATH",
                   help="write here (atomically) instead of to standard output")
    p.add_argument("--format", choices=("native", "flagd"), default="native",
                   help="native: for FlagClient (default); flagd: a flagd flag-definition file")
    add_env_argument(p, "the flags as served")
    p.add_argument("--source-commit", metavar="SHA",
                   help="the commit recorded in the artifact (default: the repository's HEAD)")
    p.add_argument("--flagd-schemas", type=Path, metavar="DIR",
                   default=os.environ.get(SCHEMA_DIR_VAR) or None,
                   help="with --format flagd: validate against flagd's flags.json and "
                   f"targeting.json in DIR before writing (default: ${SCHEMA_DIR_VAR}, else "
                   "the copy of flagd's schemas shipped with rollout-runner)")
    p.set_defaults(run=run)


def head_commit(root: Path) -> str | None:
    """The checked-out commit, or None outside a git repository (or without git)."""
    try:
        return resolve_commit(root, "HEAD")
    except GitError:  # no git program
        return None


def run(args: argparse.Namespace) -> int:
    root = gitops_root(args)
    if args.out is not None:  # a folder, a FIFO, a device: refused before any work
        check_target("--out", args.out)
    checked = check_repository(root)
    if checked.repository is None:
        for problem in checked.problems:
            print(safe_line(problem, limit=2000), file=sys.stderr)
        n = len(checked.problems)
        print(f"rollout build: {n} problem{'s' * (n != 1)} found; nothing written",
              file=sys.stderr)
        return 1
    environment = one_environment(checked.repository.config, args.env)
    commit = args.source_commit or head_commit(root)
    # rendering a checked repository raises nothing on purpose (the checks refuse what JSON
    # cannot hold, NaN and infinities); a failure here is a bug, for main's boundary
    data = render_artifact(checked.repository.for_environment(environment),
                           source_commit=commit, fmt=args.format, environment=environment)
    if args.format == "flagd":
        # a document flagd would reject is never written (no schema in --flagd-schemas DIR:
        # FlagdSchemaMissing, a usage error)
        problems = flagd_problems(json.loads(data), args.flagd_schemas or BUNDLED_SCHEMAS)
        if problems:
            for line in problems:
                print(safe_line(f"flagd schema: {line}", limit=2000), file=sys.stderr)
            print("rollout build: the flagd export breaks flagd's schema; nothing written",
                  file=sys.stderr)
            return 1
    if args.out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    try:
        changed = write_atomic(args.out, data)
    except OSError as e:  # a folder that cannot exist or be written: said, not a crash
        print(safe_line(f"rollout build: cannot write {args.out}: {e.strerror or e}"),
              file=sys.stderr)
        return 1
    digest = json.loads(data).get("digest") or json.loads(data)["metadata"]["version"]
    print(safe_line(f"{'wrote' if changed else 'unchanged'} {args.out} ({digest})"),
          file=sys.stderr)
    return 0
