"""What the subcommands share: the repository argument, output formats, one-line failures.

``UsageError`` lives in :mod:`runner.errors` (imported here too, where commands have always
found it). Anything derived from input reaches the terminal through
``runner.safetext.safe_line``."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from runner.errors import RolloutError, UsageError
from runner.files import target_problem
from runner.safetext import escape_char, safe_line

__all__ = ["UsageError", "add_repo_argument", "cannot_show", "check_target", "debug",
           "gitops_root", "print_json", "repo_root", "safe_markdown"]

_UNSAFE_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
                             "\u2066-\u2069]")
_COMMAND_LINE = re.compile(r"^([ \t]*)(::|##\[)", re.MULTILINE)


def safe_markdown(text: str) -> str:
    """A multi-line Markdown document (a pull-request comment) safe to print in a CI log:
    control characters other than line breaks and tabs escaped, and a line that GitHub
    Actions would run as a workflow command (``::error``...) escaped with a backslash,
    which Markdown renders as nothing."""
    if _UNSAFE_IN_TEXT.search(text) is not None:
        text = _UNSAFE_IN_TEXT.sub(escape_char, text)
    return _COMMAND_LINE.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", text)


def debug() -> bool:
    return os.environ.get("ROLLOUT_DEBUG") == "1"


def cannot_show(command: str, what: str, e: RolloutError) -> int:
    """A surface (status, history, eval, incident) met repository content it cannot show
    (a :class:`RolloutError` the code raised on purpose): one line naming what, exit 1. Any
    other exception is a bug and reaches ``main``'s boundary as one."""
    if debug():
        raise e
    detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    print(safe_line(f"rollout {command}: {what}: {detail} (`rollout validate` may say more; "
                   "ROLLOUT_DEBUG=1 shows a traceback)", limit=1000), file=sys.stderr)
    return 1


def check_target(option: str, path: Path | str, what: str = "a file") -> None:
    """A path the command will write a file to: a usage error, before anything is done,
    when it exists and is not a regular file (symlinks followed), or is empty."""
    if not str(path).strip():
        raise UsageError(f"{option} '': give the path of {what}")
    problem = target_problem(path)
    if problem is not None:
        raise UsageError(f"{option} {safe_line(path)}: {problem}; give the path of {what}")


def add_repo_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", type=Path, default=Path("."), metavar="DIR",
                   help="the GitOps repository (default: the current folder)")


def repo_root(args: argparse.Namespace) -> Path:
    root: Path = args.repo
    if not root.is_dir():
        raise UsageError(f"{root}: no such folder")
    return root


def gitops_root(args: argparse.Namespace) -> Path:
    """``--repo`` as a Rollout Runner repository: a folder holding the flags or rollouts
    folder. Anything else is a usage error, so that a wrong ``--repo`` is never read as a
    repository without flags (``rollout build`` would publish an artifact serving nothing)."""
    # start-up: the config's loader brings jsonschema, ~100 ms of `rollout history` and ~65 ms
    # of `rollout incident` (both import this module, neither calls this)
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
