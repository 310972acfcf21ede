"""Writing files so that no reader and no crash ever sees half of one: the one helper.

Every file the product writes (a state file the runner syncs, the artifact applications
load, the journal of a run, the files ``rollout init`` scaffolds) goes through here: a
temporary file in the same folder, flushed to disk, given the target's mode (or 0644, not
``mkstemp``'s 0600, which would hide the flags from other users' processes), renamed or
linked over the target, then the folder fsynced so the rename itself survives a crash.

Only a regular file (or nothing) is ever replaced: a target that exists and is anything
else once symlinks are resolved (a folder, a FIFO, ``/dev/zero``, ``/dev/full``, a socket)
is refused with :class:`NotRegularFile` before anything is written, and reading the old
bytes never blocks on a FIFO nor reads without end from a device (:func:`read_regular`).
Commands check their targets up front with :func:`target_problem`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import stat
import tempfile
from pathlib import Path

from runner.errors import Declined

#: Prefix of the temporary files; a killed writer may leave one, and the runner's recovery
#: removes those it finds in the folders it writes (``*.tmp`` with this prefix).
TMP_PREFIX = ".rollout-tmp-"
_DEFAULT_MODE = 0o644


class NotRegularFile(Declined, OSError):
    """The path exists and is not a regular file (after symlinks): never read nor replaced."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _not_regular(path: Path, mode: int) -> NotRegularFile:
    kind = _kind(mode)
    what = kind if kind.startswith("not ") else f"is {kind}, not a regular file"
    return NotRegularFile(errno.EINVAL, what, str(path))


def target_problem(path: Path | str) -> str | None:
    """Why ``path`` cannot be a file this product writes, or None when it can: it does not
    exist yet (nor does a symlink's target), or it is a regular file."""
    try:
        st = os.stat(path)
    except OSError:  # missing, or a folder that cannot be: the write itself will say
        return None
    if stat.S_ISREG(st.st_mode):
        return None
    return str(_not_regular(Path(path), st.st_mode).strerror)


def read_regular(path: Path | str, limit: int) -> bytes:
    """The bytes of a regular file, at most ``limit`` + 1 of them (a caller knows a longer
    file by the length). Raises :class:`NotRegularFile` for anything else, without
    blocking: a FIFO or a device is never opened (and, swapped in between, opened
    non-blocking and never read)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(Path(path), st.st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(Path(path), st.st_mode)
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int | None = None, *,
                 durable: bool = True) -> bool:
    """Replace ``path`` with ``data`` atomically. Returns False, writing nothing, when the
    file already holds exactly these bytes. Raises :class:`NotRegularFile`, writing
    nothing, when ``path`` is a folder, a FIFO, a device... (symlinks followed). The file
    keeps the mode of the one it replaces (0644 when new), or gets ``mode`` when given."""
    path = Path(path)
    try:
        if read_regular(path, len(data)) == data:
            return False
    except FileNotFoundError:
        pass
    folder = _folder(path)
    tmp = _flushed_temporary(folder, path, data, durable)
    try:
        try:
            st = path.stat()
        except FileNotFoundError:
            kept = _DEFAULT_MODE
        else:
            if not stat.S_ISREG(st.st_mode):  # swapped for something else meanwhile
                raise _not_regular(path, st.st_mode)
            kept = st.st_mode & 0o777
        os.chmod(tmp, kept if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_folder(folder)
    return True


def write_unsynced(path: Path, data: bytes) -> bool:
    """:func:`write_atomic` without its two fsyncs: no reader ever sees half a file, but
    after a power loss the file may be empty or old until :func:`sync_all`. Only for a
    writer that can redo its writes after such a crash (the runner's files, from the
    journal it keeps until :func:`sync_all` returned)."""
    return write_atomic(path, data, durable=False)


def sync_all(folder: Path) -> None:
    """Every write to the file system holding ``folder`` made durable at once
    (``syncfs(2)`` on Linux, else ``sync(2)``): one flush for a batch of
    :func:`write_unsynced` files instead of two fsyncs per file."""
    syncfs = getattr(_libc(), "syncfs", None)
    if syncfs is not None:
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                if syncfs(fd) == 0:
                    return
            finally:
                os.close(fd)
    os.sync()


@functools.cache
def _libc() -> object:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


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


def _flushed_temporary(folder: Path, path: Path, data: bytes, durable: bool = True) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
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
