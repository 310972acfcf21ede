"""``rollout init [DIR]``: scaffold a new GitOps repository that validates at once."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from runner import REPOSITORY, __version__
from runner.cli.common import UsageError
from runner.onboarding.scaffold import Exists, scaffold
from runner.safetext import safe_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init", help="scaffold a new GitOps repository (flags, a plan, schemas, workflows)",
        description="Write flags/ with an example flag, rollouts/ with a safe plan for it, the "
        "JSON Schemas, GitHub Actions workflows (using the rollout-runner action), a "
        "pre-commit config (the rollout-validate hook at this version's tag) and "
        "[tool.rollout] in pyproject.toml. Refuses to overwrite: when any of these files "
        "exists, exit 1 naming it and write nothing. Exit 2 on usage errors.")
    major = __version__.split(".")[0]
    p.add_argument("--install", metavar="SPEC",
                   help=f"have the workflows set up Python and pip-install SPEC instead of "
                   f"using the released action (uses: {REPOSITORY}@v{major}); e.g. "
                   f"rollout-runner=={__version__}, or git+https://github.com/ORG/"
                   f"rollout-runner@v{__version__} where you host it")
    p.add_argument("dir", nargs="?", type=Path, default=Path("."), metavar="DIR",
                   help="where (default: the current folder; created when missing)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root: Path = args.dir
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: not a folder")
    install = None
    if args.install is not None:
        # it lands inside a double-quoted shell word on a YAML line of each workflow
        if not re.fullmatch(r"[A-Za-z0-9._:/@+=<>!~,\-\[\]#%]+", args.install):
            raise UsageError(f"--install {args.install!r}: a pip requirement or URL without "
                             "spaces, quotes or shell characters")
        install = f'"{args.install}"'
    try:
        written = scaffold(root, install)
    except Exists as e:
        print(safe_line(f"rollout init: {e}"), file=sys.stderr)
        return 1
    for path in written:
        print(f"created {path}")
    print(f"\nnext: cd {root} && git init && rollout validate && git add -A && "
          "git commit -m 'Rollout Runner'", file=sys.stderr)
    return 0
