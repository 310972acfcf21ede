"""Small, explicit git reads: one subprocess each, no GitPython objects walked commit by commit."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import codecs


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


def stream_git(root: Path, args: Sequence[str], chunk: int = 1 << 20) -> Iterator[str]:
    """Standard output of one git command as text chunks, while git is still writing.

    On Linux git writes into an anonymous in-memory file (``memfd``) that this process
    reads behind it: git never waits for the reader and pays no pipe wake-ups (writing
    20,000 commits costs git what writing to /dev/null does), and git's work and the
    parsing of what it wrote so far overlap on two cores, without a thread. Elsewhere a
    pipe, enlarged where the system allows it.
    """
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with tempfile.TemporaryFile() as err:
        out = _memfd()
        if out is not None:
            try:
                proc = subprocess.Popen(["git", "-C", str(root), *args], stdout=out,
                                        stderr=err, env=git_env())
            except BaseException:
                os.close(out)
                raise
            try:
                pos, exited = 0, False
                while True:
                    data = os.pread(out, chunk, pos)
                    if data:
                        pos += len(data)
                        yield decoder.decode(data)
                        if len(data) == chunk:
                            continue  # more is waiting
                    elif exited:
                        break  # git has exited and all it wrote is read
                    if not exited:
                        exited = proc.poll() is not None
                        if not exited:
                            # let git write a good piece rather than pay a read (and a
                            # parse call) per few kilobytes
                            time.sleep(0.002)
                yield decoder.decode(b"", final=True)
            finally:
                if proc.poll() is None:
                    proc.kill()
                code = proc.wait()
                os.close(out)
        else:
            yield from _stream_pipe(root, args, chunk, decoder, err)
            code = 0
        if code != 0:
            _raise_git_error(args, err)


def _memfd() -> int | None:
    """An anonymous in-memory file, or None where there is none (not Linux, or refused)."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None:
        return None
    try:
        return memfd_create("git-output", getattr(os, "MFD_CLOEXEC", 1))
    except OSError:
        return None


def _raise_git_error(args: Sequence[str], err: IO[bytes]) -> None:
    err.seek(0)
    first = next((line for line in err.read().decode(errors="replace").splitlines()
                  if line.strip()), "")
    raise GitError(f"git {' '.join(args[:2])}: {first or 'failed'}")


def _stream_pipe(root: Path, args: Sequence[str], chunk: int, decoder: codecs.IncrementalDecoder,
                 err: IO[bytes]) -> Iterator[str]:
    proc = subprocess.Popen(["git", "-C", str(root), *args], stdout=subprocess.PIPE,
                            stderr=err, env=git_env(), bufsize=0)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass  # not Linux, or above the system's limit: a smaller pipe only costs speed
    try:
        while data := os.read(fd, chunk):
            if len(data) < chunk >> 4:
                # git is writing a little at a time: let it fill the pipe for a moment
                # rather than pay a read (and a parse call) per few kilobytes
                time.sleep(0.002)
            yield decoder.decode(data)
        yield decoder.decode(b"", final=True)
    finally:
        proc.stdout.close()
        code = proc.wait()
    if code != 0:
        _raise_git_error(args, err)


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
