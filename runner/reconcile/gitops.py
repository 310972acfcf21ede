"""Git, the effect: run git safely, commit transitions, keep the working tree in step, push.

Crash safety. A run never writes a state file before its commit exists:

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
releases it when the process dies, even by ``kill -9``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.files import TMP_PREFIX, write_atomic

#: Variables a git hook leaks into its children; honouring them would make the runner read
#: or write another repository or index than the one it was asked to work on.
LEAKED_GIT_VARS = (
    "GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_PREFIX", "GIT_NAMESPACE",
    "GIT_QUARANTINE_PATH", "GIT_REFLOG_ACTION", "GIT_EDITOR",
)

WORK_REF = "refs/rollout-runner/work"
JOURNAL = "rollout-runner-journal.json"
LOCK = "rollout-runner.lock"


class GitError(Exception):
    """A git command failed or the repository is not in a state the runner may touch."""


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LEAKED_GIT_VARS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("LC_ALL", "C")
    env.update(extra or {})
    return env


def _sleep_hook(point: str) -> None:
    """Tests kill the runner at chosen moments: ``ROLLOUT_TEST_SLEEP=point:seconds``."""
    spec = os.environ.get("ROLLOUT_TEST_SLEEP", "")
    for part in filter(None, spec.split(",")):
        name, _, secs = part.partition(":")
        if name == point:
            print(f"rollout: test hook: sleeping at {point}", flush=True)
            time.sleep(float(secs or 5))


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str  # relative to the git top level, forward slashes
    content: bytes | None  # None: delete


@dataclass(frozen=True, slots=True)
class CommitSpec:
    message: str
    changes: tuple[FileChange, ...]


class Git:
    """One repository, with leaked hook variables ignored."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.env = clean_env()
        out = self.run("rev-parse", "--show-toplevel", "--absolute-git-dir", "--show-prefix",
                       check=False)
        if out.returncode != 0:
            raise GitError(f"{root}: not a git repository ({out.stderr.strip()})")
        lines = out.stdout.split("\n")
        self.toplevel = Path(lines[0])
        self.git_dir = Path(lines[1])
        self.prefix = lines[2].strip()

    def run(self, *args: str, input: bytes | str | None = None, check: bool = True,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        text_input = input.decode() if isinstance(input, bytes) else input
        out = subprocess.run(["git", *args], cwd=cwd or self.root, env=self.env,
                             encoding="utf-8", errors="replace", capture_output=True,
                             input=text_input, check=False)
        if check and out.returncode != 0:
            raise GitError(f"git {args[0]} failed: {out.stderr.strip() or out.stdout.strip()}")
        return out

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()

    def rel(self, path_from_root: str) -> str:
        """A path relative to ``--repo`` as a path relative to the git top level."""
        return f"{self.prefix}{path_from_root}"

    def head(self) -> str | None:
        out = self.run("rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
        return out.stdout.strip() or None

    def branch(self) -> str | None:
        out = self.run("symbolic-ref", "-q", "--short", "HEAD", check=False)
        return out.stdout.strip() or None

    # --- safety ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fd = os.open(self.git_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def dirty(self, folders: Sequence[str]) -> list[str]:
        """Uncommitted changes (staged, unstaged or untracked) under ``folders``."""
        out = self.run("status", "--porcelain=v1", "-z", "--untracked-files=all", "--",
                       *folders)
        entries = [e for e in out.stdout.split("\0") if e]
        found, skip = [], False
        for e in entries:
            if skip:  # the source path of a rename
                skip = False
                continue
            found.append(e[3:])
            skip = e[0] in "RC"
        return found

    def recover(self, folders: Sequence[str] = ()) -> str | None:
        """Finish or drop what a killed run left (see the module docstring)."""
        for folder in folders:
            for stray in (self.root / folder).glob(f"{TMP_PREFIX}*.tmp"):
                stray.unlink(missing_ok=True)
        for stray in self.git_dir.glob("rollout-marks-*"):
            stray.unlink(missing_ok=True)
        path = self.git_dir / JOURNAL
        if not path.exists():
            return None
        try:
            journal = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            return "dropped an unreadable journal of an interrupted run"
        if self.head() == journal["new"]:
            self._sync_files([FileChange(p, None if c is None else c.encode())
                              for p, c in journal["files"].items()])
            path.unlink(missing_ok=True)
            return f"finished an interrupted run: files of {journal['new'][:7]} written"
        path.unlink(missing_ok=True)
        return "an interrupted run had not committed; nothing of it was kept"

    # --- committing -----------------------------------------------------------------------

    def commit(self, commits: Sequence[CommitSpec], author: tuple[str, str],
               when: int | None = None) -> list[str]:
        """Create ``commits`` in order on top of HEAD, move the branch, update the files.
        Returns the new commit ids."""
        if not commits:
            return []
        old = self.head()
        if old is None:
            raise GitError("the repository has no commit yet")
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
        with tempfile.NamedTemporaryFile(dir=self.git_dir, prefix="rollout-marks-",
                                         delete=False) as marks:
            marks_path = marks.name
        try:
            proc = subprocess.run(
                ["git", "fast-import", "--quiet", "--force", "--date-format=raw",
                 f"--export-marks={marks_path}"],
                cwd=self.root, env=self.env, input=bytes(stream), capture_output=True,
                check=False)
            if proc.returncode != 0:
                raise GitError(f"git fast-import failed: {proc.stderr.decode().strip()}")
            marks_text = Path(marks_path).read_text()
        finally:
            Path(marks_path).unlink(missing_ok=True)
        by_mark = dict(line.split(" ", 1) for line in marks_text.split("\n") if line)
        shas = [by_mark[f":{i}"].strip() for i in range(1, len(commits) + 1)]
        final: dict[str, bytes | None] = {}
        for c in commits:
            for ch in c.changes:
                final[ch.path] = ch.content
        _sleep_hook("before-journal")
        journal = {"old": old, "new": shas[-1],
                   "files": {p: None if b is None else b.decode() for p, b in final.items()}}
        jpath = self.git_dir / JOURNAL
        write_atomic(jpath, json.dumps(journal).encode())
        _sleep_hook("before-ref")
        moved = self.run("update-ref", "--stdin", input=(
            f"update HEAD {shas[-1]} {old}\ndelete {WORK_REF}\n"), check=False)
        if moved.returncode != 0:
            jpath.unlink(missing_ok=True)
            raise GitError(f"the branch moved while the runner worked: {moved.stderr.strip()}")
        _sleep_hook("after-ref")
        self._sync_files([FileChange(p, b) for p, b in final.items()])
        jpath.unlink(missing_ok=True)
        return shas

    def _sync_files(self, changes: Sequence[FileChange]) -> None:
        for ch in changes:
            target = self.toplevel / ch.path
            if ch.content is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(target, ch.content)
            _sleep_hook("during-sync")
        paths = "".join(f"{ch.path}\0" for ch in changes)
        self.run("update-index", "--add", "--remove", "-z", "--stdin", input=paths,
                 cwd=self.toplevel)

    # --- remotes --------------------------------------------------------------------------

    def fetch(self, remote: str, branch: str) -> str:
        self.run("fetch", "-q", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
        return self.out("rev-parse", f"refs/remotes/{remote}/{branch}^{{commit}}")

    def is_ancestor(self, a: str, b: str) -> bool:
        return self.run("merge-base", "--is-ancestor", a, b, check=False).returncode == 0

    def commits_between(self, base: str, head: str) -> list[tuple[str, str, str]]:
        """(sha, Rollout-Action, Rollout-Requested-By) of the commits in base..head."""
        out = self.out("log", "--format=%H%x1f%(trailers:key=Rollout-Action,valueonly)%x1f"
                       "%(trailers:key=Rollout-Requested-By,valueonly)%x1e", f"{base}..{head}")
        rows = []
        for rec in filter(None, (r.strip() for r in out.split("\x1e"))):
            sha, action, requested = [*rec.split("\x1f"), "", ""][:3]
            rows.append((sha, action.strip(), requested.strip()))
        return rows

    def move_to(self, target: str) -> None:
        """Move HEAD, index and changed files to ``target``, keeping local edits elsewhere."""
        self.run("reset", "-q", "--keep", target)

    def push(self, remote: str, branch: str) -> tuple[bool, str]:
        out = self.run("push", "--porcelain", remote, f"HEAD:refs/heads/{branch}", check=False)
        return out.returncode == 0, (out.stderr.strip() or out.stdout.strip())
