"""Problems found in a repository: one line each, naming file, line, column and field."""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runner.errors import ContentError
from runner.safetext import escape_controls

#: At most this many characters of a value a problem echoes ("…" marks the cut).
SHOWN_CHARS = 80
#: A whole message is cut in the middle beyond this (its start and its advice both kept).
MESSAGE_CHARS = 400
FIELD_CHARS = 120

_repr = reprlib.Repr()
_repr.maxstring = 24  # inside a list or mapping; a string on its own gets SHOWN_CHARS
_repr.maxother = SHOWN_CHARS
_repr.maxlist = _repr.maxdict = _repr.maxtuple = _repr.maxset = 8
_repr.maxlevel = 3


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``value`` as a problem echoes it: its repr, on one line, at most ``limit`` characters."""
    if isinstance(value, str):
        text = repr(value[: limit + 1])
        if len(value) > limit:
            text = text[:-1][: limit] + "…" + text[-1]
        return escape_controls(text)
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int) and value.bit_length() > 4 * limit:  # str() of it is slow
        return f"a {value.bit_length()}-bit number"
    return _cut(escape_controls(_repr.repr(value)), limit)


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """``"; did you mean NAME?"`` when ``word`` is a near miss of one of ``choices`` (a typo
    such as ``defualt_variant`` or ``new_serch``), else ``""``: appended to a message."""
    if not isinstance(word, str) or not word or len(word) > 200:
        return ""
    names = [c for c in map(str, choices) if c != word]
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.75)
    if not close:  # a different case or separator: NewSearch, new-search
        folded = {n.lower().replace("-", "_"): n for n in names}
        close = [folded[k] for k in (word.lower().replace("-", "_"),) if k in folded]
    return f"; did you mean {close[0]}?" if close else ""


def problem_text(message: str, limit: int = MESSAGE_CHARS) -> str:
    """A message as a problem prints it: control characters escaped, cut in the middle when
    too long (whatever a value it echoes, the line stays readable and ends with its advice)."""
    message = escape_controls(message)
    if len(message) <= limit:
        return message
    half = (limit - 1) // 2
    return message[:half] + "…" + message[-half:]


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    path: str  # relative to the repository root, forward slashes
    line: int
    column: int
    field: str  # dotted path such as targeting.percentage or steps[2]; "" for the file
    message: str

    def __post_init__(self) -> None:
        # one problem is one line, whatever the input (a value echoed with a newline, a
        # megabyte-long key)
        object.__setattr__(self, "field", problem_text(self.field, FIELD_CHARS))
        object.__setattr__(self, "message", problem_text(self.message))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
        }


def field_name(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class InvalidRepository(ContentError):
    """Raised by loaders that need a valid repository; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        first = str(self.problems[0]) if self.problems else "invalid repository"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)
