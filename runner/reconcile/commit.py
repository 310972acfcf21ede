"""The runner's commits, crash-safe: build them, move the branch, then write the files.

A run never writes a state file before its commit exists:

1. every commit of the run is built in one ``git fast-import`` process on a private ref
   (objects only: the working tree, index and branch are untouched);
2. a journal (``<git-dir>/rollout-runner-journal.json``) records the old and new head and
   the files' new contents;
3. ``git update-ref`` moves the branch from the old head to the new one, atomically and only
   if nobody moved it meanwhile;
4. the files are written (temporary file + rename), the index updated, the journal removed.

Killed before 3, the branch is where it was and nothing visible changed (stray objects are
garbage for ``git gc``). Killed after 3, the next run finds the journal and HEAD at its new
head and finishes step 4. Killed during 4, the same. A run holds an exclusive ``flock`` on
``<git-dir>/rollout-runner.lock`` so two runs in one clone never interleave; the kernel
releases it when the process dies, even by ``kill -9``. Tests stop runs between these steps
through ``runner.reconcile.crashpoints``. Git itself is run by ``runner.git``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.files import TMP_PREFIX, write_atomic
from runner.git import Git, GitError
from runner.reconcile.crashpoints import pause_at

WORK_REF = "refs/rollout-runner/work"
JOURNAL = "rollout-runner-journal.json"
LOCK = "rollout-runner.lock"


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str  # relative to the git top level, forward slashes
    content: bytes | None  # None: delete


@dataclass(frozen=True, slots=True)
class CommitSpec:
    message: str
    changes: tuple[FileChange, ...]


@contextlib.contextmanager
def locked(git: Git) -> Iterator[None]:
    """Exclusive use of the clone by this run, until the block ends or the process dies."""
    fd = os.open(git.git_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def recover(git: Git, folders: Sequence[str] = ()) -> str | None:
    """Finish or drop what a killed run left (see the module docstring)."""
    for folder in folders:
        for stray in (git.root / folder).glob(f"{TMP_PREFIX}*.tmp"):
            stray.unlink(missing_ok=True)
    for stray in git.git_dir.glob("rollout-marks-*"):
        stray.unlink(missing_ok=True)
    path = git.git_dir / JOURNAL
    if not path.exists():
        return None
    try:
        journal = json.loads(path.read_text())
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return "dropped an unreadable journal of an interrupted run"
    if git.head() == journal["new"]:
        _sync_files(git, [FileChange(p, None if c is None else c.encode())
                          for p, c in journal["files"].items()])
        path.unlink(missing_ok=True)
        return f"finished an interrupted run: files of {journal['new'][:7]} written"
    path.unlink(missing_ok=True)
    return "an interrupted run had not committed; nothing of it was kept"


def commit(git: Git, commits: Sequence[CommitSpec], author: tuple[str, str],
           when: int | None = None) -> list[str]:
    """Create ``commits`` in order on top of HEAD, move the branch, update the files.
    Returns the new commit ids."""
    if not commits:
        return []
    old = git.head()
    if old is None:
        raise GitError(("rev-parse", "--verify", "HEAD"), "",
                       "the repository has no commit yet")
    stamp = f"{int(time.time()) if when is None else when} +0000"
    ident = f"{author[0]} <{author[1]}> {stamp}"
    stream = bytearray()
    for i, c in enumerate(commits, start=1):
        msg = c.message.encode()
        stream += f"commit {WORK_REF}\nmark :{i}\nauthor {ident}\ncommitter {ident}\n".encode()
        stream += f"data {len(msg)}\n".encode() + msg + b"\n"
        if i == 1:
            stream += f"from {old}\n".encode()
        for ch in c.changes:
            if ch.content is None:
                stream += f"D {ch.path}\n".encode()
            else:
                stream += f"M 100644 inline {ch.path}\ndata {len(ch.content)}\n".encode()
                stream += ch.content + b"\n"
        stream += b"\n"
    with tempfile.NamedTemporaryFile(dir=git.git_dir, prefix="rollout-marks-",
                                     delete=False) as marks:
        marks_path = Path(marks.name)
    try:
        git.fast_import(bytes(stream), marks_path)
        marks_text = marks_path.read_text()
    finally:
        marks_path.unlink(missing_ok=True)
    by_mark = dict(line.split(" ", 1) for line in marks_text.split("\n") if line)
    shas = [by_mark[f":{i}"].strip() for i in range(1, len(commits) + 1)]
    final: dict[str, bytes | None] = {}
    for c in commits:
        for ch in c.changes:
            final[ch.path] = ch.content
    pause_at("before-journal")
    journal = {"old": old, "new": shas[-1],
               "files": {p: None if b is None else b.decode() for p, b in final.items()}}
    jpath = git.git_dir / JOURNAL
    write_atomic(jpath, json.dumps(journal).encode())
    pause_at("before-ref")
    refused = git.update_ref(f"update HEAD {shas[-1]} {old}\ndelete {WORK_REF}\n")
    if refused is not None:
        jpath.unlink(missing_ok=True)
        raise GitError(("update-ref", "--stdin"), refused,
                       "the branch moved while the runner worked")
    pause_at("after-ref")
    _sync_files(git, [FileChange(p, b) for p, b in final.items()])
    jpath.unlink(missing_ok=True)
    return shas


def _sync_files(git: Git, changes: Sequence[FileChange]) -> None:
    for ch in changes:
        target = git.toplevel / ch.path
        if ch.content is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, ch.content)
        pause_at("during-sync")
    git.update_index([ch.path for ch in changes])
