"""``rollout migrate-state``: move a repository's state files to the fanout layout, in one commit.

The flat layout keeps ``<rollouts_dir>/<plan>.state.json`` beside each plan, so every runner
commit rewrites the rollouts folder's git tree, two entries per rollout: a run's cost grows
with the number of rollouts times the commits it makes. The fanout layout
(``runner.load.layout``) keeps them in ``<rollouts_dir>-state/<xx>/``. This moves every state
file there, byte for byte, adds ``state_layout = "fanout"`` to ``[tool.rollout]`` in
pyproject.toml (the rest of the file kept as it is), and commits both at once as the person
running it. The runner reads history through the move (``last_change``: a commit that only
moves a state file changed no state), so no rollout is held for it.

``--environment NAME`` (:func:`migrate_environment`) upgrades a repository to environments:
every state file without one (``<plan>.state.json``, in the layout the repository has)
becomes ``<plan>.NAME.state.json`` with ``"environment": "NAME"`` added, as the runner
writes the states of a repository with environments, so the running rollouts go on in that
environment. The configuration change goes into the same commit: environments declared in
pyproject.toml by the user (uncommitted is fine; NAME must be one of them), or, when it
declares none, ``[tool.rollout.environments.NAME]`` appended. The runner reads history
through this move too (``last_change``: a commit that only moves a state file and adds
its environment changed no state).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from runner.errors import Declined, UsageError
from runner.files import read_regular, sync_all, write_atomic, write_unsynced
from runner.git import Git
from runner.load import load_config
from runner.load.layout import (
    FANOUT,
    STATE_SUFFIX,
    files_in,
    prefix,
    split_state_name,
    state_dir,
    state_files,
    state_path,
)
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
        names = tuple(e.name for e in config.environments)
        for path in files_in(root / config.rollouts_dir, (STATE_SUFFIX,)):
            # an environment's state goes to its plan's bucket, as the runner looks for it
            plan, env = split_state_name(path.name[: -len(STATE_SUFFIX)], names)
            moves.append((f"{prefix(config.rollouts_dir)}{path.name}",
                          state_path(config.rollouts_dir, FANOUT, plan, env)))
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


#: What a declared environment's name may be (schemas/config.schema.json).
ENVIRONMENT_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def _with_environment(text: str, declared: tuple[str, ...], environment: str) -> str:
    """pyproject.toml's text declaring ``environment``: as it is when it declares it (the
    user's edit), with ``[tool.rollout.environments.NAME]`` appended when it declares none;
    Declined when it declares others only."""
    if declared:
        if environment not in declared:
            raise Declined(f"{environment!r} is not a declared environment (pyproject.toml "
                           f"declares {', '.join(declared)}); nothing was written")
        return text
    if _HEADER.search(text) is None:
        raise Declined("pyproject.toml has no [tool.rollout] header line; add "
                       f"[tool.rollout.environments.{environment}] by hand, then run this "
                       "again (nothing was written)")
    newline = "\r\n" if "\r\n" in text else "\n"
    sep = "" if not text or text.endswith("\n") else newline
    updated = f"{text}{sep}{newline}[tool.rollout.environments.{environment}]{newline}"
    try:
        doc = tomllib.loads(updated)
    except tomllib.TOMLDecodeError as e:
        raise Declined(f"[tool.rollout.environments.{environment}] cannot be appended to "
                       f"pyproject.toml ({e}); declare it by hand, then run this again "
                       "(nothing was written)") from None
    if list(doc.get("tool", {}).get("rollout", {}).get("environments", {})) != [environment]:
        raise Declined(f"[tool.rollout.environments.{environment}] cannot be appended to "
                       "pyproject.toml; declare it by hand, then run this again (nothing was "
                       "written)")
    return updated


def with_environment(content: bytes, environment: str) -> bytes:
    """A state file's bytes with ``"environment"`` added, as the runner writes a state (keys
    sorted, two spaces, a final newline); the other fields as they are."""
    doc = json.loads(content)
    if not isinstance(doc, dict):
        raise Declined("a state file is not a JSON object (`rollout validate`); nothing was "
                       "written")
    doc["environment"] = environment
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def migrate_environment(root: Path, environment: str) -> Migrated:
    """Give every state file of the repository at ``root`` without an environment the
    environment ``environment`` and commit, with the configuration declaring it (module
    docstring). Declined, nothing written, when the configuration has problems or declares
    other environments only, a state file already has that environment's name, or the
    state files have uncommitted changes."""
    if not ENVIRONMENT_NAME.fullmatch(environment):
        raise UsageError(f"--environment {environment!r}: an environment's name is a lowercase "
                         "letter, then up to 31 lowercase letters, digits, '_' or '-'")
    git = Git.open(root)
    config, problems = load_config(root)
    if problems:
        raise Declined("pyproject.toml has problems (`rollout validate`); nothing was written")
    declared = tuple(e.name for e in config.environments)
    top = state_dir(config.rollouts_dir, config.state_layout)
    with locked(git):
        if (lock := index_lock(git)) is not None:
            raise Declined(f"{stale_index_message(lock)}; nothing was written")
        recover(git, [config.rollouts_dir])
        dirty = git.dirty(list(dict.fromkeys([config.rollouts_dir, top])))
        if dirty:
            raise Declined("uncommitted changes: " + ", ".join(dirty[:10])
                           + "; commit or stash them first (nothing was written)")
        pyproject = root / "pyproject.toml"
        text = read_regular(pyproject, 1 << 20).decode("utf-8")
        updated = _with_environment(text, declared, environment)
        moves = []
        for path, rel in state_files(root, config.rollouts_dir, config.state_layout):
            plan, env = split_state_name(path.name[: -len(STATE_SUFFIX)], declared)
            if env is not None:
                continue  # an environment's own already
            new = state_path(config.rollouts_dir, config.state_layout, plan, environment)
            if (root / new).exists():
                raise Declined(f"{new} exists already beside {rel}; nothing was written")
            moves.append((rel, new, with_environment(path.read_bytes(), environment)))
        if not moves and updated == text:
            raise Declined(f"no state file without an environment, and {environment!r} is "
                           "declared: nothing to do")
        for _, new, content in moves:
            write_unsynced(root / new, content)
        sync_all(root)
        for old, _, _ in moves:
            (root / old).unlink()
        if updated != text:
            write_atomic(pyproject, updated.encode("utf-8"))
        git.update_index([git.rel(p) for old, new, _ in moves for p in (old, new)]
                         + [git.rel("pyproject.toml")])
        message = (f"rollout: {len(moves)} state file(s) to the environment {environment}\n\n"
                   f"Each <plan>.state.json is now <plan>.{environment}.state.json with "
                   f"\"environment\": \"{environment}\" added, the rest as it was, and "
                   "pyproject.toml declares the environments: the running rollouts go on "
                   f"in {environment} (docs/environments.md, Upgrading).\n")
        git.run("commit", "-q", "-m", message)
        return Migrated(len(moves), git.head(), top)
