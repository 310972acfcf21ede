"""Publishing: the flags as served (the native artifact and the flagd export) put where
applications and flagd fetch them, only when what they serve changed.

A publication is two files rendered from the repository at one source commit:
``flags.json`` (the native artifact, :mod:`runner.evaluate.artifact`) and
``flags.flagd.json`` (the flagd export, validated against flagd's bundled schema first).
Each file is compared with the one in place by what it *serves*: its parsed document
without the source commit it is stamped with. A commit that changes nothing applications
see (an unrelated commit, a rollout that only waits) rewrites nothing, so clients never
reload for nothing; a file in place that is missing, damaged or hand-edited is replaced.
A file whose served content is unchanged keeps its bytes (and its source commit).

Targets (:func:`parse_target`):

- ``dir:PATH``, or a path that is a folder, or does not exist and does not end in
  ``.json``: both files in that folder, each written atomically (``runner.files``), mode
  0644 so a static web server can read them;
- ``file:PATH``, or any other path (one ending in ``.json``, an existing file): the native
  artifact alone, as ``advance --publish PATH`` always wrote it;
- ``branch:NAME``: one commit per served change on a branch of its own history (a root
  commit first, never sharing history with the branch the flags live on), its tree exactly
  the two files, its message naming the source commit (``Rollout-Source-Commit:``). Built
  as the runner's own commits are (:func:`runner.reconcile.commit.build`: ``git
  fast-import`` on a private ref, the working tree and index untouched), verified, then
  either moved locally with a compare-and-swap ``update-ref``, or pushed with a
  compare-and-swap (``--force-with-lease`` at the tip it was built on). A rejected push
  fetches the branch again: if what it now serves is what this run would publish (a racing
  runner published it) the publication is done; otherwise the commit is rebuilt on the new
  tip and pushed again, at most ``attempts`` times, as ``runs`` retries its own pushes.

A branch that exists and whose tip does not carry the ``Rollout-Source-Commit`` trailer is
no publication branch: it is never written to (a typo such as ``branch:main`` must not
replace a branch of people's work). Git itself is run by ``runner.git``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import gzip
import json
import os
import random
import re
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runner.errors import ExternalError, UsageError
from runner.files import TMP_PREFIX, read_regular, target_problem, write_atomic
from runner.git import Git, GitError, NotARepository
from runner.load import InvalidRepository, load_repository
from runner.load.config import load_config
from runner.load.layout import folders
from runner.model.flagsets import selected
from runner.reconcile import message
from runner.reconcile.commit import (
    CommitSpec,
    FileChange,
    blob_id,
    build,
    check_identity,
    locked,
)
from runner.reconcile.runs import Stop, author
from runner.safetext import record_line
from runner.signing import SIG_NAME, SIGNED_NAMES, check_private_key, sig_name_for, sign_publication
from runner.trailers import trailer_format

NATIVE = "flags.json"
FLAGD = "flags.flagd.json"
PUBLISHED = (NATIVE, FLAGD)
#: The order in which a folder's files are renamed into place, one unit under the folder's
#: lock: the flagd export first, the native artifact last (a reader between the two renames
#: sees a newer flagd file beside an older native one, never the other way round). A third
#: file of the unit (``flags.sig`` when signing is on) is not named here: files not in this
#: tuple are renamed after these, in name order, so a signature lands last, once the files
#: it covers are in place.
UNIT_ORDER = (FLAGD, NATIVE)
#: The folder, beside the whole publication's files, holding one folder per flag set
#: (``sets/NAME/flags.json``...; ``[tool.rollout.publish.sets]``).
SETS_DIR = "sets"
#: The suffix of the precompressed copy written beside each published file of a ``dir:``
#: target (gzip, deterministic: no name, mtime 0), for static servers that serve it
#: (nginx ``gzip_static on``) to clients that ask for gzip.
GZ = ".gz"
#: The files of a group that get a precompressed copy (the signature is a few hundred bytes).
COMPRESSED = (FLAGD, NATIVE)
#: A commit name as a publication records it (SHA-1 or SHA-256, full length).
COMMIT_NAME = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
#: The signature beside them when signing is on (runner/signing.py).
SIG = SIG_NAME
#: The private ref a publication commit is built on before it is verified and used.
PUBLISH_REF = "refs/rollout-runner/publish"
#: The publication commit's trailers (named with the runner's in runner/reconcile/message.py).
SOURCE_TRAILER = message.SOURCE_COMMIT
DIGEST_TRAILER = message.DIGEST
PUSH_ATTEMPTS = 10
#: The largest published file read back for comparison (as the artifact reader's limit).
MAX_PUBLISHED_BYTES = 64 * 1024 * 1024
#: Mode of the published files: readable by the web server's user.
PUBLISHED_MODE = 0o644


class PublishError(ExternalError):
    """A target could not be published; the message says why (and that nothing changed
    there, or what did)."""


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # "dir" | "file" | "branch"
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def parse_target(text: str) -> Target:
    """A ``--publish``/``--to`` value as a target; ValueError saying what is wrong."""
    if not text.strip():
        raise ValueError("empty")
    kind, sep, value = text.partition(":")
    if sep and kind in ("dir", "file", "branch"):
        if not value.strip():
            raise ValueError(f"nothing after {kind}:")
        return Target(kind, value)
    # a bare path: a folder when it is one, or is new and not named like a file; else
    # today's single file (whose checks then refuse a FIFO, a device...)
    if os.path.isdir(text) or (not os.path.lexists(text) and not text.endswith(".json")):
        return Target("dir", text)
    return Target("file", text)


def target_problems(root: Path, target: Target) -> str | None:
    """Why ``target`` cannot be published to, known before anything is done, or None."""
    # the signature file beside the others is checked as they are (written when signing is
    # on): a tracked file, or a place inside .git, is never written as one either
    if target.kind == "file":
        path = Path(target.value)
        sig = path.with_name(sig_name_for(path.name))
        return (target_problem(target.value) or target_problem(sig)
                or _inside_repository(root, [path, sig]))
    if target.kind == "dir":
        if os.path.exists(target.value) and not os.path.isdir(target.value):
            return "exists and is not a folder"
        for name in (*PUBLISHED, SIG_NAME):
            if (why := target_problem(os.path.join(target.value, name))) is not None:
                return f"{name} there {why}"
        folder = Path(target.value)
        return _inside_repository(root, [folder, *(folder / name for name in (*PUBLISHED,
                                                                              SIG_NAME))])
    try:
        git = Git.open(root)
    except GitError:
        return "a branch target needs a git repository"
    if (why := git.branch_name_problem(target.value)) is not None:
        return why
    if (git.branch() or "").casefold() == target.value.casefold():  # MAIN is main where
        # case does not count (a ref is a file: macOS, Windows)
        return "that branch is checked out here; the published branch has its own history"
    return None


def _within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or inside it, letter case aside: on a case-insensitive file
    system (macOS, Windows: GitHub's runners among them) ``Flags/`` is ``flags/``, and a
    name that differs only in case is never a publication place anyway."""
    path, folder = Path(str(path).casefold()), Path(str(folder).casefold())
    return path == folder or folder in path.parents


