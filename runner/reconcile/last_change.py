"""Who last changed each rollout's state file, and whether HEAD's state is the runner's own:
an input of ``decide`` (the provenance rule of docs/runner.md).

The rule is about content, not about which commit the log shows last. Let R be the newest
commit that changed a flag's state file and carries runner trailers for that flag
(``Rollout-Flag`` naming it, ``Rollout-Action``). HEAD's state is the runner's when R has
one parent, its ``Rollout-State-After`` is the digest of HEAD's file and its
``Rollout-State-Before`` the digest of the file in its parent: exactly what the runner's own
last act produced from the state it started from. So a cherry-pick of an old runner commit
onto another state, an amend, a rebase onto a changed predecessor, a merge whose result is
a person's edit all count as a person's change. Commits of runner 0.1 carry no digests:
for them After is the commit's own file (it must be HEAD's) and Before is not checked, and
they count only when author and committer are the same identity at the same second, as the
runner writes them (a cherry-pick, amend or rebase by a person changes the committer).

Anything else is a person's change: the :class:`LastChange` names the newest commit that
changed the file (a merge compared with its first parent), its author — its committer when
it carries runner trailers, since a cherry-pick, amend or rebase keeps the runner as the
author — and, for a ``git revert``, the reverted commit.

Git output is read NUL-separated (``-z``; paths unquoted, see ``runner.git``): no character
in a message or a path can shift a field. One ``git log --full-history`` (so a merge cannot
hide the line of history that holds the runner's newer commits) stops as soon as every
flag's runner commit is found; one ``ls-tree`` and one ``cat-file --batch`` read HEAD's
files and the parent files those commits started from; one ``git show`` per reverted commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

from runner.git import REVERTS, Git, is_null_object, raw_change, read_blobs, stream, z_records
from runner.reconcile import message
from runner.reconcile.decide import LastChange
from runner.trailers import split_message

#: The digest of no file (the state file does not exist).
NONE = "none"

#: The raw message (%B) last: its trailers are read by runner/reconcile/message.py.
_FIELDS = ("%H", "%P", "%an <%ae>", "%cn <%ce>", "%at %ct", "%B")
_FORMAT = "%x00".join(_FIELDS)


def digest(content: bytes | None) -> str:
    """``sha256:<hex>`` of a state file's exact bytes, ``none`` for no file."""
    return NONE if content is None else "sha256:" + hashlib.sha256(content).hexdigest()


def _tree_blobs(git: Git, commit: str, paths: Iterable[str]) -> dict[str, str]:
    """Blob ids of ``paths`` (relative to the top level) in ``commit``; absent ones left out.
    One ``ls-tree`` per folder holding them (a folder's entries, NUL-separated)."""
    wanted = set(paths)
    folders = sorted({p.rpartition("/")[0] for p in wanted})
    found: dict[str, str] = {}
    for folder in folders:
        spec = ["--", f"{folder}/"] if folder else []
        out = git.run("ls-tree", "-z", "--full-tree", commit, *spec).stdout
        for entry in out.split("\0"):
            meta, _, path = entry.partition("\t")
            parts = meta.split(" ")
            if path in wanted and len(parts) == 3 and parts[1] == "blob":
                found[path] = parts[2]
    return found


def head_digests(git: Git, paths: Sequence[str]) -> dict[str, str]:
    """The digest of each file at HEAD (``none`` when it does not exist there)."""
    head = git.head()
    blobs = _tree_blobs(git, head, paths) if head is not None else {}
    contents = read_blobs(git.root, blobs.values())
    return {p: digest(contents.get(blobs[p])) if p in blobs else NONE for p in paths}


class _Runner:
    """A commit carrying runner trailers for a flag, as the walk found it."""

    __slots__ = ("after", "author", "before", "legacy_ok", "new", "old", "one_parent", "sha",
                 "subject")

    def __init__(self, sha: str, author: str, subject: str, one_parent: bool, before: str,
                 after: str, old: str, new: str, legacy_ok: bool) -> None:
        self.sha, self.author, self.subject, self.one_parent = sha, author, subject, one_parent
        self.before, self.after, self.old, self.new = before, after, old, new
        self.legacy_ok = legacy_ok


