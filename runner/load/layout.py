"""Where a repository's files are: its folders, the files in them, the plans of a flag, and
the one place a rollout's state file path is made (:func:`state_path`, both layouts).

``folders`` and ``plans_of`` read without validating, for the commands that must work on a
repository ``rollout validate`` would reject (``rollout history``); they import no JSON
Schema code, which would cost such a command ~150 ms of start-up.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any

from runner.load.documents import Unreadable, read_bytes, read_mapping
from runner.load.yamlsafe import YamlError

YAML_SUFFIXES = (".yaml", ".yml")
STATE_SUFFIX = ".state.json"
#: ``[tool.rollout] state_layout``: the state file beside its plan (the default, as ever), or
#: fanned out by a hash prefix under a folder of its own.
FLAT, FANOUT = "flat", "fanout"

#: A plan's or flag file's name without its suffix: a letter or digit (of any script), then
#: letters, digits, ``_``, ``.`` and ``-``. No blank, quote, backslash or control character:
#: the name becomes the state file's path in the runner's commits and in its messages.
SAFE_STEM = re.compile(r"[^\W_][\w.-]*")


def shown_name(name: str) -> str:
    """``name`` on one line: control characters, backslashes and the like escaped."""
    return "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in name)


def unsafe_name(path: Path) -> str | None:
    """Why a plan or flag file's name is not allowed (its stem is not :data:`SAFE_STEM`),
    or None."""
    if SAFE_STEM.fullmatch(stem(path)):
        return None
    return ("file name not allowed: a plan or flag file's name starts with a letter or digit "
            "and holds only letters, digits, '_', '.' and '-'")


def _section(root: Path) -> dict[str, Any]:
    """``[tool.rollout]`` of ``root``'s pyproject.toml, read without validating (``{}`` when
    there is none or it cannot be read)."""
    try:  # never blocks on a FIFO, never reads outside the repository (see read_bytes)
        doc = tomllib.loads(read_bytes(root / "pyproject.toml", "pyproject.toml").decode("utf-8"))
    except (Unreadable, YamlError, UnicodeDecodeError, ValueError):  # TOMLDecodeError too
        doc = {}
    tool = doc.get("tool")  # `tool = 5` is a problem load_config reports, not a crash here
    section = tool.get("rollout") if isinstance(tool, dict) else None
    return section if isinstance(section, dict) else {}


def folders(root: Path) -> tuple[str, str]:
    """``flags_dir`` and ``rollouts_dir`` of ``[tool.rollout]``, read without validating
    (``rollout validate`` reports a bad config; ``load_config`` is the validating reader)."""
    section = _section(root)
    flags_dir = section.get("flags_dir")
    rollouts_dir = section.get("rollouts_dir")
    return (flags_dir if isinstance(flags_dir, str) and flags_dir else "flags",
            rollouts_dir if isinstance(rollouts_dir, str) and rollouts_dir else "rollouts")


def state_layout_of(root: Path) -> str:
    """``state_layout`` of ``[tool.rollout]``, read without validating (flat unless it says
    fanout)."""
    return FANOUT if _section(root).get("state_layout") == FANOUT else FLAT


def state_dir(rollouts_dir: str, layout: str) -> str:
    """The folder of the state files, relative to the repository root: the rollouts folder
    (flat), or ``<rollouts_dir>-state`` beside it (fanout). Not inside the rollouts folder:
    git trees are flat objects, and a runner commit rewrites every tree on the way to the
    file it changes; ``rollouts/`` holds a plan per rollout, ``<rollouts_dir>-state/`` only
    256 folders, each about N/256 files."""
    if layout != FANOUT:
        return rollouts_dir
    rel = Path(rollouts_dir).as_posix().rstrip("/")
    return "rollout-state" if rel in ("", ".") else f"{rel}-state"


def fanout_bucket(plan: str) -> str:
    """The fanout folder of ``plan``'s state files: the first two hex digits of the SHA-256
    of its name (every state file of one plan lands in the same folder, e.g. per-environment
    ``<plan>.<env>.state.json`` files)."""
    return hashlib.sha256(plan.encode("utf-8", "surrogateescape")).hexdigest()[:2]


def state_path(rollouts_dir: str, layout: str, plan: str, environment: str | None = None) -> str:
    """The state file of ``plan``, relative to the repository root, forward slashes: the one
    place this path is made. Flat: ``<rollouts_dir>/<plan>.state.json``; fanout:
    ``<rollouts_dir>-state/<xx>/<plan>.state.json`` (:func:`fanout_bucket`). With an
    ``environment`` (repositories that declare environments): ``<plan>.<env>.state.json``
    in the same folder, the same fanout bucket as the plan's (by the plan's name)."""
    name = plan if environment is None else f"{plan}.{environment}"
    if layout != FANOUT:
        return f"{prefix(rollouts_dir)}{name}{STATE_SUFFIX}"
    return f"{prefix(state_dir(rollouts_dir, layout))}{fanout_bucket(plan)}/{name}{STATE_SUFFIX}"


def split_state_name(name: str, environments: tuple[str, ...]) -> tuple[str, str | None]:
    """A state file's name without its suffix as (plan, environment): ``checkout.production``
    is the plan ``checkout`` in ``production`` when ``production`` is declared (a plan's name
    may hold dots: only a declared environment's name is split off); else (name, None)."""
    plan, dot, env = name.rpartition(".")
    if dot and plan and env in environments:
        return plan, env
    return name, None


def flat_state_path(rollouts_dir: str, plan: str) -> str:
    """Where ``plan``'s state file is in the flat layout (before ``rollout migrate-state``):
    the history of a migrated state is read through it."""
    return state_path(rollouts_dir, FLAT, plan)


def state_folders(rollouts_dir: str, layout: str, root: Path | None = None) -> list[str]:
    """The folders the runner writes state files in, relative to the repository root: the
    rollouts folder (flat), or the state folder and, with ``root``, each of its fanout
    folders present."""
    if layout != FANOUT:
        return [rollouts_dir]
    top = state_dir(rollouts_dir, layout)
    found = [top]
    if root is not None and (root / top).is_dir():
        found += [f"{top}/{p.name}" for p in sorted((root / top).iterdir()) if p.is_dir()]
    return found


def state_files(root: Path, rollouts_dir: str, layout: str) -> list[tuple[Path, str]]:
    """Every state file of the layout, with its path relative to the root, by path. Fanout:
    the files ``*.state.json`` one folder down in the state folder (hidden ones skipped;
    whether each is in its plan's folder is the loader's to check)."""
    if layout != FANOUT:
        return [(p, f"{prefix(rollouts_dir)}{p.name}")
                for p in files_in(root / rollouts_dir, (STATE_SUFFIX,))]
    top = state_dir(rollouts_dir, layout)
    base = root / top
    if not base.is_dir():
        return []
    out = []
    for sub in sorted(base.iterdir(), key=lambda p: p.name):
        if sub.name.startswith(".") or not sub.is_dir():
            continue
        out += [(p, f"{prefix(top)}{sub.name}/{p.name}") for p in files_in(sub, (STATE_SUFFIX,))]
    return out


def files_in(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files of ``folder`` (not below it) ending in one of ``suffixes``, by name; hidden
    files are skipped."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.name.endswith(suffixes)
                   and not p.name.startswith(".") and p.is_file()), key=lambda p: p.name)


def yaml_files(folder: Path) -> list[Path]:
    """Flag files in a flags folder, plan files in a rollouts folder."""
    return files_in(folder, YAML_SUFFIXES)


def prefix(folder: str) -> str:
    """What goes before a file name in ``folder`` to name it relative to the repository root
    (cheaper than a ``resolve()`` per file)."""
    rel = Path(folder).as_posix()
    return "" if rel == "." else f"{rel}/"


def relative(root: Path, path: Path) -> str:
    """``path`` relative to ``root``, with forward slashes, as problems name files."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def stem(path: Path) -> str:
    """The file name without its suffix: a flag file's key, a plan's name."""
    return path.name.rsplit(".", 1)[0]


def plans_of(root: Path, rollouts_dir: str, flag: str) -> list[str]:
    """Names of the plans in ``rollouts_dir`` whose ``flag`` is ``flag`` (a plan's file name
    may differ from its flag's key); unreadable plan files are skipped."""
    names = []
    for path in yaml_files(root / rollouts_dir):
        got = read_mapping(path, path.name)
        if isinstance(got, tuple) and got[1].get("flag") == flag:
            names.append(stem(path))
    return names
