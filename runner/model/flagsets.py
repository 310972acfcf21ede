"""Which flags a publication set holds: ``[tool.rollout.publish.sets]`` applied to the flags.

A set is named in the config with a list of flag-key globs (``checkout = ["checkout_*",
"payment_provider"]``); a flag also joins every set its own ``sets:`` field names. Its
prerequisites (``requires``, transitively) join with it, so that a set's artifact evaluates
each of its flags exactly as the whole artifact does. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from runner.model.flag import Flag

#: A set's name: it becomes a folder name (``sets/NAME/``) and a URL segment, so lower
#: case only (two names that differ in case would be one folder on macOS and Windows).
SET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: The characters a glob may use: those of a flag key and fnmatch's ``* ? [ ] !``.
GLOB_CHARS = re.compile(r"[a-z0-9_*?\[\]!-]+")
_GLOB_META = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class PublishSet:
    """One ``[tool.rollout.publish.sets]`` entry: a name and the key globs it selects."""

    name: str
    globs: tuple[str, ...] = ()


def is_pattern(glob: str) -> bool:
    """The glob has a wildcard (else it names one flag exactly)."""
    return _GLOB_META.search(glob) is not None


def glob_problem(glob: str) -> str | None:
    """Why ``glob`` is not a usable key glob (its characters are checked by the schema),
    or None."""
    depth_open = False
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "[":
            if depth_open:
                return "a [ inside a [...] class"
            depth_open = True
            # fnmatch: "]" right after "[" or "[!" is a member, not the end
            if glob[i + 1:i + 2] == "!":
                i += 1
            if glob[i + 1:i + 2] == "]":
                i += 1
        elif c == "]" and depth_open:
            depth_open = False
        i += 1
    if depth_open:
        return "a [ without its closing ]"
    return None


def selected(flags: Mapping[str, Flag], spec: PublishSet) -> list[str]:
    """The keys of the flags ``spec`` selects (by glob or by their ``sets:`` field), with
    their prerequisites, transitively; sorted. Prerequisites that are not flags (an invalid
    repository) are left out."""
    chosen = {key for key, flag in flags.items()
              if spec.name in flag.sets or any(fnmatchcase(key, g) for g in spec.globs)}
    todo = list(chosen)
    while todo:
        flag = flags.get(todo.pop())
        for req in flag.requires if flag is not None else ():
            if req.flag in flags and req.flag not in chosen:
                chosen.add(req.flag)
                todo.append(req.flag)
    return sorted(chosen)