def _in_git_folder(path: Path) -> bool:
    """A ``.git`` anywhere in ``path``, letter case aside (``.GIT`` is ``.git`` where case
    does not count, as git itself treats it: core.protectHFS/NTFS)."""
    return any(part.casefold() == ".git" for part in path.parts)


def _inside_repository(root: Path, paths: Sequence[Path]) -> str | None:
    """Why writing ``paths`` would write into the repository's own files, or None: inside
    a ``.git`` folder (this repository's, or any), inside the flags or rollouts folders (the
    runner's input), or over a file the repository tracks. Paths are compared once
    symlinks are resolved, so a link into one of those places is refused as well."""
    flags_dir, rollouts_dir = folders(root)
    resolved = [Path(os.path.realpath(p)) for p in paths]
    git_dirs: list[Path] = []
    git: Git | None
    try:
        git = Git.open(root)
    except GitError:
        git = None
    else:
        common = git.out("rev-parse", "--path-format=absolute", "--git-common-dir")
        git_dirs = [Path(os.path.realpath(git.git_dir)), Path(os.path.realpath(common))]
    for given, path in zip(paths, resolved, strict=True):
        if _in_git_folder(path) or _in_git_folder(Path(os.path.abspath(given))) \
                or any(_within(path, d) for d in git_dirs):
            return f"{given} is inside a .git folder"
        for what, folder in (("flags", flags_dir), ("rollouts", rollouts_dir)):
            if _within(path, Path(os.path.realpath(root / folder))):
                return f"{given} is inside the repository's {what} folder ({folder})"
    if git is None:
        return None
    top = Path(os.path.realpath(git.toplevel))
    inside = [(g, p) for g, p in zip(paths, resolved, strict=True) if _within(p, top)
              and str(p).casefold() != str(top).casefold()]
    if not inside:
        return None
    top_cf = Path(str(top).casefold())
    relative = [(g, Path(str(p).casefold()).relative_to(top_cf).as_posix()) for g, p in inside]
    specs = [f":(top,literal,icase){r}" for _, r in relative]  # case aside, as _within
    tracked = {t.casefold() for t in
               git.run("ls-files", "-z", "--full-name", "--", *specs).stdout.split("\0")}
    for given, rel in relative:
        if rel in tracked:
            return f"{given} is a file the repository tracks"
    return None


# --- what is published -------------------------------------------------------------------------


def render(repo: Any, source_commit: str | None, generation: int | None = None,
           environment: str | None = None) -> dict[str, bytes]:
    """The two published files of ``repo`` stamped with ``source_commit`` and its
    ``generation`` (see :func:`generation_of`), and with ``environment`` when ``repo`` is
    the view of a declared one."""
    # start-up: advance and the person commands import this module for their --publish
    # checks; rendering (~13 ms) is paid only when there is a target
    from runner.evaluate.render import render_artifact

    return {NATIVE: render_artifact(repo, source_commit=source_commit, fmt="native",
                                    generation=generation, environment=environment),
            FLAGD: render_artifact(repo, source_commit=source_commit, fmt="flagd",
                                   generation=generation, environment=environment)}


