"""Shared fixtures: real git repositories in temporary folders, and the CLI run as a real
process or, in modules marked ``cli_inprocess``, inside the test's own process."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

import runner
from runner.cli.main import main as cli_main

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE_PARTS = ("flags", "rollouts", "schemas", "pyproject.toml")

#: Variables read once per process (the crash seam's pauses) or that change what a process
#: prints when it fails (the traceback of ``ROLLOUT_DEBUG=1``): a run that sets one is a
#: real process, whatever the module asks.
PROCESS_VARIABLES = ("ROLLOUT_TEST_SLEEP", "ROLLOUT_DEBUG")


class _Mode:
    """Whether ``run_cli`` runs the CLI in this process: set per test from its
    ``cli_inprocess`` marker (``pytestmark = pytest.mark.cli_inprocess`` in a module)."""

    inprocess = False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cli_inprocess: run_cli calls the CLI's main() in the test's process "
        "(tests/conftest.py run_cli_inprocess) instead of starting `python -m runner`")


@pytest.fixture(autouse=True)
def _cli_mode(request: pytest.FixtureRequest) -> Iterator[None]:
    _Mode.inprocess = request.node.get_closest_marker("cli_inprocess") is not None
    yield
    _Mode.inprocess = False


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
            timeout: float = 120, input: str | None = None,
            inprocess: bool | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``rollout ARGS`` with this checkout's code: as a user would, a real process, or
    in this process (``run_cli_inprocess``) when ``inprocess`` says so or, left None, when
    the test is marked ``cli_inprocess``. Either way the same result: exit code, stdout and
    stderr as text. A run that sets a ``PROCESS_VARIABLES`` variable, or runs outside the
    main thread (tests racing two runs), is always a real process."""
    if inprocess is None:
        inprocess = _Mode.inprocess
    if (inprocess and threading.current_thread() is threading.main_thread()
            and not any(cli_env(env).get(name) for name in PROCESS_VARIABLES)):
        return run_cli_inprocess(args, cwd, env, input=input)
    return subprocess.run(
        [sys.executable, "-m", "runner", *args], cwd=cwd, env=cli_env(env), text=True,
        capture_output=True, timeout=timeout, input=input,
    )


def _as_text(data: bytes) -> str:
    """What ``subprocess.run(text=True)`` makes of a child's output: decoded, and its line
    ends made ``\\n`` (universal newlines)."""
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


@contextlib.contextmanager
def _process_state(cwd: Path | str, env: dict[str, str]) -> Iterator[None]:
    """The environment and the current folder of a process, for one call, then put back."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)  # read at call time by the CLI and runner.git's git_env()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def run_cli_inprocess(args: Sequence[str], cwd: Path | str, env: dict[str, str] | None = None,
                      input: str | None = None) -> subprocess.CompletedProcess[str]:
    """``rollout ARGS`` through ``runner.cli.main.main`` in this process (pip-tools'
    ``CliRunner`` habit): some 0.3 s of interpreter start and imports saved per call.

    What a real process would have is set for the call and put back after: the environment
    ``cli_env`` makes (the CLI and the git gateway read ``os.environ`` at call time), the
    current folder, stdin (``input``, else empty), and stdout/stderr as a real process has
    them under a UTF-8 locale (bytes underneath, for ``sys.stdout.buffer``; surrogateescape
    on stdout, backslashreplace on stderr), decoded as ``subprocess.run(text=True)`` would.
    Exit codes: ``main``'s return, a ``SystemExit``'s code (argparse's usage errors, --help,
    --version), or 1 and the traceback on stderr for an exception, as Python does. Log
    records of WARNING and above reach stderr as Python's last-resort handler writes them
    (pytest's own handlers would otherwise take them). Not for what only a process has:
    signals, a closed pipe, the crash seam (``PROCESS_VARIABLES``), threads racing."""
    if not Path(runner.__file__).resolve().is_relative_to(PROJECT):
        raise AssertionError(f"the runner imported is {runner.__file__}, not this checkout's")
    argv = list(args)
    out, err = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape", write_through=True)
    stderr = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace",
                              write_through=True)
    last_resort = logging.StreamHandler(stderr)
    last_resort.setLevel(logging.WARNING)
    root_logger = logging.getLogger()
    saved_stdin = sys.stdin
    root_logger.addHandler(last_resort)
    try:
        sys.stdin = io.StringIO(input or "")
        with (_process_state(cwd, cli_env(env)), contextlib.redirect_stdout(stdout),
              contextlib.redirect_stderr(stderr)):
            try:
                code = cli_main(argv)
            except SystemExit as e:
                if isinstance(e.code, int) or e.code is None:
                    code = e.code or 0
                else:  # SystemExit("message"): Python prints it and exits 1
                    print(e.code, file=sys.stderr)
                    code = 1
            except Exception:  # what a process would end with: its traceback and 1
                traceback.print_exc()
                code = 1
    finally:
        sys.stdin = saved_stdin
        root_logger.removeHandler(last_resort)
    stdout.flush()
    stderr.flush()
    return subprocess.CompletedProcess([sys.executable, "-m", "runner", *argv], code,
                                       _as_text(out.getvalue()), _as_text(err.getvalue()))


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
