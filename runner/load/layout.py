"""Where a repository's files are: its two folders, the files in them, the plans of a flag.

``folders`` and ``plans_of`` read without validating, for the commands that must work on a
repository ``rollout validate`` would reject (``rollout history``); they import no JSON
Schema code, which would cost such a command ~150 ms of start-up.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from runner.load.documents import Unreadable, read_bytes, read_mapping
from runner.load.yamlsafe import YamlError

YAML_SUFFIXES = (".yaml", ".yml")

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


def folders(root: Path) -> tuple[str, str]:
    """``flags_dir`` and ``rollouts_dir`` of ``[tool.rollout]``, read without validating
    (``rollout validate`` reports a bad config; ``load_config`` is the validating reader)."""
    try:  # never blocks on a FIFO, never reads outside the repository (see read_bytes)
        doc = tomllib.loads(read_bytes(root / "pyproject.toml", "pyproject.toml").decode("utf-8"))
    except (Unreadable, YamlError, UnicodeDecodeError, ValueError):  # TOMLDecodeError too
        doc = {}
    tool = doc.get("tool")  # `tool = 5` is a problem load_config reports, not a crash here
    section = tool.get("rollout") if isinstance(tool, dict) else None
    flags_dir = section.get("flags_dir") if isinstance(section, dict) else None
    rollouts_dir = section.get("rollouts_dir") if isinstance(section, dict) else None
    return (flags_dir if isinstance(flags_dir, str) and flags_dir else "flags",
            rollouts_dir if isinstance(rollouts_dir, str) and rollouts_dir else "rollouts")


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
