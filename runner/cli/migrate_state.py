"""``rollout migrate-state``: move the state files to the fanout layout in one commit."""

from __future__ import annotations

import argparse

from runner.cli.commands import SUMMARIES
from runner.cli.common import add_repo_argument, gitops_root

DESCRIPTION = (
    "Move every rollouts/<plan>.state.json to <rollouts_dir>-state/<xx>/<plan>.state.json "
    "(xx: the first two hex digits of the SHA-256 of the plan's name) and add state_layout = "
    "\"fanout\" to [tool.rollout] in pyproject.toml, in one commit of yours, so that each "
    "runner commit rewrites only small git trees however many rollouts there are. The runner "
    "reads the history through the move: no rollout is held for it. Push the commit as any "
    "other. With --environment NAME: upgrade to environments instead (docs/environments.md, "
    "Upgrading): every <plan>.state.json becomes <plan>.NAME.state.json with \"environment\": "
    "\"NAME\" added, and pyproject.toml declares NAME (the environments you declared there, "
    "committed or not, or [tool.rollout.environments.NAME] appended when it declares none), "
    "in one commit; the running rollouts go on in NAME, none is held. Exit 0 moved, 1 "
    "refused (already fanout, uncommitted changes, a bad pyproject.toml; nothing written), "
    "2 usage, 3 internal error.")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate-state", help=SUMMARIES["migrate-state"], description=DESCRIPTION)
    p.add_argument("--environment", metavar="NAME",
                   help="give every state file without an environment this one, and declare "
                   "it (upgrading a repository to environments), instead of the fanout move")
    add_repo_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from runner.reconcile.migrate import migrate_environment, migrate_state  # start-up

    if args.environment is not None:
        done = migrate_environment(gitops_root(args), args.environment)
        print(f"moved {done.moved} state file(s) to the environment {args.environment} in "
              f"{(done.commit or '')[:7]}; push it as any other commit")
        return 0
    done = migrate_state(gitops_root(args))
    print(f"moved {done.moved} state file(s) to {done.folder}/ in "
          f"{(done.commit or '')[:7]}; push it as any other commit")
    return 0