def set_prefix(name: str) -> str:
    """Where a set's files are, relative to a publication's folder or branch tree."""
    return f"{SETS_DIR}/{name}/"


def render_sets(repo: Any, source_commit: str | None, generation: int | None = None,
                environment: str | None = None) -> dict[str, dict[str, bytes]]:
    """Each set of ``[tool.rollout.publish.sets]`` (by its :func:`set_prefix`) rendered as
    the whole is, stamped alike, from the repository cut down to the flags the set holds
    (its prerequisites among them: :func:`runner.model.flagsets.selected`), so that each of
    them evaluates exactly as in the whole artifact."""
    out = {}
    for spec in repo.config.publish_sets:
        keys = selected(repo.flags, spec)
        subset = dataclasses.replace(repo, flags=MappingProxyType({k: repo.flags[k]
                                                                   for k in keys}))
        out[set_prefix(spec.name)] = render(subset, source_commit, generation, environment)
    return out


def compress(data: bytes) -> bytes:
    """The precompressed copy of a published file: gzip, no file name, mtime 0, so the
    same file always gives the same bytes (a static server's ETag does not move for
    nothing)."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def _gz_holds(packed: bytes | None, plain: bytes) -> bool:
    """``packed`` is a gzip of exactly ``plain`` (inflated no further than one byte past
    it: a bomb in place costs nothing)."""
    if packed is None:
        return False
    inflate = zlib.decompressobj(wbits=31)
    try:
        got = inflate.decompress(packed, len(plain) + 1)
    except zlib.error:
        return False
    return got == plain and inflate.eof and not inflate.unused_data


def generation_of(git: Git, commit: str) -> int:
    """A publication's generation: the number of commits on its source commit's
    first-parent chain. It only grows along the branch the runner commits to (each commit
    there has the previous tip as first parent), so a client can refuse an older artifact
    without git. A shallow clone cannot count it: refused."""
    if git.is_shallow():
        raise PublishError("a shallow clone cannot count the publication's generation (the "
                           "history is cut off); check out with fetch-depth: 0, or git fetch "
                           "--unshallow; nothing published")
    return git.generation(commit)


class _FlagdCheck:
    """The flagd export checked against flagd's bundled schema (flagd would refuse a file
    that breaks it) once, and only when it is about to be written: an unchanged
    publication pays no schema validation."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.problem: str | None = None
        self.done = False

    def __call__(self, changed: Sequence[str]) -> None:
        if FLAGD not in changed:
            return
        if not self.done:
            from runner.evaluate.flagd import BUNDLED_SCHEMAS, flagd_problems  # ~13 ms: as render

            problems = flagd_problems(json.loads(self.data), BUNDLED_SCHEMAS)
            self.problem, self.done = (problems[0] if problems else None), True
        if self.problem is not None:
            raise PublishError(f"the flagd export breaks flagd's schema ({self.problem}); "
                               "nothing published")


def _document(data: bytes | None) -> dict[str, Any] | None:
    """A published file's JSON object; None when there is no file or it is no JSON object."""
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def served(name: str, data: bytes | None) -> Any:
    """What a published file serves: its document without the commit and the generation it
    is stamped with (None when there is no such file or it is no JSON object)."""
    doc = _document(data)
    if doc is None:
        return None
    if name == FLAGD:
        meta = doc.get("metadata")
        if isinstance(meta, dict):
            doc["metadata"] = {k: v for k, v in meta.items()
                               if k not in ("sourceCommit", "generation")}
        return doc
    doc.pop("source_commit", None)
    doc.pop("generation", None)
    return doc


def stamp(name: str, data: bytes | None) -> tuple[str, int] | None:
    """The (source commit, generation) a published file carries, or None when it carries
    no generation (hand-written, built by ``rollout build``, published by 0.2): such a file
    is replaced as before, ordering starts with the first publication that has one."""
    doc = _document(data)
    if doc is None:
        return None
    if name == FLAGD:
        meta = doc.get("metadata")
        if not isinstance(meta, dict):
            return None
        source, gen = meta.get("sourceCommit"), meta.get("generation")
    elif name == NATIVE:
        source, gen = doc.get("source_commit"), doc.get("generation")
    else:
        return None
    if not isinstance(source, str) or not COMMIT_NAME.fullmatch(source) \
            or not isinstance(gen, int) or isinstance(gen, bool):
        return None
    return source, gen


def merge(old: Mapping[str, bytes | None], new: Mapping[str, bytes]
          ) -> tuple[dict[str, bytes], list[str]]:
    """The files to have in place (each new file, or the old one when it serves the same)
    and the names of those that change."""
    signer = getattr(new, "signer", None)
    result, changed = {}, []
    for name, data in new.items():
        if name == SIG:
            continue  # signed below, over the files in place
        before = old.get(name)
        if before is not None and served(name, before) == served(name, data) is not None:
            result[name] = before
        else:
            result[name] = data
            changed.append(name)
    if signer is not None:
        _sign_merged(signer, old.get(SIG), result, changed)
    return result, changed