def last_changes(git: Git, paths: Mapping[str, str]) -> dict[str, LastChange | None]:
    """For each flag -> state file path (relative to the git top level): who last changed it
    (None when no commit ever touched it), ``by_runner`` when HEAD's state is the runner's
    own by the provenance rule (module docstring)."""
    wanted = {p: flag for flag, p in paths.items()}
    found: dict[str, LastChange | None] = dict.fromkeys(paths)
    head = git.head()
    if not wanted or head is None:
        return found
    # in a shallow clone the oldest commits present show every file as added by them:
    # they say nothing about who changed a state, so they count as not found
    boundary = git.shallow_boundary()
    newest: dict[str, LastChange] = {}  # flag -> the newest commit that changed its file
    runner: dict[str, _Runner] = {}  # flag -> the newest of those carrying its trailers
    # one pathspec per folder, not per file: git matches every pathspec against every
    # commit, so a thousand literal paths made the walk quadratic; names are filtered here
    folders = sorted({p.rpartition("/")[0] for p in wanted})
    log = stream(git.root, [
        "log", "-z", f"--format={_FORMAT}", "--raw", "--no-abbrev", "--no-renames",
        "--full-history", "--diff-merges=first-parent", head, "--",
        *(f":(top,glob){f + '/' if f else ''}*.state.json" for f in folders)])
    try:  # the walk stops once every runner commit is found: closing the log stops git
        for fields, changes in z_records(log, len(_FIELDS)):
            sha, parents, author, committer, stamps, text = fields
            if sha in boundary:
                continue
            subject, body_start, trailers = split_message(text)
            body = text[body_start:] if body_start >= 0 else ""
            ours_msg = message.parse_trailers(trailers, subject)
            flags = set(ours_msg.flags) if ours_msg is not None else set()
            before = (ours_msg.state_before or "") if ours_msg is not None else ""
            after = (ours_msg.state_after or "") if ours_msg is not None else ""
            for meta, path in changes:
                flag = wanted.get(path)
                if flag is None or flag in runner:
                    continue
                _, old, new, _ = raw_change(meta)
                ours = flag in flags
                if flag not in newest:
                    m = REVERTS.search(body) if not ours else None
                    # a cherry-pick, amend or rebase keeps the runner as the author: the
                    # person who made the commit is its committer
                    newest[flag] = LastChange(sha=sha, author=committer if ours else author,
                                              by_runner=False, subject=subject,
                                              reverted_sha=m.group(1) if m else None)
                if ours:
                    at, _, ct = stamps.partition(" ")
                    runner[flag] = _Runner(
                        sha, author, subject, len(parents.split()) == 1, before.strip(),
                        after.strip(), old, new, author == committer and at == ct)
            if len(runner) == len(wanted):
                break
    finally:
        log.close()
    head_blobs = _tree_blobs(git, head, wanted) if runner else {}
    contents = read_blobs(git.root, [*head_blobs.values(), *(r.old for r in runner.values())])

    def blob_digest(blob: str | None) -> str:
        return NONE if blob is None or is_null_object(blob) else digest(contents.get(blob, b""))

    reverted: dict[str, list[str]] = {}
    for flag, path in paths.items():
        r = runner.get(flag)
        if r is not None and _trusted(r, head_blobs.get(path), blob_digest):
            found[flag] = LastChange(sha=r.sha, author=r.author, by_runner=True,
                                     subject=r.subject)
            continue
        change = newest.get(flag)
        found[flag] = change
        if change is not None and change.reverted_sha:
            reverted.setdefault(change.reverted_sha, []).append(flag)
    if reverted:
        _resolve_reverted(git, reverted, found)
    return found


def _trusted(r: _Runner, head_blob: str | None, blob_digest: Callable[[str | None], str]
             ) -> bool:
    if not r.one_parent:
        return False
    if not r.before and not r.after:  # runner 0.1: the commit's own file must be HEAD's
        return r.legacy_ok and (r.new == head_blob if head_blob else is_null_object(r.new))
    return r.after == blob_digest(head_blob) and r.before == blob_digest(r.old)


def _resolve_reverted(git: Git, reverted: Mapping[str, list[str]],
                      found: dict[str, LastChange | None]) -> None:
    """Full ids of reverted commits, and whether each was the runner's."""
    for short in reverted:
        out = git.run("show", "-s", "-z", "--format=%H%x00%B", f"{short}^{{commit}}", "--",
                      check=False)
        full, _, text = out.stdout.partition("\0")
        full = full.strip()
        by_runner = message.parse_message(text.rstrip("\0")) is not None
        if out.returncode != 0 or not full:
            full, by_runner = short, False  # a commit this clone does not have
        for flag in reverted[short]:
            ch = found[flag]
            if ch is not None:
                found[flag] = LastChange(
                    sha=ch.sha, author=ch.author, by_runner=False, reverted_sha=full,
                    reverted_by_runner=by_runner, subject=ch.subject)
