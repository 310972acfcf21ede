"""Who last changed each rollout's state file, from git history: an input of ``decide``.

One ``git log`` over the state files (trailers read with ``%(trailers)``), stopped as soon as
every file asked about has been seen, plus one ``git show`` for the commits that reverts
name. A commit is the runner's when it carries a ``Rollout-Action`` trailer for the flag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from runner.git import REVERTS, Git, stream
from runner.reconcile.decide import LastChange
from runner.trailers import trailer_format

_FIELDS = (f"%H%x1f%an <%ae>%x1f{trailer_format('Rollout-Flag', '%x2C')}%x1f"
           f"{trailer_format('Rollout-Action', '%x2C')}%x1f%s%x1f%b%x1f")


def _records(chunks: Iterable[str]) -> Iterable[tuple[list[str], list[str]]]:
    """(fields, touched paths) per commit of a ``git log --name-only`` in our format."""
    buf: list[str] = []
    for chunk in chunks:
        buf.append(chunk)
        if "\x1e" not in chunk:
            continue
        text = "".join(buf)
        *complete, rest = text.split("\x1e")
        buf = [rest]
        for rec in complete:
            if rec.strip():
                yield _parse(rec)
    tail = "".join(buf)
    if tail.strip():
        yield _parse(tail)


def _parse(rec: str) -> tuple[list[str], list[str]]:
    parts = rec.lstrip("\n").split("\x1f")
    fields, names = parts[:6], parts[6] if len(parts) > 6 else ""
    return fields, [n for n in names.split("\n") if n.strip()]


def last_changes(git: Git, paths: Mapping[str, str]) -> dict[str, LastChange | None]:
    """For each flag -> state file path (relative to the git top level), the last commit
    that added, changed or removed that file (None when no commit ever touched it)."""
    wanted = {p: flag for flag, p in paths.items()}
    found: dict[str, LastChange | None] = dict.fromkeys(paths)
    if not wanted or git.head() is None:
        return found
    reverted: dict[str, list[str]] = {}
    # in a shallow clone the oldest commits present show every file as added by them:
    # they say nothing about who changed a state, so they count as not found
    boundary = git.shallow_boundary()
    # one pathspec per folder, not per file: git matches every pathspec against every
    # commit, so a thousand literal paths made the walk quadratic; names are filtered here
    folders = sorted({p.rpartition("/")[0] for p in wanted})
    log = stream(git.root, [
        "log", f"--format=%x1e{_FIELDS}", "--name-only", "--no-renames", "HEAD", "--",
        *(f":(top,glob){f + '/' if f else ''}*.state.json" for f in folders)])
    try:  # the walk stops once every file is found: closing the log stops git
        for fields, names in _records(log):
            sha, author, flags_t, actions_t, subject, body = fields
            if sha in boundary:
                continue
            hits = [n for n in names if n in wanted and found[wanted[n]] is None]
            for name in hits:
                flag = wanted[name]
                by_runner = bool(actions_t.strip()) and flag in [
                    f.strip() for f in flags_t.split(",")]
                m = REVERTS.search(body) if not by_runner else None
                found[flag] = LastChange(sha=sha, author=author, by_runner=by_runner,
                                         reverted_sha=m.group(1) if m else None,
                                         subject=subject)
                if m:
                    reverted.setdefault(m.group(1), []).append(flag)
            if all(v is not None for v in found.values()):
                break
    finally:
        log.close()
    if reverted:
        _resolve_reverted(git, reverted, found)
    return found


def _resolve_reverted(git: Git, reverted: Mapping[str, list[str]],
                      found: dict[str, LastChange | None]) -> None:
    """Full ids of reverted commits, and whether each was the runner's."""
    for short in reverted:
        out = git.run("show", "-s", f"--format=%H%x1f{trailer_format('Rollout-Action')}",
                      f"{short}^{{commit}}", "--", check=False)
        full, _, action = out.stdout.strip().partition("\x1f")
        if out.returncode != 0 or not full:
            full, action = short, ""  # a commit this clone does not have
        for flag in reverted[short]:
            ch = found[flag]
            if ch is not None:
                found[flag] = LastChange(
                    sha=ch.sha, author=ch.author, by_runner=False, reverted_sha=full,
                    reverted_by_runner=bool(action.strip()), subject=ch.subject)
