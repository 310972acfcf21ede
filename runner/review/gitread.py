"""Small, explicit git reads: one subprocess each, no GitPython objects walked commit by commit."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path


class GitError(Exception):
    """A git command failed; the message is git's own first line."""


def git_env() -> dict[str, str]:
    # A hook may leak GIT_DIR / GIT_INDEX_FILE; every read here names its repository itself.
    env = {k: v for k, v in os.environ.items()
           if k not in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_PREFIX")}
    env.setdefault("LC_ALL", "C")
    return env


def run_git(root: Path, args: Sequence[str], *, check: bool = True,
            text: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, env=git_env(),
                          text=text if input is None else False, input=input, check=False)
    if check and proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        first = next((line for line in err.splitlines() if line.strip()), "")
        raise GitError(f"git {' '.join(args[:2])}: {first or 'failed'}")
    return proc


def is_repository(root: Path) -> bool:
    return run_git(root, ["rev-parse", "--git-dir"], check=False).returncode == 0


def resolve_commit(root: Path, rev: str) -> str | None:
    proc = run_git(root, ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
                   check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def default_branch(root: Path) -> str | None:
    """The remote's default branch when known (origin/HEAD), else main/master, local or remote."""
    proc = run_git(root, ["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"],
                   check=False)
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip()
    for candidate in ("origin/main", "origin/master", "main", "master"):
        if resolve_commit(root, candidate):
            return candidate
    return None


def merge_base(root: Path, a: str, b: str) -> str | None:
    proc = run_git(root, ["merge-base", a, b], check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None
