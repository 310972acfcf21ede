"""Shared fixtures: real git repositories in temporary folders and real CLI subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE_PARTS = ("flags", "rollouts", "schemas", "pyproject.toml")


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    # the CLI under test is this checkout's, whatever is installed
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    env.update(
        GIT_AUTHOR_NAME="Test Human", GIT_AUTHOR_EMAIL="human@example.com",
        GIT_COMMITTER_NAME="Test Human", GIT_COMMITTER_EMAIL="human@example.com",
        GIT_CONFIG_NOSYSTEM="1", HOME=env.get("HOME", "/tmp"),
        # the tests act on a simulated clock (--now around 2026-01-15), maybe ahead of the
        # real one; tests of the refusal of a future --now set it to "0"
        ROLLOUT_ALLOW_FUTURE_NOW="1",
    )
    env.update(extra or {})
    return env


def run_cli(args: Sequence[str], cwd: Path | str, env: dict[str, str] | None = None,
            timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``rollout ARGS`` as a user would: a real process, this checkout's code."""
    return subprocess.run(
        [sys.executable, "-m", "runner", *args], cwd=cwd, env=cli_env(env), text=True,
        capture_output=True, timeout=timeout, input=input,
    )


def git(cwd: Path | str, *args: str, check: bool = True) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env=cli_env(), text=True,
                         capture_output=True, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {out.stderr}")
    return out.stdout.strip()


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


def make_example_repo(root: Path, message: str = "initial flags",
                      init_args: Sequence[str] = ()) -> Path:
    """Copy this project's own example flags and plans into ``root`` and commit them;
    ``init_args`` go to ``git init`` (``--object-format=sha256``, say)."""
    root.mkdir(parents=True)
    for part in EXAMPLE_PARTS:
        src = PROJECT / part
        if src.is_dir():
            shutil.copytree(src, root / part)
        else:
            shutil.copy2(src, root / part)
    git(root, "init", "-q", "-b", "main", *init_args)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return root


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    """A git repository holding a copy of this project's own example flags and plans."""
    return make_example_repo(tmp_path / "repo")


@pytest.fixture
def bare_remote(example_repo: Path, tmp_path: Path) -> Path:
    """A bare remote ``origin`` that ``example_repo`` tracks, for tests where pushing matters."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(example_repo, "remote", "add", "origin", str(remote))
    git(example_repo, "push", "-q", "-u", "origin", "main")
    return remote
