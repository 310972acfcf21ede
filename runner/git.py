"""The one gateway to git: every git process of the runner is started here (``rollout demo``
alone runs git otherwise: it plays the people of its story, at the shell, as they would).

Each call is one ``git`` process on a named repository (``git -C <root>``), with one
environment (:func:`git_env`) and one error (:class:`GitError`). No GitPython: its
per-commit objects cost more than the whole ``git log`` they wrap. :class:`Git` is one
repository as the runner works on it (its head, branch, working tree, remotes); the
crash-safe commit protocol built on it is ``runner.reconcile.commit``.
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from runner.errors import ExternalError, UsageError

#: ``git revert``'s own line in the message of a revert: SHA-1 (40 hex digits) and SHA-256
#: (64) object names, abbreviated or not. Word-bounded: a longer run of hex is no name.
REVERTS = re.compile(r"\bThis reverts commit ([0-9a-f]{7,64})\b")

#: ``GIT_*`` variables that pass through to git. Every other one is dropped: a git hook runs
#: its children with GIT_DIR, GIT_INDEX_FILE, GIT_WORK_TREE, GIT_PREFIX, GIT_EDITOR... set,
#: and honouring them would read or write another repository or index than the one named.
#: Kept, as pre-commit's ``no_git_env`` keeps them: how to reach a remote (ssh, TLS, proxy,
#: allowed protocols, credentials prompt) and configuration given in the environment.
#: Kept besides: the identity (a person's ``GIT_AUTHOR_*``/``GIT_COMMITTER_*`` is who asked,
#: read by ``git var GIT_AUTHOR_IDENT``; the runner's own commits name their author
#: explicitly) and which configuration files git reads (``GIT_CONFIG_NOSYSTEM``,
#: ``GIT_CONFIG_GLOBAL``, ``GIT_CONFIG_SYSTEM``, set by CI and tests to isolate git from the
#: machine's configuration): neither says which repository to work on.
PASSED_GIT_VARS = frozenset({
    "GIT_EXEC_PATH", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSL_CAINFO", "GIT_SSL_NO_VERIFY",
    "GIT_CONFIG_COUNT", "GIT_HTTP_PROXY_AUTHMETHOD", "GIT_ALLOW_PROTOCOL", "GIT_ASKPASS",
    "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE",
    "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM",
})
PASSED_GIT_PREFIXES = ("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")


class GitError(ExternalError):
    """A git command failed: the command (``git`` and ``-C`` left out) and git's own message.
    ``what`` says what the failure means where the caller knows it better than the command."""

    def __init__(self, command: Sequence[str], message: str, what: str | None = None) -> None:
        self.command = tuple(command)
        self.message = message
        if what is None:
            text = f"git {_subcommand(self.command)}: {message or 'failed'}"
        else:
            text = f"{what}: {message}" if message else what
        super().__init__(text)


class NotARepository(GitError, UsageError):
    """The folder a command was pointed at (``--repo``, or where it runs) is no git
    repository: how it was called, exit 2, whichever command finds it (``history``,
    ``plan`` and ``incident`` ask first; ``advance``, the person commands and ``publish``
    learn it from :meth:`Git.open`)."""


def _subcommand(command: Sequence[str]) -> str:
    """The git command's name, past ``-c key=value`` and other options before it."""
    args = iter(command)
    for arg in args:
        if arg == "-c":
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return " ".join(command)


