"""One YAML document of a repository: read into (text, mapping), and problems placed in it.

Every file ``runner.load`` reads as YAML comes through ``read_mapping``: the size limit, the
encoding, the strict loader and "a document is a mapping of fields" are decided once here.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runner.errors import ContentError
from runner.load.problems import Problem, field_name, shown
from runner.load.yamlsafe import MAX_FILE_BYTES, Locator, YamlError, decode, load_text, number_error


def json_type(value: Any) -> str:
    """The JSON name of a value's type, as the schemas and their messages say it."""
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object",
            list: "array"}.get(type(value), type(value).__name__)


def number_findings(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """Numbers of parsed JSON or TOML that YAML would refuse (see ``number_error``): nan,
    inf, integers beyond 64 bits. YAML files are checked as they are read."""
    out: list[tuple[tuple[Any, ...], str]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [(path, data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*where, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*where, i), v) for i, v in enumerate(value))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            text = shown(value) if isinstance(value, int) and value.bit_length() > 256 else repr(value)
            if (why := number_error(text, value)) is not None:
                out.append((where, why))
    return sorted(out, key=lambda f: list(map(str, f[0])))


def a_type(value: Any) -> str:
    """``json_type`` with its article: "a string", "an array"."""
    name = json_type(value)
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def kind_of(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


class Unreadable(ContentError):
    """A file the loaders must not or cannot read; the message says why."""


def _outside(path: str, rel: str) -> str | None:
    """Where the symbolic link ``path`` leads when that is outside the repository.

    ``rel`` names ``path`` relative to the repository root, so the root is ``path`` without
    ``rel``'s parts."""
    root = Path(path).parents[max(len(Path(rel).parts) - 1, 0)]
    target = os.path.realpath(path)
    if Path(target).is_relative_to(os.path.realpath(root)):
        return None
    return target


def read_bytes(path: os.PathLike[str] | str, rel: str) -> bytes:
    """The bytes of one repository file, at most :data:`MAX_FILE_BYTES` of them.

    Never blocks and never reads outside the repository: a FIFO, a device or a socket is
    refused without being read (opened non-blocking, checked with ``fstat``), and so is a
    symbolic link that leads out of the repository (``rel`` names ``path`` relative to the
    repository root). Raises :class:`Unreadable` or :class:`YamlError`.
    """
    path = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        try:  # a regular file costs no more than an open: only a link pays for realpath
            fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            target = _outside(path, rel)
            if target is not None:
                raise Unreadable(f"a symbolic link to {shown(target)}, outside the repository: "
                                 "not read (put the file itself in the repository)") from None
            fd = os.open(path, flags)
    except OSError as e:
        raise Unreadable(f"cannot read: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(f"{kind_of(info.st_mode)}, not a file: not read (remove it)")
        # one read of the size fstat gave (a 1 MiB buffer per file would cost), then more
        # only if the file grew meanwhile; never more than the limit into memory
        raw = os.read(fd, min(info.st_size, MAX_FILE_BYTES) + 1)
        while len(raw) > info.st_size and len(raw) <= MAX_FILE_BYTES:
            more = os.read(fd, MAX_FILE_BYTES + 1 - len(raw))
            if not more:
                break
            raw += more
    finally:
        os.close(fd)
    if len(raw) > MAX_FILE_BYTES:
        raise YamlError(f"file is {info.st_size} bytes, over the limit of {MAX_FILE_BYTES}")
    return raw


def read_mapping(path: os.PathLike[str] | str, rel: str) -> tuple[str, dict[str, Any]] | Problem:
    """(text, data) of one YAML file, or the problem why it has none (``rel`` names it,
    relative to the repository root: see :func:`read_bytes`)."""
    try:
        text = decode(read_bytes(path, rel))
        data = load_text(text, string_keys=True)
    except Unreadable as e:
        return Problem(rel, 1, 1, "", str(e))
    except YamlError as e:
        return Problem(rel, e.line, e.column, field_name(e.field), e.message)
    if data is None:
        return Problem(rel, 1, 1, "", "empty file: expected a YAML mapping")
    if not isinstance(data, dict):
        return Problem(rel, 1, 1, "", f"expected a YAML mapping of fields, found {a_type(data)}")
    return text, data


def located(text: str, rel: str, found: Iterable[tuple[tuple[Any, ...], str]]) -> list[Problem]:
    """Problems about fields of the document ``text``, each at the line and column of its field."""
    out = []
    locator = Locator(text)
    for path, msg in found:
        line, col = locator.locate(path)
        out.append(Problem(rel, line, col, field_name(path), msg))
    return out
