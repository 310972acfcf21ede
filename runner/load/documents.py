"""One YAML document of a repository: read into (text, mapping), and problems placed in it.

Every file ``runner.load`` reads as YAML comes through ``read_mapping``: the size limit, the
encoding, the strict loader and "a document is a mapping of fields" are decided once here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from runner.load.problems import Problem, field_name
from runner.load.yamlsafe import MAX_FILE_BYTES, Locator, YamlError, decode, load_text


def json_type(value: Any) -> str:
    """The JSON name of a value's type, as the schemas and their messages say it."""
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object",
            list: "array"}.get(type(value), type(value).__name__)


def read_mapping(path: os.PathLike[str] | str, rel: str) -> tuple[str, dict[str, Any]] | Problem:
    """(text, data) of one YAML file, or the problem why it has none (``rel`` names it)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)  # never more than the limit into memory
            if len(raw) > MAX_FILE_BYTES:
                size = os.fstat(f.fileno()).st_size
                raise YamlError(f"file is {size} bytes, over the limit of {MAX_FILE_BYTES}")
        text = decode(raw)
        data = load_text(text, string_keys=True)
    except OSError as e:
        return Problem(rel, 1, 1, "", f"cannot read: {e.strerror or e}")
    except YamlError as e:
        return Problem(rel, e.line, e.column, field_name(e.field), e.message)
    if data is None:
        return Problem(rel, 1, 1, "", "empty file: expected a YAML mapping")
    if not isinstance(data, dict):
        return Problem(rel, 1, 1, "", f"expected a YAML mapping of fields, found a {json_type(data)}")
    return text, data


def located(text: str, rel: str, found: Iterable[tuple[tuple[Any, ...], str]]) -> list[Problem]:
    """Problems about fields of the document ``text``, each at the line and column of its field."""
    out = []
    locator = Locator(text)
    for path, msg in found:
        line, col = locator.locate(path)
        out.append(Problem(rel, line, col, field_name(path), msg))
    return out
