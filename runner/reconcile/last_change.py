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

import dataclasses
import hashlib
import json
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
    One ``ls-tree`` of the folders holding them (their entries, NUL-separated; the fanout
    layout's 256 folders in the same one process)."""
    wanted = set(paths)
    folders = sorted({p.rpartition("/")[0] for p in wanted})
    found: dict[str, str] = {}
    spec = [] if "" in folders else ["--", *(f"{folder}/" for folder in folders)]
    out = git.run("ls-tree", "-z", "-r", "--full-tree", commit, *spec).stdout
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


@dataclasses.dataclass
class Walk:
    """What one :func:`last_changes` walk read: the seam tests bound it by (never by time)."""

    #: Commits the ``git log`` handed over (each one changed a file the walk looks at).
    commits: int = 0


def _pathspecs(paths: Iterable[str], pattern: str) -> list[str]:
    """One glob pathspec per folder holding ``paths`` (git matches every pathspec against
    every tree entry of every commit: a thousand literal paths made the walk quadratic), or
    per parent of many such folders (the fanout layout's 256: ``D/*/<pattern>``)."""
    folders = {p.rpartition("/")[0] for p in paths}
    parents: dict[str, set[str]] = {}
    for f in folders:
        if f:
            parents.setdefault(f.rpartition("/")[0], set()).add(f)
    specs = []
    for f in sorted(folders):
        parent = f.rpartition("/")[0] if f else None
        if parent is not None and len(parents.get(parent, ())) > FOLDERS_PER_SPEC:
            spec = f":(top,glob){parent + '/' if parent else ''}*/{pattern}"
        else:
            spec = f":(top,glob){f + '/' if f else ''}{pattern}"
        if spec not in specs:
            specs.append(spec)
    return specs


#: Beyond this many folders of one parent, one ``parent/*/`` pathspec stands for them all.
FOLDERS_PER_SPEC = 8


def _moves(records: Sequence[tuple[str, str, str, str]]) -> bool:
    """Whether one commit's changes of a flag's files (path, old, new, status) only move its
    state file: deleted at one path and added at another with the very same bytes (``rollout
    migrate-state``). Such a commit changed no state: the walk reads on past it."""
    if len(records) != 2:
        return False
    (_, old_a, new_a, st_a), (_, old_b, new_b, st_b) = records
    return ({st_a, st_b} == {"A", "D"}
            and (old_a if st_a == "D" else old_b) == (new_b if st_b == "A" else new_a))


#: Where a flag's state file was before a move: one path, or several (moves in turn).
Earlier = str | Sequence[str]


def _earlier_paths(earlier: Earlier | None) -> tuple[str, ...]:
    if earlier is None:
        return ()
    return (earlier,) if isinstance(earlier, str) else tuple(earlier)


def _environment_move(git: Git, records: Sequence[tuple[str, str, str, str]]) -> str | None:
    """The blob the state file had before this commit when its changes of a flag's files
    (path, old, new, status) only give the state an environment: deleted at one path and
    added at another as the same JSON document with ``"environment"`` added (``rollout
    migrate-state --environment``); else None. The move changed no state of the rollout."""
    if len(records) != 2 or {r[3] for r in records} != {"A", "D"}:
        return None
    deleted = next(r for r in records if r[3] == "D")
    added = next(r for r in records if r[3] == "A")
    if deleted[1] == added[2]:
        return None  # the same bytes: _moves
    contents = read_blobs(git.root, [deleted[1], added[2]])
    try:
        before, after = (json.loads(contents.get(b, b"")) for b in (deleted[1], added[2]))
    except (ValueError, RecursionError):
        return None
    if not (isinstance(before, dict) and isinstance(after, dict)) or "environment" in before:
        return None
    env = after.get("environment")
    return deleted[1] if isinstance(env, str) and {**before, "environment": env} == after else None


def last_changes(git: Git, paths: Mapping[str, str], *,
                 earlier: Mapping[str, Earlier] | None = None,
                 plans: Mapping[str, Sequence[str]] | None = None,
                 walk: Walk | None = None) -> dict[str, LastChange | None]:
    """For each flag -> state file path (relative to the git top level): who last changed it
    (None when no commit ever touched it), ``by_runner`` when HEAD's state is the runner's
    own by the provenance rule (module docstring).

    ``earlier``: flag -> where its state file was before ``rollout migrate-state`` moved it
    (the flat layout's path; without an environment's name, before ``--environment``: one
    path or several); the move itself is no change, and the history before it is read at
    the old path. ``plans``: flag -> its plan file's possible paths: for a flag with
    no state file at HEAD, the walk stops at the commit that added the plan (a state older
    than its plan belongs to no rollout of it), so a plan that never ran (``start_at`` in
    the future) does not make every run read the whole history. ``walk`` counts the commits
    read."""
    earlier = earlier or {}
    wanted = {p: flag for flag, p in paths.items()}
    wanted.update({p: flag for flag, ps in earlier.items() if flag in paths
                   for p in _earlier_paths(ps)})
    found: dict[str, LastChange | None] = dict.fromkeys(paths)
    head = git.head()
    if not wanted or head is None:
        return found
    head_blobs = _tree_blobs(git, head, paths.values())
    # a flag without a state at HEAD whose state file no commit ever touched (a plan that
    # never ran) is done before the walk; any other is done at its plan's addition
    stateless = {f for f, p in paths.items() if p not in head_blobs}
    never = _never_touched(git, head, {wanted_path: flag for wanted_path, flag in wanted.items()
                                       if flag in stateless})
    stateless -= never
    plan_of = {pp: f for f, pps in (plans or {}).items() if f in stateless for pp in pps}
    # in a shallow clone the oldest commits present show every file as added by them:
    # they say nothing about who changed a state, so they count as not found
    boundary = git.shallow_boundary()
    newest: dict[str, LastChange] = {}  # flag -> the newest commit that changed its file
    # flag -> its state before a move that gave it an environment, when nothing changed it
    # since: what the runner's last commit must have written
    premove: dict[str, str] = {}
    runner: dict[str, _Runner] = {}  # flag -> the newest of those carrying its trailers
    done: set[str] = set(never)  # flags whose walk is over: their runner commit, their
    # plan's start, or a state file never touched
    if len(done) == len(paths):
        return found
    specs = [*_pathspecs(wanted, "*.state.json"),
             *_pathspecs(plan_of, "*.y*ml")]
    log = stream(git.root, [
        "log", "-z", f"--format={_FORMAT}", "--raw", "--no-abbrev", "--no-renames",
        "--full-history", "--diff-merges=first-parent", head, "--", *specs])
    try:  # the walk stops once every flag is done: closing the log stops git
        for fields, changes in z_records(log, len(_FIELDS)):
            if walk is not None:
                walk.commits += 1
            if fields[0] in boundary:
                continue
            by_flag: dict[str, list[tuple[str, str, str, str]]] = {}
            added_plans: list[str] = []
            for meta, path in changes:
                flag = wanted.get(path)
                if flag is not None and flag not in done:
                    _, old, new, status = raw_change(meta)
                    by_flag.setdefault(flag, []).append((path, old, new, status))
                elif path in plan_of and raw_change(meta)[3] == "A":
                    added_plans.append(plan_of[path])
            for flag, records in list(by_flag.items()):
                old_blob = _environment_move(git, records) if not _moves(records) else None
                if old_blob is not None:
                    del by_flag[flag]
                    if flag not in newest:
                        premove.setdefault(flag, old_blob)
            if by_flag:
                _read_commit(fields, by_flag, newest, runner, done)
            done.update(added_plans)
            if len(done) == len(paths):
                break
    finally:
        log.close()
    contents = (read_blobs(git.root, [*head_blobs.values(), *premove.values(),
                                      *(r.old for r in runner.values())])
                if runner else {})

    def blob_digest(blob: str | None) -> str:
        return NONE if blob is None or is_null_object(blob) else digest(contents.get(blob, b""))

    reverted: dict[str, list[str]] = {}
    for flag, path in paths.items():
        r = runner.get(flag)
        if r is not None and _trusted(r, premove.get(flag, head_blobs.get(path)), blob_digest):
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


#: Up to this many state files are looked for by name (git stops comparing a folder's
#: entries past a literal path); beyond, by their folders.
LITERAL_PATHS = 16


def _never_touched(git: Git, head: str, paths: Mapping[str, str]) -> set[str]:
    """The flags (of ``paths``: state file path -> flag) none of whose paths any commit
    reachable from ``head`` ever touched: one ``git log`` printing only commit names and
    the paths touched, stopped as soon as every flag is known to be touched."""
    if not paths:
        return set()
    specs = ([f":(top,literal){p}" for p in sorted(paths)] if len(paths) <= LITERAL_PATHS
             else _pathspecs(paths, "*.state.json"))
    untouched = set(paths.values())
    log = stream(git.root, ["log", "-z", "--format=%x01%H", "--name-only", "--no-renames",
                            "--full-history", "--diff-merges=first-parent", head, "--", *specs])
    pending = ""  # a name cut between two chunks
    try:
        for chunk in log:
            *names, pending = (pending + chunk).split("\0")
            for name in names:
                flag = paths.get(name.strip("\n"))
                if flag is not None:
                    untouched.discard(flag)
            if not untouched:
                break
    finally:
        log.close()
    if (flag := paths.get(pending.strip("\n"))) is not None:
        untouched.discard(flag)
    return untouched


def _read_commit(fields: Sequence[str], by_flag: Mapping[str, list[tuple[str, str, str, str]]],
                 newest: dict[str, LastChange], runner: dict[str, _Runner],
                 done: set[str]) -> None:
    """What one commit of the walk says about the flags whose files it changed."""
    sha, parents, author, committer, stamps, text = fields
    subject, body_start, trailers = split_message(text)
    body = text[body_start:] if body_start >= 0 else ""
    ours_msg = message.parse_trailers(trailers, subject)
    flags = set(ours_msg.flags) if ours_msg is not None else set()
    before = (ours_msg.state_before or "") if ours_msg is not None else ""
    after = (ours_msg.state_after or "") if ours_msg is not None else ""
    for flag, records in by_flag.items():
        if _moves(records):
            continue
        for _, old, new, _ in records:
            if flag in runner:
                break
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
                done.add(flag)


def _trusted(r: _Runner, head_blob: str | None, blob_digest: Callable[[str | None], str]
             ) -> bool:
    if not r.one_parent:
        return False
    if not r.before and not r.after:  # runner 0.1: the commit's own file must be HEAD's
        return r.legacy_ok and (r.new == head_blob if head_blob else is_null_object(r.new))
    return r.after == blob_digest(head_blob) and r.before == blob_digest(r.old)


def _blob_in(git: Git, rev: str, path: str) -> str | None:
    """The blob id of ``path`` (relative to the top level) in ``rev``; None when absent."""
    return _tree_blobs(git, rev, [path]).get(path)


def runner_commit_doubts(git: Git, commits: Mapping[str, str]) -> dict[str, str]:
    """Why each commit (id -> the state file path it is about, relative to the top level) is
    not the runner's own; a commit absent from the answer is verified. The provenance rule
    on the commit alone (docs/runner.md): it carries runner trailers, has one parent, its
    ``Rollout-State-After`` is the digest of the state file in itself and its
    ``Rollout-State-Before`` that of the file in its parent, and it was committed by its
    author (the runner writes both; a cherry-pick, amend or rebase changes the committer).
    A commit without digests (runner 0.1's, or a person's in that form) cannot be verified.
    What names "the runner's rollback" or honours an approval reads it: ``rollout issue``,
    ``rollout incident``, ``advance`` and ``resume`` (approvals)."""
    if not commits:
        return {}
    fmt = "%x00".join(["%H", "%P", "%an <%ae>", "%cn <%ce>", "%B"])
    out = git.run("log", "-z", "--no-walk=unsorted", f"--format={fmt}", *commits, "--",
                  check=False).stdout
    found: dict[str, str] = {}
    seen: set[str] = set()
    for fields, _ in z_records([out], 5):
        sha, parents, author, committer = (t.strip() for t in fields[:4])
        seen.add(sha)
        path = commits.get(sha)
        if path is None:
            continue
        m = message.parse_message(fields[4])
        parent_list = parents.split()
        if m is None:
            found[sha] = "it carries no runner trailers: a person's commit"
            continue
        if len(parent_list) != 1:
            found[sha] = "a merge or a root commit, never written by the runner"
            continue
        if not m.state_before or not m.state_after:
            found[sha] = ("it carries no state digests (Rollout-State-Before/-After): written "
                          "by hand or by runner 0.1, it cannot be verified")
            continue
        own = _blob_in(git, sha, path)
        before = _blob_in(git, parent_list[0], path)
        contents = read_blobs(git.root, [b for b in (own, before) if b])
        own_digest, before_digest = (NONE if b is None else digest(contents.get(b, b""))
                                     for b in (own, before))
        if m.state_after.strip() != own_digest:
            found[sha] = ("its state file is not the one its Rollout-State-After trailer "
                          "names: the commit was edited or written by hand")
        elif m.state_before.strip() != before_digest:
            found[sha] = ("its Rollout-State-Before trailer is not the digest of the state "
                          "file in its parent: the commit was moved or written by hand")
        elif author != committer:
            found[sha] = (f"committed by {committer}, not by its author {author}: a "
                          "cherry-pick, amend or rebase of a runner commit")
    for sha in commits:
        if sha not in seen:
            found[sha] = "not a commit of this clone"
    return found


def _approval_of(content: bytes | None) -> tuple[object, object]:
    """(``approved_step``, ``approved_by``) of a state file's bytes; (None, None) when
    there is none or the file is not a JSON object."""
    if content is None:
        return None, None
    try:
        doc = json.loads(content)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    return doc.get("approved_step"), doc.get("approved_by")


#: The commits changing a state file looked through at most for the one that recorded its
#: approval (beyond: not found, so not honoured).
APPROVAL_WALK = 500


def approval_doubt(git: Git, path: str, flag: str, step: int, by: str,
                   earlier: Earlier | None = None) -> str | None:
    """None when the approval (``step``, ``by``) in HEAD's state file ``path`` was recorded
    by a verified runner commit (:func:`runner_commit_doubts`) of ``rollout approve`` for
    ``flag``; else why not. The recorder is the newest commit on the first-parent line of
    HEAD whose file holds this approval and whose parent's does not: a person's commit that
    writes (or writes back) ``approved_step`` and ``approved_by``, with forged trailers or
    none, is the recorder, and is no runner's. ``earlier``: where the file was before
    ``rollout migrate-state`` moved it (the move carries the approval over)."""
    head = git.head()
    if head is None:
        return "no history"
    mine_paths = (path, *_earlier_paths(earlier))
    specs = [f":(top,literal){p}" for p in mine_paths if p]
    log = git.run("log", "-z", "--first-parent", "--format=%H", "--raw", "--no-abbrev",
                  "--no-renames", "--diff-merges=first-parent", f"-n{APPROVAL_WALK}", head,
                  "--", *specs).stdout
    changes: list[tuple[str, str, str, str]] = []  # commit, path, old blob, new blob
    for fields, raw in z_records([log], 1):
        mine = [(p, *raw_change(meta)[1:]) for meta, p in raw if p in mine_paths]
        if _moves(mine) or _environment_move(git, mine) is not None:
            continue  # rollout migrate-state: the same state, moved
        changes += [(fields[0].strip(), p, old, new) for p, old, new, _ in mine]
    blobs = [b for _, _, old, new in changes for b in (old, new) if not is_null_object(b)]
    contents = read_blobs(git.root, blobs)

    def approval(blob: str) -> tuple[object, object]:
        return (None, None) if is_null_object(blob) else _approval_of(contents.get(blob))

    wanted = (step, by)
    for sha, where, old, new in changes:
        if approval(new) != wanted:
            break  # the approval came from a line of history this walk does not follow
        if approval(old) == wanted:
            continue  # carried over from an older commit
        m = message.parse_message(_message_of(git, sha))
        if m is None or m.action != "approve" or flag not in m.flags:
            return f"it was written by {sha[:7]}, not a `rollout approve` commit of the runner"
        doubt = runner_commit_doubts(git, {sha: where}).get(sha)
        return None if doubt is None else f"it was written by {sha[:7]}: {doubt}"
    return "no runner commit in the history recorded it"


def _message_of(git: Git, sha: str) -> str:
    return git.run("show", "-s", "--format=%B", sha, "--").stdout


def unrecorded_approval(git: Git, path: str, flag: str, step: int, by: str,
                        head_change: LastChange, earlier: Earlier | None = None
                        ) -> LastChange | None:
    """HEAD's state holds an approval (``step``, ``by``) and is the runner's by the
    provenance rule (``head_change``): None when a verified runner commit recorded the
    approval (:func:`approval_doubt`); else the state counts as a person's change, named
    by the newest commit that changed it, so that the run holds it rather than honour an
    approval no runner recorded (a forgery in 0.1's form, without digests, passes the rule)."""
    if approval_doubt(git, path, flag, step, by, earlier) is None:
        return None
    out = git.run("show", "-s", "-z", "--format=%cn <%ce>%x00%s", head_change.sha, "--").stdout
    committer, _, subject = out.rstrip("\0\n").partition("\0")
    return LastChange(sha=head_change.sha, author=committer or head_change.author,
                      by_runner=False, subject=subject or head_change.subject)


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