@dataclass
class Outcome:
    target: Target
    changed: list[str] = field(default_factory=list)  # files written, or in the new commit
    commit: str | None = None  # a branch target: the published tip
    pushed: bool = False
    raced: bool = False  # a racing run had published the same already
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    #: a newer publication is in place (this run's source commit is its ancestor): nothing
    #: written, and why, for a warning; not an error
    newer: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class _Ours:
    """What this run publishes: the files rendered, at which commit, in which repository
    (None: no repository, or no commit: nothing to order by) and where to fetch from."""
    files: Mapping[str, bytes]
    source: str
    git: Git | None
    remote: str
    #: each flag set's files, by :func:`set_prefix` (none: no ``[tool.rollout.publish.sets]``)
    sets: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)


def _groups(ours: _Ours) -> list[tuple[str, Mapping[str, bytes]]]:
    """The groups of files a publication holds, (folder prefix, files): the whole (``""``)
    first, then each set, by name. Each group is ordered, merged and signed as the whole
    always was; the whole's order is taken over every group's stamps at once."""
    return [("", ours.files), *sorted(ours.sets.items())]


def _group_stamps(old: Mapping[str, Mapping[str, bytes | None]]) -> dict[str, tuple[str, int]]:
    """The stamps of every group's files in place, named by their path."""
    return {prefix + name: st for prefix, files in old.items()
            for name, st in _stamps(files).items()}


def _order(ours: _Ours, in_place: Mapping[str, tuple[str, int]], where: str) -> str | None:
    """May ``ours`` replace the publication in place whose files carry ``in_place``
    (name -> (source commit, generation))? None: yes, every one of them was made at an
    ancestor of our source commit (or at it). A text for a warning when one is newer (our
    source commit is an ancestor of its). PublishError when the histories diverged, or
    when it cannot be told: never overwrite what cannot be shown to be older.

    A commit the repository does not hold (a stale run that fetched before a rollback was
    pushed) cannot be an ancestor of ours, whose history is all here; it is fetched from
    the remote to tell newer from diverged, and if it cannot be fetched, nothing is
    written (an error: the publisher cannot say which it is)."""
    seen: set[str] = set()
    for name, (theirs, gen) in in_place.items():
        if theirs == ours.source or theirs in seen:  # a commit told once (sets share them)
            continue
        seen.add(theirs)
        if ours.git is None or not ours.source:
            raise PublishError(f"{where}: {name} in place was published at {theirs[:12]} "
                               "(with a generation) and this publication has no commit to "
                               "order it by; nothing written")
        git = ours.git
        if not git.has_commit(theirs) and not git.fetch_commit(ours.remote, theirs):
            raise PublishError(f"{where}: {name} in place was published at {theirs[:12]} "
                               f"(generation {gen}), a commit this repository does not hold "
                               f"and {ours.remote} did not give: cannot tell whether it is "
                               "newer; nothing written (git fetch, then publish again)")
        if git.ancestry(theirs, ours.source):
            continue
        if git.ancestry(ours.source, theirs):
            return (f"{where}: not replaced: a newer publication is in place ({name} of "
                    f"{theirs[:12]}, generation {gen}; this run's {ours.source[:12]} is "
                    "older)")
        raise PublishError(f"{where}: {name} in place was published at {theirs[:12]} "
                           f"(generation {gen}), which is neither an ancestor nor a "
                           f"descendant of {ours.source[:12]}: the histories diverged; "
                           "nothing written (a rebuilt history: remove the publication in "
                           "place, and see allow_generation_reset for the clients)")
    return None


def _stamps(files: Mapping[str, bytes | None]) -> dict[str, tuple[str, int]]:
    return {name: st for name, data in files.items() if (st := stamp(name, data)) is not None}


def _claims_stamp(name: str, data: bytes | None) -> bool:
    """The file names a source commit or a generation, valid or not."""
    doc = _document(data)
    if doc is None or name not in PUBLISHED:
        return False
    if name == FLAGD:
        meta = doc.get("metadata")
        return isinstance(meta, dict) and ("sourceCommit" in meta or "generation" in meta)
    return "source_commit" in doc or "generation" in doc


def _genuine(ours: _Ours, old: Mapping[str, bytes | None]) -> dict[str, bytes | None]:
    """``old`` (the files in place, already ordered: none is newer than ours) with every
    file whose stamp no publication wrote taken as missing: its generation is not the
    first-parent count of the source commit it names (a hand-edited or forged
    ``"generation": 999999``). :func:`merge` would otherwise keep such a file because what
    it serves is unchanged, and sign it: CI's key over a generation above every real one,
    after which clients refuse each later publication as older, a rollback included. A file
    whose stamp is no stamp (``"generation": "9"``, a source commit that names no commit)
    is taken as missing as well: signed, it would be an artifact every client refuses."""
    if ours.git is None:
        return dict(old)
    git, counted, out = ours.git, {}, dict(old)
    for name, data in old.items():
        if stamp(name, data) is None and _claims_stamp(name, data):  # "generation": "9", 1.5...
            out[name] = None
    for name, (source, gen) in _stamps(old).items():
        if source not in counted:
            counted[source] = git.generation(source)
        if gen != counted[source]:
            out[name] = None
    return out


