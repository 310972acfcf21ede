"""The entries of the two folders that no loader reads, reported instead of silently skipped.

The loaders read regular files named ``*.yaml``, ``*.yml`` and ``*.state.json`` (hidden files
aside). A name that differs only in case (``NAME.YAML``) would be ignored on Linux and read
on macOS, and a FIFO, socket, device or folder under such a name is no flag file at all:
each is a problem naming the entry, and none is ever opened (a FIFO would block the reader).
A symbolic link is followed when it stays inside the repository; one that leads out of it
is refused when it is read (``documents.read_bytes``).
"""

from __future__ import annotations

import os
from pathlib import Path

from runner.load.documents import kind_of
from runner.load.problems import Problem


def odd_entries(folder: Path, prefix: str, suffixes: tuple[str, ...]) -> list[Problem]:
    """Problems of the entries of ``folder`` named like its files (``suffixes``) that the
    loaders skip; ``prefix`` names them relative to the repository root."""
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no folder: load_config reports it
        return []
    out = []
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        lower = name.lower()
        suffix = next((s for s in suffixes if lower.endswith(s)), None)
        if suffix is None:
            continue
        rel = f"{prefix}{name}"
        written = name[len(name) - len(suffix):]
        if written != suffix:
            out.append(Problem(rel, 1, 1, "", f"the suffix {written!r} is not read: rename the "
                               f"file {name[: len(name) - len(suffix)]}{suffix}"))
            continue
        try:
            if entry.is_file():  # the common case: no system call (the folder listing says)
                continue
            kind = kind_of(os.stat(entry.path).st_mode)
        except OSError:
            kind = "a symbolic link to nothing" if entry.is_symlink() else "unreadable"
        out.append(Problem(rel, 1, 1, "", f"{kind}, not a file: not read (remove it)"))
    return sorted(out)