def git_env() -> dict[str, str]:
    """The environment of every git process (see ``PASSED_GIT_VARS``): no prompt for
    credentials (nobody is there to answer), and git's messages in English, whatever the
    locale, since some of them are read."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GIT_") or k in PASSED_GIT_VARS
           or k.startswith(PASSED_GIT_PREFIXES)}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    return env


#: Options of every git process: paths are printed as they are, never C-quoted (with ``-z``
#: formats, which every parse of git output here uses, nothing needs quoting).
GIT_OPTIONS = ("-c", "core.quotePath=false")


def _argv(root: Path, args: Sequence[str]) -> list[str]:
    return ["git", "-C", str(root), *GIT_OPTIONS, *args]


def _spawn(root: Path, args: Sequence[str], input: str | bytes | None, check: bool,
           text: bool) -> subprocess.CompletedProcess:
    if isinstance(input, str):
        input = input.encode()
    try:
        proc: subprocess.CompletedProcess[Any] = subprocess.run(  # bytes, or text decoded below
            _argv(root, args), env=git_env(), capture_output=True, input=input, check=False)
    except OSError as e:  # no git program, or it cannot be started
        raise GitError(args, f"cannot run git: {e.strerror or e}") from e
    if text:
        # decoded here, not by subprocess: its text mode turns a CR (in a path, a message)
        # into a line break
        proc.stdout = proc.stdout.decode("utf-8", "replace")
        proc.stderr = proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise GitError(args, _message(proc.stderr, proc.stdout))
    return proc


def _message(stderr: str | bytes, stdout: str | bytes) -> str:
    err = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    out = stdout.decode(errors="replace") if isinstance(stdout, bytes) else stdout
    return err.strip() or out.strip()


def run(root: Path, *args: str, input: str | bytes | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """One git command in ``root``, its output as text; GitError when it fails and ``check``."""
    return _spawn(root, args, input, check, text=True)


def run_bytes(root: Path, *args: str, input: bytes | None = None,
              check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """``run`` for output (and input) that is file contents: bytes, as git wrote them."""
    return _spawn(root, args, input, check, text=False)


def out(root: Path, *args: str) -> str:
    """The standard output of a git command that must succeed, without its edge blanks."""
    return run(root, *args).stdout.strip()


def stream(root: Path, args: Sequence[str], chunk: int = 1 << 20) -> Generator[str, None, None]:
    """Standard output of one git command as text chunks, while git is still writing.
    Closing the iterator early stops git; a failure raises GitError once all is read.

    On Linux git writes into an anonymous in-memory file (``memfd``) that this process
    reads behind it: git never waits for the reader and pays no pipe wake-ups (writing
    20,000 commits costs git what writing to /dev/null does), and git's work and the
    parsing of what it wrote so far overlap on two cores, without a thread. Elsewhere a
    pipe, enlarged where the system allows it.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with tempfile.TemporaryFile() as err:
        out = _memfd()
        if out is not None:
            try:
                proc = subprocess.Popen(_argv(root, args), stdout=out,
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
        fd: int = memfd_create("git-output", getattr(os, "MFD_CLOEXEC", 1))
    except OSError:
        return None
    return fd


def _raise_git_error(args: Sequence[str], err: IO[bytes]) -> None:
    err.seek(0)
    raise GitError(args, err.read().decode(errors="replace").strip())


def _stream_pipe(root: Path, args: Sequence[str], chunk: int, decoder: codecs.IncrementalDecoder,
                 err: IO[bytes]) -> Iterator[str]:
    proc = subprocess.Popen(_argv(root, args), stdout=subprocess.PIPE,
                            stderr=err, env=git_env(), bufsize=0)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    try:
        import fcntl  # POSIX only (the ImportError below): an optional module, not Windows

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


def z_records(chunks: Iterable[str], nfields: int
              ) -> Iterator[tuple[list[str], list[tuple[str, str]]]]:
    """(fields, raw changes) per commit of a ``git log -z`` whose ``--format`` is ``nfields``
    fields joined by ``%x00``, the first one ``%H`` (git ends each commit's fields with a NUL);
    with ``--raw --no-renames``, each change is ``(":<modes> <old> <new> <status>", path)``.

    Read by position, never by looking into a field: a message may hold any character but
    NUL, a path any byte but NUL. After a commit's fields come its changes, each two
    NUL-ended tokens of which the first starts with ``:`` (the first one after a line
    break); the next commit starts with its ``%H``, which never does."""
    tokens: list[str] = []
    pending = ""
    for chunk in chunks:
        if "\0" not in chunk:
            pending += chunk
            continue
        *done, pending = (pending + chunk).split("\0")
        tokens += done
        pos = 0
        while (end := _record_end(tokens, pos, nfields)) is not None:
            yield _record(tokens, pos, end, nfields)
            pos = end
        del tokens[:pos]
    if pending:
        tokens.append(pending)
    pos = 0
    while pos < len(tokens):
        end = _record_end(tokens, pos, nfields, final=True)
        assert end is not None
        yield _record(tokens, pos, end, nfields)
        pos = end


def _record_end(tokens: list[str], pos: int, nfields: int, final: bool = False) -> int | None:
    """Index after the commit starting at ``pos``; None when its end is not read yet."""
    i = pos + nfields
    while True:
        if i >= len(tokens):
            return len(tokens) if final else None
        t = tokens[i]
        if not (t[:1] == ":" or t[:2] == "\n:"):
            return i
        i += 2


def _record(tokens: list[str], pos: int, end: int, nfields: int
            ) -> tuple[list[str], list[tuple[str, str]]]:
    fields = tokens[pos: min(pos + nfields, end)]
    fields += [""] * (nfields - len(fields))
    raw = tokens[pos + nfields: end]
    return fields, [(raw[i].lstrip("\n"), raw[i + 1] if i + 1 < len(raw) else "")
                    for i in range(0, len(raw), 2)]


def raw_change(meta: str) -> tuple[str, str, str, str]:
    """``(new mode, old blob, new blob, status)`` of one ``--raw`` change."""
    parts = meta.lstrip(":").split(" ")
    return (parts[1], parts[2], parts[3], parts[4][:1]) if len(parts) >= 5 else ("", "", "", "")


# --- questions about any repository ----------------------------------------------------------


def is_null_object(object_id: str) -> bool:
    """The all-zero name git prints for "no object" (an added or deleted file's other side)."""
    return not object_id.strip("0")


def read_blobs(root: Path, ids: Iterable[str]) -> dict[str, bytes]:
    """Contents of blobs by object name, through one ``git cat-file --batch``. Null names
    are skipped; a name this repository does not hold (or not a blob) is left out."""
    wanted = sorted({b for b in ids if b and not is_null_object(b)})
    if not wanted:
        return {}
    out = run_bytes(root, "cat-file", "--batch", input=("\n".join(wanted) + "\n").encode()).stdout
    result: dict[str, bytes] = {}
    pos = 0
    for blob in wanted:
        nl = out.index(b"\n", pos)
        header = out[pos:nl].decode().split()
        pos = nl + 1
        if len(header) < 3 or header[1] != "blob":
            continue  # "<name> missing": nothing follows the header
        size = int(header[2])
        result[blob] = out[pos: pos + size]
        pos += size + 1
    return result


def is_repository(root: Path) -> bool:
    return run(root, "rev-parse", "--git-dir", check=False).returncode == 0


def resolve_commit(root: Path, rev: str) -> str | None:
    proc = run(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}",
               check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def default_branch(root: Path) -> str | None:
    """The remote's default branch when known (origin/HEAD), else main/master, local or remote."""
    proc = run(root, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD",
               check=False)
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip()
    for candidate in ("origin/main", "origin/master", "main", "master"):
        if resolve_commit(root, candidate):
            return candidate
    return None


def merge_base(root: Path, a: str, b: str) -> str | None:
    proc = run(root, "merge-base", a, b, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def author_ident(root: Path) -> str | None:
    """``Name <email> time zone`` as git would write the author of a commit made in ``root``."""
    return run(root, "var", "GIT_AUTHOR_IDENT", check=False).stdout.strip() or None


# --- the repository the runner works on ------------------------------------------------------


# A plain slotted class rather than a frozen dataclass: this module is imported by every
# `rollout history` and `plan`, and a dataclass would import ``dataclasses`` (and
# ``inspect``) and compile its methods at start-up, ~10 ms of a run.
class Git:
    """One repository as the runner works on it: ``root`` is the folder it was given (the
    GitOps folder, possibly inside a bigger repository), ``prefix`` its path from the top."""

    __slots__ = ("git_dir", "prefix", "root", "toplevel")

    def __init__(self, root: Path, toplevel: Path, git_dir: Path, prefix: str) -> None:
        self.root = root
        self.toplevel = toplevel
        self.git_dir = git_dir
        self.prefix = prefix  # "" at the top level, else ending in "/"

    def __repr__(self) -> str:
        return f"Git({str(self.root)!r})"

    @classmethod
    def open(cls, root: Path) -> Git:
        root = root.resolve()
        proc = run(root, "rev-parse", "--show-toplevel", "--absolute-git-dir", "--show-prefix",
                   check=False)
        if proc.returncode != 0:
            raise NotARepository(("rev-parse", "--show-toplevel"), proc.stderr.strip(),
                                 f"{root}: not a git repository")
        lines = proc.stdout.split("\n")
        return cls(root, Path(lines[0]), Path(lines[1]), lines[2].strip())

    def run(self, *args: str, input: str | bytes | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(self.root, *args, input=input, check=check)

    def out(self, *args: str) -> str:
        return out(self.root, *args)

    def rel(self, path_from_root: str) -> str:
        """A path relative to ``root`` as a path relative to the git top level."""
        return f"{self.prefix}{path_from_root}"

    def head(self) -> str | None:
        proc = self.run("rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
        return proc.stdout.strip() or None

    def branch(self) -> str | None:
        return self.run("symbolic-ref", "-q", "--short", "HEAD", check=False).stdout.strip() or None

    def is_shallow(self) -> bool:
        return self.out("rev-parse", "--is-shallow-repository") == "true"

    def shallow_boundary(self) -> set[str]:
        """The oldest commits a shallow clone holds (none in a full clone)."""
        shallow_file = self.root / self.out("rev-parse", "--git-path", "shallow")
        return set(shallow_file.read_text().split()) if shallow_file.exists() else set()

    def dirty(self, folders: Sequence[str]) -> list[str]:
        """Uncommitted changes (staged, unstaged or untracked) under ``folders``."""
        proc = self.run("status", "--porcelain=v1", "-z", "--untracked-files=all", "--",
                        *folders)
        entries = [e for e in proc.stdout.split("\0") if e]
        found, skip = [], False
        for e in entries:
            if skip:  # the source path of a rename
                skip = False
                continue
            found.append(e[3:])
            skip = e[0] in "RC"
        return found

    # --- writing -------------------------------------------------------------------------

    def fast_import(self, stream: bytes, marks: Path) -> None:
        """Objects and a ref from a ``git fast-import`` stream; the marks written to ``marks``."""
        run_bytes(self.root, "fast-import", "--quiet", "--force", "--date-format=raw",
                  f"--export-marks={marks}", input=stream)

    def update_ref(self, instructions: str) -> str | None:
        """``git update-ref --stdin`` (one transaction); git's message when it refused."""
        proc = self.run("update-ref", "--stdin", input=instructions, check=False)
        return None if proc.returncode == 0 else (proc.stderr.strip() or "refused")

    def resolve_ref(self, ref: str) -> str | None:
        """The commit a full ref name (``refs/heads/NAME``) points at, or None when none."""
        proc = self.run("rev-parse", "-q", "--verify", "--end-of-options", f"{ref}^{{commit}}",
                        check=False)
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    def valid_branch_name(self, name: str) -> bool:
        """Whether ``name`` is a branch name git accepts (``git check-ref-format``)."""
        if not name or name.startswith("-"):
            return False
        return self.run("check-ref-format", f"refs/heads/{name}", check=False).returncode == 0

    def branch_name_problem(self, name: str) -> str | None:
        """Why ``name`` cannot name a branch the runner writes, or None. As git checks a
        branch name (``git check-ref-format --branch``), and besides what git 2.39 still
        lets through there but reads as something else in every other command: ``HEAD``
        and ``@`` (this checkout's commit), a full ref (``refs/heads/x`` would be the branch
        ``refs/heads/refs/heads/x``), a remote's branch (``origin/main``)."""
        if not name or name.startswith("-"):
            return "not a valid branch name"
        if self.run("check-ref-format", "--branch", name, check=False).returncode != 0 \
                or not self.valid_branch_name(name):
            return "not a valid branch name"
        first = name.split("/", 1)[0]
        if name in ("HEAD", "@") or first == "HEAD" or "@{" in name:
            return "names this checkout's HEAD, not a branch"
        if first == "refs":
            return "a full ref name; give the branch's short name"
        remotes = set(self.run("remote", check=False).stdout.split()) | {"origin"}
        if "/" in name and first in remotes:
            return f"names a branch of the remote {first}, not a branch of its own"
        return None

    def read_blobs(self, rev: str, paths: Sequence[str]) -> dict[str, bytes | None]:
        """The contents of ``paths`` (no line break in them) in the tree of ``rev``, in one
        ``git cat-file --batch``; None for a path the tree does not hold as a file."""
        query = "".join(f"{rev}:{p}\n" for p in paths)
        data = run_bytes(self.root, "cat-file", "--batch", input=query.encode()).stdout
        found: dict[str, bytes | None] = {}
        pos = 0
        for path in paths:
            end = data.index(b"\n", pos)
            header = data[pos:end].split(b" ")
            pos = end + 1
            if len(header) == 3 and header[1] in (b"blob", b"tree", b"commit", b"tag"):
                size = int(header[2])
                found[path] = data[pos:pos + size] if header[1] == b"blob" else None
                pos += size + 1
            else:  # "<name> missing", "ambiguous"...
                found[path] = None
        return found

    def tree_entries(self, rev: str, *, recursive: bool = False) -> dict[str, tuple[str, str, str]]:
        """``path -> (mode, type, object)`` of the top-level entries of ``rev``'s tree (every
        file below it, ``recursive``)."""
        listing = self.run("ls-tree", *(("-r",) if recursive else ()), "-z", "--end-of-options",
                           rev).stdout
        entries = {}
        for entry in filter(None, listing.split("\0")):
            meta, _, path = entry.partition("\t")
            mode, kind, obj = meta.split(" ")
            entries[path] = (mode, kind, obj)
        return entries

    def update_index(self, paths: Sequence[str]) -> None:
        """Stage ``paths`` (relative to the top level) as they are in the working tree."""
        run(self.toplevel, "update-index", "--add", "--remove", "-z", "--stdin",
            input="".join(f"{p}\0" for p in paths))

    # --- remotes -------------------------------------------------------------------------

    def fetch(self, remote: str, branch: str) -> str:
        self.run("fetch", "-q", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
        return self.out("rev-parse", f"refs/remotes/{remote}/{branch}^{{commit}}")

    def fetch_branch(self, remote: str, branch: str) -> str | None:
        """``fetch`` of a branch the remote may not have: None (and no stale tracking ref
        left) when it has none; GitError for any other failure."""
        tracking = f"refs/remotes/{remote}/{branch}"
        proc = self.run("fetch", "-q", remote, f"+refs/heads/{branch}:{tracking}", check=False)
        if proc.returncode == 0:
            return self.out("rev-parse", f"{tracking}^{{commit}}")
        if "couldn't find remote ref" not in proc.stderr:
            raise GitError(("fetch", remote, branch), _message(proc.stderr, proc.stdout))
        self.run("update-ref", "-d", tracking, check=False)
        return None

    def push_commit(self, remote: str, commit: str, branch: str,
                    expect: str | None) -> tuple[bool, str]:
        """Push ``commit`` to the remote's ``branch`` only if that branch is at ``expect``
        (None: only if it does not exist), a compare-and-swap on the remote."""
        ref = f"refs/heads/{branch}"
        proc = self.run("push", "--porcelain", f"--force-with-lease={ref}:{expect or ''}",
                        remote, f"{commit}:{ref}", check=False)
        return proc.returncode == 0, (proc.stderr.strip() or proc.stdout.strip())

    def is_ancestor(self, a: str, b: str) -> bool:
        return self.run("merge-base", "--is-ancestor", a, b, check=False).returncode == 0

    def ancestry(self, a: str, b: str) -> bool | None:
        """Whether commit ``a`` is an ancestor of (or is) commit ``b``; None when git cannot
        tell: one of them is not a commit this repository holds."""
        proc = self.run("merge-base", "--is-ancestor", "--end-of-options", a, b, check=False)
        return {0: True, 1: False}.get(proc.returncode)

    def has_commit(self, rev: str) -> bool:
        return resolve_commit(self.root, rev) is not None

    def fetch_commit(self, remote: str, commit: str) -> bool:
        """Fetch one commit (and its history) by name from ``remote``, without moving any
        ref; False when the remote does not give it (unknown there, a server that allows no
        fetch by name, no such remote). Then the remote's branches are fetched, which hold
        any commit a runner pushed."""
        for args in (("fetch", "-q", "--no-tags", remote, commit),
                     ("fetch", "-q", "--no-tags", remote)):
            if self.run(*args, check=False).returncode == 0 and self.has_commit(commit):
                return True
        return False

    def generation(self, commit: str) -> int:
        """The number of commits on ``commit``'s first-parent chain (itself included): a
        number that only grows along a branch, the generation a publication carries."""
        return int(self.out("rev-list", "--count", "--first-parent", "--end-of-options", commit))

    def commits_between(self, base: str, head: str) -> list[tuple[str, str]]:
        """(sha, raw message) of the commits in base..head, newest first."""
        log = self.run("log", "-z", "--format=%H%x00%B", f"{base}..{head}", "--").stdout
        return [(sha, text) for (sha, text), _ in z_records([log], 2)]

    def move_to(self, target: str) -> None:
        """Move HEAD, index and changed files to ``target``, keeping local edits elsewhere."""
        self.run("reset", "-q", "--keep", target)

    def push(self, remote: str, branch: str) -> tuple[bool, str]:
        proc = self.run("push", "--porcelain", remote, f"HEAD:refs/heads/{branch}", check=False)
        return proc.returncode == 0, (proc.stderr.strip() or proc.stdout.strip())