def publish(root: Path, repo: Any, targets: Sequence[Target], *, source_commit: str,
            author: tuple[str, str], push: bool = False, remote: str = "origin",
            attempts: int = PUSH_ATTEMPTS, signing_key: str | None = None,
            environment: str | None = None) -> list[Outcome]:
    """Publish ``repo`` (loaded, valid) at ``source_commit`` to every target; each target
    is tried whatever happened to the others. ``environment``: ``repo`` is the view of
    that declared environment (what it serves, its states); its files name it. With
    ``push`` a branch target is pushed to ``remote``; without, the branch is moved in
    ``root``'s repository only. No target is ever given a publication older than the one
    it holds (:func:`_order`). With ``signing_key`` (base64, checked) every target also
    holds the publication's signature."""
    outcomes = [Outcome(t) for t in targets]
    git: Git | None
    try:
        git = Git.open(root)
    except GitError:
        git = None
    generation = None
    if git is not None and source_commit and git.has_commit(source_commit):
        try:
            generation = generation_of(git, source_commit)
        except (PublishError, GitError) as e:
            for o in outcomes:
                o.error = str(e)
            return outcomes
    files = render(repo, source_commit, generation, environment)
    sets: dict[str, Mapping[str, bytes]] = dict(render_sets(repo, source_commit, generation,
                                                            environment))
    if signing_key is not None:
        signer = Signer(root, signing_key)
        files = Publication(files, signer)
        sets = {prefix: Publication(group, signer) for prefix, group in sets.items()}
    ours = _Ours(files, source_commit, git, remote, sets)
    check = _FlagdCheck(files[FLAGD])
    for o in outcomes:
        try:
            if o.target.kind == "file":
                _to_file(Path(o.target.value), ours, o)
            elif o.target.kind == "dir":
                _to_dir(Path(o.target.value), ours, o, check)
            else:
                _to_branch(Git.open(root), o.target.value, ours, author,
                           o, check, push=push, remote=remote, attempts=attempts)
        except PublishError as e:
            o.error = str(e)
        except GitError as e:
            o.error = str(e)
        except OSError as e:
            o.error = f"{e.filename or o.target.value}: {e.strerror or e}"
    return outcomes


