"""``rollout demo``: the whole story offline in a temporary repository (see runner.onboarding.demo)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.cli.commands import SUMMARIES
from runner.cli.common import UsageError
from runner.onboarding.demo import DemoFailed, demo
from runner.onboarding.demo_environments import demo_environments
from runner.safetext import safe_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help=SUMMARIES["demo"],
        description="In a temporary git repository: a flag with a safe plan and file metrics, "
        "advanced on a simulated clock; a bad metrics window rolls it back in a commit; a "
        "git revert of the rollback is held by the runner; then the git log audit and the "
        "flag's answer for a few users at each stage. Exit 0 when the story ran as told, 1 "
        "when a step did not, 2 on usage errors.")
    p.add_argument("--environments", action="store_true",
                   help="play the promotion instead: staging walks to 100 %%, production waits "
                   "out the soak and a person's approval, then walks (docs/environments.md)")
    p.add_argument("--keep", type=Path, metavar="DIR",
                   help="play it in DIR (new or empty) and keep the repository")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    keep: Path | None = args.keep
    if keep is not None and keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
        raise UsageError(f"--keep {keep}: must be a new or empty folder")
    try:
        if args.environments:
            return demo_environments(keep, out=lambda line: print(line, flush=True))
        return demo(keep, out=lambda line: print(line, flush=True))
    except DemoFailed as e:
        print(safe_line(f"rollout demo: {e}"), file=sys.stderr)
        return 1
