"""The runner's commits, crash-safe: build them, move the branch, then write the files.

A run never writes a state file before its commit exists:

1. every commit of the run is built in one ``git fast-import`` process on a private ref
   (objects only: the working tree, index and branch are untouched);
2. a journal (``<git-dir>/rollout-runner-journal.json``) records the old and new head and
   the files' new contents;
3. ``git update-ref`` moves the branch from the old head to the new one, atomically and only
   if nobody moved it meanwhile;
4. the files are written (temporary file + rename), made durable in one flush, the index
   updated, the journal removed (:func:`_sync_files` says why one flush is enough).

Between 1 and 2 the commits are checked against what was asked (:func:`_verify`): each one
has the one parent it should and changes exactly the files of its spec, with exactly the
bytes asked, and every file is a state file (``*.state.json``, or the halt switch file
``rollout halt`` names); anything else drops the work
ref and refuses, before the branch moves. Paths are C-quoted in the stream and identities
refused when git could read them as more than a name and an address (:func:`check_identity`),
so no file name or configured author can write a command into the stream; the check is the
defence behind that.

Killed before 3, the branch is where it was and nothing visible changed (stray objects are
garbage for ``git gc``). A stale ``index.lock`` (a git process killed while it held the
index) stops a run before anything is written; if the index cannot be updated after the
branch moved, :class:`Unfinished` says the commits were made and the journal finishes the
files on the next run. Killed after 3, the next run finds the journal and HEAD at its new
head and finishes step 4. Killed during 4, the same. A run holds an exclusive ``flock`` on
``<git-dir>/rollout-runner.lock`` so two runs in one clone never interleave; the kernel
releases it when the process dies, even by ``kill -9``. Tests stop runs between these steps
through ``runner.reconcile.crashpoints``. Git itself is run by ``runner.git``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.files import TMP_PREFIX, sync_all, write_atomic, write_unsynced
from runner.git import Git, GitError, raw_change, z_records
from runner.reconcile.crashpoints import pause_at

WORK_REF = "refs/rollout-runner/work"
JOURNAL = "rollout-runner-journal.json"
LOCK = "rollout-runner.lock"
STATE_SUFFIX = ".state.json"


class Unfinished(GitError):
    """The branch moved to the new commits, but writing the files or the index failed: the
    commits exist, and the journal left behind lets the next run finish the files."""


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


def check_identity(value: str, what: str) -> str | None:
    """Why ``value`` cannot be a name or an address in a commit's identity line (``what`` says
    which one, for the message), or None. git reads ``Name <email> date``: an angle bracket,
    a line break or any other control character would end or reshape that line."""
    if not value.strip():
        return f"{what} is empty"
    for ch in value:
        if ch in "<>":
            return f"{what} contains {ch!r} (not allowed in a git identity)"
        if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
            return f"{what} contains a control character ({ch!r})"
    return None


def quote_path(path: str) -> bytes:
    """``path`` as a C-style quoted string, as ``git fast-import`` reads it: nothing in a
    file name can end the path or start another command."""
    out = bytearray(b'"')
    for byte in path.encode("utf-8", "surrogateescape"):
        if byte in (0x22, 0x5C):  # " and \
            out += b"\\" + bytes([byte])
        elif 0x20 <= byte < 0x7F:
            out.append(byte)
        else:
            out += f"\\{byte:03o}".encode()
    out += b'"'
    return bytes(out)


def index_lock(git: Git) -> Path | None:
    """``<git-dir>/index.lock`` when it exists: another git process holds the index, or one
    was killed while it did."""
    lock = git.git_dir / "index.lock"
    return lock if lock.exists() else None


def stale_index_message(lock: Path) -> str:
    return (f"{lock} exists: another git process is working in this repository, or one was "
            "killed; if no git process is running, remove that file and run again")


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
           when: int | None = None, switches: Collection[str] = ()) -> list[str]:
    """Create ``commits`` in order on top of HEAD, move the branch, update the files.
    Returns the new commit ids. ``switches``: the paths besides state files a commit may
    change (``rollout halt``'s switch file, and nothing else)."""
    if not commits:
        return []
    for value, what in ((author[0], "the author name"), (author[1], "the author email")):
        if (why := check_identity(value, what)) is not None:
            raise GitError(("fast-import",), "", f"refused to commit: {why}; nothing written")
    for c in commits:
        for ch in c.changes:
            if not (ch.path.endswith(STATE_SUFFIX) or ch.path in switches) or "\0" in ch.path:
                raise GitError(("fast-import",), "", f"refused to commit {ch.path!r}: a "
                               "runner commit changes state files only; nothing written")
    if (lock := index_lock(git)) is not None:
        raise GitError(("update-index",), "", f"{stale_index_message(lock)} (nothing written)")
    old = git.head()
    if old is None:
        raise GitError(("rev-parse", "--verify", "HEAD"), "",
                       "the repository has no commit yet")
    stamp = f"{int(time.time()) if when is None else when} +0000"
    shas = build(git, WORK_REF, old, commits, f"{author[0]} <{author[1]}> {stamp}")
    problem = _verify(git, old, shas, commits)
    if problem is not None:
        git.run("update-ref", "-d", WORK_REF, check=False)
        raise GitError(("fast-import",), problem,
                       "refused to move the branch: the commits built are not the ones asked "
                       "for (nothing written)")
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
    try:
        _sync_files(git, [FileChange(p, b) for p, b in final.items()])
    except (GitError, OSError) as e:
        lock = index_lock(git)
        why = stale_index_message(lock) if lock is not None else str(e)
        raise Unfinished(("update-index",), "",
                         f"committed {len(shas)} commit(s), the branch is at {shas[-1][:12]}, "
                         f"but the working tree and index could not be updated: {why}; the "
                         "next run finishes them from its journal") from e
    jpath.unlink(missing_ok=True)
    return shas


def build(git: Git, ref: str, parent: str | None, commits: Sequence[CommitSpec], ident: str,
          *, whole_tree: bool = False) -> list[str]:
    """Step 1 of the protocol: ``commits``, in order, on ``parent`` (None: the first one is a
    root commit, sharing no history), built by one ``git fast-import`` on the private
    ``ref``; objects only, no branch, index or file touched. With ``whole_tree`` each
    commit's tree is exactly its spec's files (nothing inherited from the parent). Returns
    the new commit ids; what they are is for the caller to verify before using them."""
    stream = bytearray(f"reset {ref}\n".encode())
    for i, c in enumerate(commits, start=1):
        msg = c.message.encode()
        stream += f"commit {ref}\nmark :{i}\nauthor {ident}\ncommitter {ident}\n".encode()
        stream += f"data {len(msg)}\n".encode() + msg + b"\n"
        if i == 1 and parent is not None:
            stream += f"from {parent}\n".encode()
        if whole_tree:
            stream += b"deleteall\n"
        for ch in c.changes:
            if ch.content is None:
                stream += b"D " + quote_path(ch.path) + b"\n"
            else:
                stream += b"M 100644 inline " + quote_path(ch.path) + b"\n"
                stream += f"data {len(ch.content)}\n".encode() + ch.content + b"\n"
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
    return [by_mark[f":{i}"].strip() for i in range(1, len(commits) + 1)]


def blob_id(content: bytes, length: int) -> str:
    """The object name git gives a blob of ``content`` (SHA-1, or SHA-256 when the
    repository's names are ``length`` 64 characters long)."""
    algo = hashlib.sha256 if length == 64 else hashlib.sha1
    return algo(b"blob %d\0" % len(content) + content).hexdigest()


def _verify(git: Git, old: str, shas: Sequence[str], commits: Sequence[CommitSpec]
            ) -> str | None:
    """Why the commits ``fast-import`` built are not exactly ``commits`` on top of ``old``
    (a chain of one-parent commits, each changing exactly its spec's files to exactly the
    bytes asked), or None when they are. One ``git log`` over old..new."""
    log = git.run("log", "-z", "--raw", "--no-abbrev", "--no-renames", "--reverse",
                  "--format=%H%x00%P", f"{old}..{shas[-1]}", "--").stdout
    records = list(z_records([log], 2))
    if [fields[0] for fields, _ in records] != list(shas):
        return f"expected {len(shas)} new commit(s) on {old[:12]}, found {len(records)}"
    parent = old
    for (fields, changes), spec in zip(records, commits, strict=True):
        sha, parents = fields
        if parents.split() != [parent]:
            return f"commit {sha[:12]} has parents {parents or 'none'}, not {parent[:12]}"
        parent = sha
        expected = {}
        for ch in spec.changes:
            expected[ch.path] = ch.content
        got = {}
        for meta, path in changes:
            mode, _, new, status = raw_change(meta)
            got[path] = (mode, new, status)
        if set(got) != set(expected):
            extra = sorted(set(got) ^ set(expected))
            return f"commit {sha[:12]} changes {', '.join(map(repr, extra[:5]))} unexpectedly"
        for path, content in expected.items():
            mode, new, status = got[path]
            if content is None:
                ok = status == "D"
            else:
                ok = status in "AM" and mode == "100644" and new == blob_id(content, len(new))
            if not ok:
                return f"commit {sha[:12]} does not write {path!r} as asked"
    return None


def _sync_files(git: Git, changes: Sequence[FileChange]) -> None:
    """Step 4: the files written (each atomically: temporary file and rename), then made
    durable in one flush (:func:`runner.files.sync_all`) rather than two fsyncs each, then
    the index updated. Safe because the journal, written durably before the branch moved,
    is removed only after this returns: a power loss before the flush may leave a file
    empty or old, and the next run finds the journal with HEAD at its new head and writes
    every file again (``recover``)."""
    for ch in changes:
        target = git.toplevel / ch.path
        if ch.content is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_unsynced(target, ch.content)
        pause_at("during-sync")
    sync_all(git.toplevel)
    git.update_index([ch.path for ch in changes])
