"""What ``rollout incident`` reads from git (through ``runner.git``), for the pure
:mod:`runner.review.incident` to build the reports from.

- the flag's audit trail: :func:`runner.review.audit.history`, the same one ``git log`` walk
  as ``rollout history`` (never a walk of its own);
- the state files of the commits that matter (every runner commit whose gates failed, and
  the rollbacks): their ``last_gates`` hold each gate's detail and evaluation time; one
  ``git cat-file --batch`` over the blobs the walk already named;
- with a publication branch (``branch:NAME`` targets, ``runner/reconcile/publish.py``): one
  ``git log`` of that branch, each commit's ``Rollout-Source-Commit`` trailer, and per
  rollback one ``git rev-list --ancestry-path`` telling which sources hold the rollback.
  The first such publication (oldest) is when applications could first read it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from runner import git
from runner.errors import UsageError
from runner.load.layout import folders, plans_of
from runner.reconcile import last_change, message
from runner.review.audit import Entry, history
from runner.review.incident import (
    Incident,
    Publication,
    build_incidents,
    failing,
    gates_of,
    parse_time,
)
from runner.review.incident_markdown import incident_markdown
from runner.timefmt import utc_iso_seconds
from runner.trailers import trailer_format

SOURCE_TRAILER = message.SOURCE_COMMIT  # runner/reconcile/publish.py's
#: The largest state file read back (they are a few kilobytes).
MAX_STATE_BYTES = 1 << 20


class UnknownBranch(UsageError, ValueError):
    """The publication branch named does not exist here."""


def resolve_branch(root: Path, name: str) -> str:
    """The commit ``name`` (a branch, ``origin/NAME``) points at; UnknownBranch otherwise."""
    if not name.strip() or name.startswith("-"):
        raise UnknownBranch("not a branch name")
    sha = git.resolve_commit(root, name)
    if sha is None:
        raise UnknownBranch("no such branch or commit here (fetch it first?)")
    return sha


def publications(root: Path, tip: str, branch: str) -> list[Publication]:
    """The publication commits reachable from ``tip``, oldest first; commits without the
    source trailer are not publications and are skipped."""
    fmt = "%x00".join(["%H", "%cI", "%an", trailer_format(SOURCE_TRAILER)])
    out = git.run(root, "log", "-z", "--first-parent", f"--format={fmt}", tip, "--").stdout
    tokens = out.split("\0")
    found = []
    for i in range(0, len(tokens) - 3, 4):
        sha, when, author, source = (t.strip() for t in tokens[i: i + 4])
        t = parse_time(when)
        if sha and source and t is not None:
            found.append(Publication(sha, utc_iso_seconds(t) or when, author, source.split()[0], branch))
    found.reverse()
    return found


def first_serving(root: Path, rollback: str, pubs: Sequence[Publication]) -> Publication | None:
    """The oldest publication whose source commit is ``rollback`` or a descendant of it."""
    if not pubs:
        return None
    sources = sorted({p.source for p in pubs})
    out = git.run(root, "rev-list", "--ignore-missing", "--stdin", "--ancestry-path",
                  input="".join(f"{s}\n" for s in sources) + f"^{rollback}\n",
                  check=False).stdout.split()
    holding = set(out) | {rollback}
    return next((p for p in pubs if p.source in holding), None)


def _state_blob(e: Entry) -> str | None:
    for c in e.changes:
        if c.path.endswith(".state.json") and not git.is_null_object(c.new_blob):
            return c.new_blob
    return None


def read_states(root: Path, entries: Iterable[Entry]) -> dict[str, Mapping[str, Any]]:
    """The state file each runner commit that failed a gate (or rolled back) wrote."""
    blobs: dict[str, str] = {}
    for e in entries:
        if (e.runner and (e.action == "rollback" or any(map(failing, gates_of(e))))
                and (blob := _state_blob(e)) is not None):
            blobs[e.sha] = blob
    contents = git.read_blobs(root, blobs.values())
    states: dict[str, Mapping[str, Any]] = {}
    for sha, blob in blobs.items():
        data = contents.get(blob)
        if data is None or len(data) > MAX_STATE_BYTES:
            continue
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            continue
        if isinstance(doc, dict):
            states[sha] = doc
    return states


def doubts(root: Path, rollbacks: Sequence[Entry]) -> dict[str, str]:
    """Rollback commits that are not the runner's own as they claim, and why: the provenance
    rule of runner/reconcile/last_change.py on the commit alone
    (:func:`runner.reconcile.last_change.runner_commit_doubts`: its state digests are those
    of the file in its parent and in itself, its author its committer)."""
    wanted: dict[str, str] = {}
    for e in rollbacks:
        path = next((c.path for c in e.changes if c.path.endswith(".state.json")), None)
        if path is not None:
            wanted[e.sha] = path
    found = last_change.runner_commit_doubts(git.Git.open(root), wanted) if wanted else {}
    for e in rollbacks:
        if e.sha not in wanted:
            found[e.sha] = "it changes no state file: not a rollback the runner commits"
    return found


def read_incidents(root: Path, flag: str, *, flags_dir: str, rollouts_dir: str,
                   plan_names: Iterable[str] = (), published_branch: str | None = None,
                   users: int | None = None, since: datetime | None = None
                   ) -> tuple[list[Entry], list[Incident]]:
    """The flag's history (newest first) and its incidents at or after ``since``."""
    entries = history(root, flag, None, flags_dir, rollouts_dir, plan_names)
    rollbacks = [e for e in entries if e.runner and e.action == "rollback"
                 and (since is None or ((t := parse_time(e.time)) is not None and t >= since))]
    if not rollbacks:
        return entries, []
    published: dict[str, Publication | None] = {}
    if published_branch is not None:
        pubs = publications(root, resolve_branch(root, published_branch), published_branch)
        for e in rollbacks:
            published[e.sha] = first_serving(root, e.sha, pubs)
    states = read_states(root, entries)
    return entries, build_incidents(flag, entries, states, published, published_branch, users,
                                    since, doubts(root, rollbacks))


def rollback_report(root: Path, flag: str, sha: str, limit: int) -> str | None:
    """The incident report of the rollback commit ``sha`` in Markdown of at most ``limit``
    characters (the GitHub issue of the rollback shows it), or None when the history cannot
    be read: the issue then carries the commit's evidence alone."""
    try:
        flags_dir, rollouts_dir = folders(root)
        _, incidents = read_incidents(root, flag, flags_dir=flags_dir, rollouts_dir=rollouts_dir,
                                      plan_names=plans_of(root, rollouts_dir, flag))
    except (git.GitError, OSError, ValueError):
        return None
    mine = [i for i in incidents if i.rollback.sha == sha]
    return incident_markdown(mine[:1], limit=limit) if mine else None
