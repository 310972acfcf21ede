"""Writing files so that no reader and no crash ever sees half of one: the one helper.

Every file the product writes (a state file the runner syncs, the artifact applications
load, the journal of a run, the files ``rollout init`` scaffolds) goes through here: a
temporary file in the same folder, flushed to disk, given the target's mode (or 0644, not
``mkstemp``'s 0600, which would hide the flags from other users' processes), renamed or
linked over the target, then the folder fsynced so the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

#: Prefix of the temporary files; a killed writer may leave one, and the runner's recovery
#: removes those it finds in the folders it writes (``*.tmp`` with this prefix).
TMP_PREFIX = ".rollout-tmp-"
_DEFAULT_MODE = 0o644


def write_atomic(path: Path, data: bytes) -> bool:
    """Replace ``path`` with ``data`` atomically. Returns False, writing nothing, when the
    file already holds exactly these bytes."""
    path = Path(path)
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    folder = _folder(path)
    tmp = _flushed_temporary(folder, path, data)
    try:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = _DEFAULT_MODE
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)
    return True


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data``, atomically, failing with FileExistsError when the
    path exists by then (a hard link never replaces its target)."""
    path = Path(path)
    folder = _folder(path)
    tmp = _flushed_temporary(folder, path, data)
    try:
        os.chmod(tmp, _DEFAULT_MODE)
        os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_folder(folder)


def _folder(path: Path) -> Path:
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _flushed_temporary(folder: Path, path: Path, data: bytes) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def _fsync_folder(folder: Path) -> None:
    """Make a rename or link durable; a file system that cannot fsync a folder only loses
    that durability, never the file."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
