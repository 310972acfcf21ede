"""What the subcommands share: the usage error, the repository argument, output formats."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_repo_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", type=Path, default=Path("."), metavar="DIR",
                   help="the GitOps repository (default: the current folder)")


class UsageError(Exception):
    """A mistake in how the command was called: exit 2 with the message."""


def repo_root(args: argparse.Namespace) -> Path:
    root: Path = args.repo
    if not root.is_dir():
        raise UsageError(f"{root}: no such folder")
    return root


def gitops_root(args: argparse.Namespace) -> Path:
    """``--repo`` as a Rollout Runner repository: a folder holding the flags or rollouts
    folder. Anything else is a usage error, so that a wrong ``--repo`` is never read as a
    repository without flags (``rollout build`` would publish an artifact serving nothing)."""
    from runner.load import load_config

    root = repo_root(args)
    config, _ = load_config(root)  # its problems are reported by the command's own check
    if not (root / config.flags_dir).is_dir() and not (root / config.rollouts_dir).is_dir():
        raise UsageError(f"{root}: no {config.flags_dir}/ or {config.rollouts_dir}/ folder; "
                         "not a Rollout Runner repository (see --repo)")
    return root


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")
