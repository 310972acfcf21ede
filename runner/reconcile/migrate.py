"""``rollout migrate-state``: move a repository's state files to the fanout layout, in one commit.

The flat layout keeps ``<rollouts_dir>/<plan>.state.json`` beside each plan, so every runner
commit rewrites the rollouts folder's git tree, two entries per rollout: a run's cost grows
with the number of rollouts times the commits it makes. The fanout layout
(``runner.load.layout``) keeps them in ``<rollouts_dir>-state/<xx>/``. This moves every state
file there, byte for byte, adds ``state_layout = "fanout"`` to ``[tool.rollout]`` in
pyproject.toml (the rest of the file kept as it is), and commits both at once as the person
running it. The runner reads history through the move (``last_change``: a commit that only
moves a state file changed no state), so no rollout is held for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from runner.errors import Declined
from runner.files import read_regular, sync_all, write_atomic, write_unsynced
from runner.git import Git
from runner.load import load_config
from runner.load.layout import FANOUT, STATE_SUFFIX, files_in, prefix, state_dir, state_path
from runner.reconcile.commit import index_lock, locked, recover, stale_index_message

#: The ``[tool.rollout]`` table's header line in pyproject.toml.
_HEADER = re.compile(r"(?m)^[ \t]*\[[ \t]*tool[ \t]*\.[ \t]*rollout[ \t]*\][ \t]*(#.*)?$")


@dataclass(frozen=True)
class Migrated:
    moved: int
    commit: str | None
    folder: str


def _with_layout(text: str) -> str:
    """pyproject.toml's text with ``state_layout = "fanout"`` as the first key of
    ``[tool.rollout]``; Declined when the table has no header line of its own."""
    m = _HEADER.search(text)
    if m is None:
        raise Declined("pyproject.toml has no [tool.rollout] header line to add "
                       "state_layout = \"fanout\" under; add it by hand, then run this again")
    end = m.end()
    newline = "\r\n" if text[end:end + 2] == "\r\n" else "\n"
    return f"{text[:end]}{newline}state_layout = \"fanout\"{text[end:]}"


def migrate_state(root: Path) -> Migrated:
    """Move every state file of the repository at ``root`` to the fanout layout and commit
    (module docstring). Declined, with nothing written, when the layout is already fanout,
    the configuration has problems, or the rollouts folder or pyproject.toml have
    uncommitted changes."""
    git = Git.open(root)
    config, problems = load_config(root)
    if problems:
        raise Declined("pyproject.toml has problems (`rollout validate`); nothing was written")
    if config.state_layout == FANOUT:
        raise Declined("the state layout is already fanout; nothing to do")
    top = state_dir(config.rollouts_dir, FANOUT)
    with locked(git):
        if (lock := index_lock(git)) is not None:
            raise Declined(f"{stale_index_message(lock)}; nothing was written")
        recover(git, [config.rollouts_dir])
        dirty = git.dirty([config.rollouts_dir, top, "pyproject.toml"])
        if dirty:
            raise Declined("uncommitted changes: " + ", ".join(dirty[:10])
                           + "; commit or stash them first (nothing was written)")
        pyproject = root / "pyproject.toml"
        text = read_regular(pyproject, 1 << 20).decode("utf-8")
        updated = _with_layout(text)
        moves = []
        for path in files_in(root / config.rollouts_dir, (STATE_SUFFIX,)):
            name = path.name[: -len(STATE_SUFFIX)]
            moves.append((f"{prefix(config.rollouts_dir)}{path.name}",
                          state_path(config.rollouts_dir, FANOUT, name)))
        for old, new in moves:
            write_unsynced(root / new, (root / old).read_bytes())
        sync_all(root)
        for old, _ in moves:
            (root / old).unlink()
        write_atomic(pyproject, updated.encode("utf-8"))
        git.update_index([git.rel(p) for pair in moves for p in pair]
                         + [git.rel("pyproject.toml")])
        message = (f"rollout: move {len(moves)} state file(s) to {top}/ (state_layout = "
                   "\"fanout\")\n\nThe state files, byte for byte, fanned out by the first two "
                   "hex digits of the SHA-256 of their plan's name, so that a runner commit "
                   "rewrites only small trees (docs/runner.md, State layout).\n")
        git.run("commit", "-q", "-m", message)
        return Migrated(len(moves), git.head(), top)
