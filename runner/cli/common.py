"""Helpers the subcommands share: the repository argument and output formats."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_repo_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", type=Path, default=Path("."), metavar="DIR",
                   help="the GitOps repository (default: the current folder)")


def repo_root(args: argparse.Namespace) -> Path:
    from runner.cli.main import UsageError

    root: Path = args.repo
    if not root.is_dir():
        raise UsageError(f"{root}: no such folder")
    return root


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")