@contextlib.contextmanager
def _folder_locked(folder: Path) -> Iterator[None]:
    """The folder's lock (``flock`` on the folder itself), held across read, compare and
    write, so that two publishers to one folder take turns: the second reads what the
    first wrote. On the folder, not on a lock file in it: a served folder holds the
    published files only (a web server would serve a lock file too)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and so the lock


def _to_file(path: Path, ours: _Ours, out: Outcome) -> None:
    """The native artifact alone, by the same rules as a folder: only forward, under the
    folder's lock, rewritten only when what it serves changed (and its signature beside it,
    ``flags.sig`` or ``NAME.sig``, when signed)."""
    signer = getattr(ours.files, "signer", None)
    sig_path = path.with_name(sig_name_for(path.name))
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    with _folder_locked(folder):
        old = {NATIVE: _read(path), SIG: _read(sig_path) if signer is not None else None}
        if (newer := _order(ours, _stamps(old), str(out.target))) is not None:
            out.newer = newer
            return
        merged, changed = merge(_genuine(ours, old),
                                Publication({NATIVE: ours.files[NATIVE]}, signer))
        for name in sorted(changed, key=_unit_order):  # the signature last
            write_atomic(path if name == NATIVE else sig_path, merged[name], mode=PUBLISHED_MODE)
            out.changed.append(path.name if name == NATIVE else sig_path.name)


def _read(path: Path) -> bytes | None:
    try:
        data = read_regular(path, MAX_PUBLISHED_BYTES)
    except FileNotFoundError:
        return None
    return None if len(data) > MAX_PUBLISHED_BYTES else data


def _to_dir(folder: Path, ours: _Ours, out: Outcome, check: _FlagdCheck) -> None:
    """Both files (the unit) in ``folder``: under the folder's lock, ordered against what
    is in place, the changed ones renamed into place in ``UNIT_ORDER``."""
    if folder.exists() and not folder.is_dir():
        raise PublishError(f"{folder} exists and is not a folder; nothing published")
    if not folder.exists():
        check(list(ours.files))  # a folder is created only for files that will be written
        folder.mkdir(parents=True, exist_ok=True)
    with _folder_locked(folder):
        groups = _groups(ours)
        old = {prefix: {name: _read(folder / (prefix + name)) for name in files}
               for prefix, files in groups}
        if (newer := _order(ours, _group_stamps(old), str(out.target))) is not None:
            out.newer = newer
            return
        writes: dict[str, bytes] = {}
        for prefix, files in groups:
            merged, changed = merge(_genuine(ours, old[prefix]), files)
            check(changed)
            out.changed += [prefix + name for name in changed]
            writes.update({prefix + name: merged[name] for name in changed})
            for name in COMPRESSED:  # a copy that is not exactly the file's: written again
                if name in changed or not _gz_holds(_read(folder / (prefix + name + GZ)),
                                                    merged[name]):
                    writes[prefix + name + GZ] = compress(merged[name])
        # a copy written alone (a folder published before copies were) is said too
        out.changed += [p for p in writes if p.endswith(GZ) and p[:-len(GZ)] not in writes]
        _replace_unit(folder, writes)


def _unit_order(path: str) -> tuple[int, str, int, int, str]:
    """The rename order of a unit's files: each set's group (by name), the whole's last;
    in a group ``UNIT_ORDER`` (the flagd export, then the native artifact, then anything
    else: the signature), each file's gzip copy just before the file. A static server that
    serves the copy to gzip clients and the file to others thus never gives either kind of
    client a newer native artifact beside an older flagd one, nor a signature before what
    it signs."""
    folder, _, name = path.rpartition("/")
    plain = name[:-len(GZ)] if name.endswith(GZ) and name[:-len(GZ)] in COMPRESSED else name
    rank = UNIT_ORDER.index(plain) if plain in UNIT_ORDER else len(UNIT_ORDER)
    return (0 if folder else 1, folder, rank, 0 if plain != name else 1, name)


def _replace_unit(folder: Path, files: Mapping[str, bytes]) -> None:
    """Every file of ``files`` (paths relative to ``folder``: a set's are in
    ``sets/NAME/``) written to a flushed temporary file beside its place first, then all
    renamed into place one after the other (:func:`_unit_order`), then the folders
    fsynced: a reader sees a mixed unit at most between two renames, a crash before the
    first rename leaves the old unit whole. Only a regular file is ever replaced."""
    if not files:
        return
    temporary: dict[str, str] = {}
    touched: set[Path] = {folder}
    try:
        for path, data in files.items():
            target = folder / path
            if target.parent != folder:  # a set's folder (and sets/), made when first needed
                target.parent.mkdir(parents=True, exist_ok=True)
                touched.update(p for p in target.parents if folder in p.parents)
            if (why := target_problem(target)) is not None:
                raise PublishError(f"{target} {why}; nothing published")
            fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{target.name}.", suffix=".tmp",
                                       dir=target.parent)
            temporary[path] = tmp
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, PUBLISHED_MODE)
        for path in sorted(temporary, key=_unit_order):
            os.replace(temporary.pop(path), folder / path)
    finally:
        for tmp in temporary.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    for where in sorted(touched, key=lambda p: -len(p.parts)):  # the deepest first
        dir_fd = os.open(where, os.O_RDONLY)
        try:
            with contextlib.suppress(OSError):  # a file system that cannot: only durability lost
                os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --- the published branch ----------------------------------------------------------------------


def _is_publication(git: Git, commit: str) -> bool:
    fmt = trailer_format(SOURCE_TRAILER)
    return bool(git.run("log", "-1", f"--format={fmt}", commit, "--").stdout.strip())


def changed_flags(old: bytes | None, new: bytes) -> list[str]:
    """The keys of the flags whose served entry differs between two native artifacts."""
    before, after = served(NATIVE, old), served(NATIVE, new)
    flags_before = before.get("flags") if isinstance(before, dict) else None
    flags_after = after.get("flags") if isinstance(after, dict) else None
    if not isinstance(flags_before, dict) or not isinstance(flags_after, dict):
        return sorted(flags_after) if isinstance(flags_after, dict) else []
    return sorted(k for k in set(flags_before) | set(flags_after)
                  if flags_before.get(k) != flags_after.get(k))


def _message(source: str, changed: Sequence[str], flags: Sequence[str],
             digest: str | None) -> str:
    shown = ", ".join(flags[:20]) + (f" and {len(flags) - 20} more" if len(flags) > 20 else "")
    lines = [f"publish: flags of {source[:12]}", "", f"Files: {', '.join(changed)}."]
    if flags:
        lines.append(record_line(f"Flags changed: {shown}."))
    lines += ["", f"{SOURCE_TRAILER}: {source}"]
    if digest:
        lines.append(f"{DIGEST_TRAILER}: {digest}")
    return "\n".join(lines) + "\n"


def _digest(native: bytes) -> str | None:
    try:
        value = json.loads(native).get("digest")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _verify(git: Git, sha: str, parent: str | None, files: Mapping[str, bytes]) -> str | None:
    """Why the commit built is not exactly ``files`` on ``parent`` (or a root), or None."""
    parents = git.out("log", "-1", "--format=%P", sha, "--").split()
    if parents != ([parent] if parent else []):
        return f"commit {sha[:12]} has parents {' '.join(parents) or 'none'}"
    entries = git.tree_entries(sha, recursive=True)
    if set(entries) != set(files):
        return f"commit {sha[:12]} holds {', '.join(sorted(entries))}"
    for name, data in files.items():
        mode, kind, obj = entries[name]
        if (mode, kind) != ("100644", "blob") or obj != blob_id(data, len(obj)):
            return f"commit {sha[:12]} does not hold {name} as asked"
    return None


def _build_on(git: Git, base: str | None, files: Mapping[str, bytes], changed: Sequence[str],
              flags: Sequence[str], source: str, ident: str) -> str:
    spec = CommitSpec(_message(source, changed, flags, _digest(files[NATIVE])),
                      tuple(FileChange(name, data) for name, data in files.items()))
    (sha,) = build(git, PUBLISH_REF, base, [spec], ident, whole_tree=True)
    problem = _verify(git, sha, base, files)
    if problem is not None:
        git.run("update-ref", "-d", PUBLISH_REF, check=False)
        raise PublishError(f"refused to publish: the commit built is not the one asked for "
                           f"({problem}); nothing published")
    return sha


def _tip_stamps(git: Git, tip: str, stamps: dict[str, tuple[str, int]]
                ) -> dict[str, tuple[str, int]]:
    """What the branch's tip was published at: its files' ``stamps``, and the source commit
    its message names (the newest: a file whose served content did not change keeps an
    older stamp) when its files carry a generation."""
    if stamps:
        source = git.run("log", "-1", f"--format={trailer_format(SOURCE_TRAILER)}", tip,
                         "--").stdout.strip()
        if COMMIT_NAME.fullmatch(source):
            stamps[f"the tip {tip[:12]}"] = (source, max(g for _, g in stamps.values()))
    return stamps


def _merge_groups(ours: _Ours, groups: Sequence[tuple[str, Mapping[str, bytes]]],
                  old: Mapping[str, Mapping[str, bytes | None]], check: _FlagdCheck
                  ) -> tuple[dict[str, bytes], list[str]]:
    """Every group merged with what is in place (:func:`merge`), as one tree of paths,
    and the paths that change; the flagd check before anything is built."""
    merged_all: dict[str, bytes] = {}
    changed_all: list[str] = []
    for prefix, files in groups:
        merged, changed = merge(_genuine(ours, old[prefix]), files)
        if changed:
            check(changed)
        merged_all.update({prefix + name: data for name, data in merged.items()})
        changed_all += [prefix + name for name in changed]
    return merged_all, changed_all


def _to_branch(git: Git, branch: str, ours: _Ours, author: tuple[str, str], out: Outcome,
               check: _FlagdCheck, *, push: bool, remote: str, attempts: int) -> None:
    source, groups = ours.source, _groups(ours)
    paths = [prefix + name for prefix, files in groups for name in files]
    for value, what in ((author[0], "the author name"), (author[1], "the author email")):
        if (why := check_identity(value, what)) is not None:
            raise PublishError(f"refused to commit: {why}; nothing published")
    if (problem := git.branch_name_problem(branch)) is not None:
        raise PublishError(f"branch:{branch}: {problem}; nothing published")
    ref = f"refs/heads/{branch}"
    # dated by the clock, not a simulated --now: the publication is a real-world event
    ident = f"{author[0]} <{author[1]}> {int(time.time())} +0000"
    with locked(git):
        base = git.fetch_branch(remote, branch) if push else git.resolve_ref(ref)
        for attempt in range(1, max(attempts, 1) + 1):
            if base is not None and not _is_publication(git, base):
                raise PublishError(f"branch {branch} exists and is not a publication branch (its "
                                   f"tip {base[:12]} has no {SOURCE_TRAILER} trailer); nothing "
                                   "published")
            in_tree = git.read_blobs(base, paths) if base else {}
            old = {prefix: {name: in_tree.get(prefix + name) for name in files}
                   for prefix, files in groups}
            if base is not None and (newer := _order(ours, _tip_stamps(git, base,
                                                                       _group_stamps(old)),
                                                     str(out.target))) is not None:
                out.newer, out.commit = newer, base
                git.run("update-ref", "-d", PUBLISH_REF, check=False)
                return
            merged, changed = _merge_groups(ours, groups, old, check)
            if not changed:
                out.commit = base
                git.run("update-ref", "-d", PUBLISH_REF, check=False)
                return
            flags = changed_flags(old[""].get(NATIVE), merged[NATIVE])
            sha = _build_on(git, base, merged, changed, flags, source, ident)
            if not push:
                zero = "0" * len(sha)
                refused = git.update_ref(f"update {ref} {sha} {base or zero}\n"
                                         f"delete {PUBLISH_REF}\n")
                if refused is None:
                    out.changed, out.commit = changed, sha
                    return
                out.notes.append(f"{branch} moved meanwhile ({refused}); built again")
                base = git.resolve_ref(ref)
                continue
            ok, detail = git.push_commit(remote, sha, branch, base)
            if ok:
                git.run("update-ref", f"refs/remotes/{remote}/{branch}", sha, check=False)
                git.run("update-ref", "-d", PUBLISH_REF, check=False)
                out.changed, out.commit, out.pushed = changed, sha, True
                return
            last = detail.splitlines()[-1] if detail else ""
            out.notes.append(f"push attempt {attempt} of {branch} rejected: {last}")
            new_base = git.fetch_branch(remote, branch)
            if new_base == base:  # the remote did not move: not a race, a refusal
                raise PublishError(f"push to {remote}/{branch} failed: {detail}")
            base = new_base
            out.raced = True
            time.sleep(random.uniform(0.02, 0.1) * attempt)
        raise PublishError(f"push to {remote}/{branch} rejected {attempts} times; nothing "
                           "published by this run")


def publish_at(root: Path, targets: Sequence[Target], head: str | None,
               env: Mapping[str, str], *, push: bool = False,
               remote: str = "origin") -> list[Outcome]:
    """Publish the repository as a run left it (its new states), stamped with ``head``
    (default: HEAD), committed to a branch target by the runner's identity (``env``'s
    ``ROLLOUT_AUTHOR_*``, else the config's). PublishError when nothing can be published:
    an invalid repository, an unusable identity, no commit for a branch target."""
    return publish_environments_at(root, [(None, targets)], head, env, push=push,
                                   remote=remote)[0]


def publish_environments_at(root: Path, plan: Sequence[tuple[str | None, Sequence[Target]]],
                            head: str | None, env: Mapping[str, str], *, push: bool = False,
                            remote: str = "origin") -> list[list[Outcome]]:
    """:func:`publish_at` for each (environment, its targets) of ``plan``, in order, from
    one load of the repository: each declared environment publishes its own view (its
    flags as it serves them, its states), stamped with the same source commit and
    generation (each environment has its own targets, so each target's order is its own);
    None: the repository of a single implicit environment, as always. The outcomes, one
    list per entry of ``plan``."""
    try:
        if head is None:
            head = Git.open(root).head()
        repo = load_repository(root)
        who = author(repo.config, env)
    except InvalidRepository as e:
        raise PublishError(f"the repository is not valid: {e}") from None
    except NotARepository:
        raise  # how the command was called: exit 2, as every command says it
    except (Stop, GitError) as e:
        raise PublishError(str(e)) from None
    if head is None and any(t.kind == "branch" for _, targets in plan for t in targets):
        raise PublishError("the repository has no commit to publish")
    try:  # checked by the command before its run already (signing_key): this is a guard
        key = signing_key(root, env)
    except UsageError as e:
        raise PublishError(str(e)) from None
    return [publish(root, repo.for_environment(name), targets, source_commit=head or "",
                    author=who, push=push, remote=remote, signing_key=key, environment=name)
            for name, targets in plan]


# --- signatures (the format: runner/signing.py) --------------------------------------------


def signing_key(root: Path, env: Mapping[str, str]) -> str | None:
    """The private key of ``[tool.rollout.publish] signing_key_env``, read from ``env`` and
    checked; None when publications are not signed. :class:`UsageError` naming the
    variable, never its value, when it is unset, empty or no Ed25519 key."""
    name = load_config(root)[0].signing_key_env
    if name is None:
        return None
    value = env.get(name, "")
    where = f"[tool.rollout.publish] signing_key_env = {name!r}"
    if not value.strip():
        raise UsageError(f"{where}: the variable {name} is not set or empty; nothing published")
    if (why := check_private_key(value)) is not None:
        raise UsageError(f"{where}: the variable {name} holds no usable Ed25519 private key "
                         f"({why}; `rollout keygen` prints one); nothing published")
    return value


class Publication(dict[str, bytes]):
    """The files rendered for the targets, and the :class:`Signer` that signs what each
    target ends up holding (None: unsigned). Signed, it holds ``flags.sig`` too (of the
    files as rendered), so that every target reads the signature in place with the others;
    :func:`merge` signs again what the target ends up holding."""

    def __init__(self, files: Mapping[str, bytes], signer: Signer | None) -> None:
        super().__init__({n: d for n, d in files.items() if n != SIG})
        self.signer = signer
        if signer is not None:
            self[SIG] = signer(self)


def publication_generation(root: Path, source_commit: str) -> int:
    """The generation a signature names for an artifact that carries none (0 without a
    commit): :func:`generation_of`, as the ordering stamps it into every publication."""
    if not source_commit:
        return 0
    return generation_of(Git.open(root), source_commit)


class Signer:
    """Signs the files a target ends up holding, with the source commit and generation of
    the native artifact in place (a file kept because it serves the same keeps its stamp,
    and the signature names that one). Ed25519 is deterministic: the same files, the same
    key, the same bytes, so an unchanged publication rewrites no signature."""

    def __init__(self, root: Path, key: str) -> None:
        self.root = root
        self._key = key  # never printed, never in a message
        self._generations: dict[str, int] = {}

    def __repr__(self) -> str:
        return "Signer(<key>)"

    def __call__(self, files: Mapping[str, bytes]) -> bytes:
        try:
            doc = json.loads(files[NATIVE])
        except ValueError:
            doc = {}
        source = doc.get("source_commit") if isinstance(doc, dict) else None
        source = source if isinstance(source, str) else ""
        generation = doc.get("generation") if isinstance(doc, dict) else None
        if not isinstance(generation, int) or isinstance(generation, bool):
            if source not in self._generations:
                self._generations[source] = publication_generation(self.root, source)
            generation = self._generations[source]
        try:
            return sign_publication({n: files[n] for n in SIGNED_NAMES if n in files},
                                    generation=generation, source_commit=source,
                                    private_key_b64=self._key)
        except ValueError as e:  # checked before: never expected; the message holds no key
            raise PublishError(f"cannot sign the publication: {e}; nothing published") from None


def _sign_merged(signer: Signer, before: bytes | None, result: dict[str, bytes],
                 changed: list[str]) -> None:
    """Add the signature of ``result`` to it; a changed one (or none before) is written."""
    sig = signer(result)
    if sig != before:
        changed.append(SIG)
    result[SIG] = sig


__all__ = ["FLAGD", "NATIVE", "Outcome", "PublishError", "Target", "parse_target", "publish",
           "publish_at", "target_problems"]
