"""What a reload changed: the keys whose evaluation may differ between two flag sets."""

from __future__ import annotations

from typing import Any

from runner.evaluate.compile import FlagSet


def _plain(value: Any) -> Any:
    """A compiled object as comparable data: its slots, recursively; functions left out."""
    if isinstance(value, tuple | list):
        return tuple(_plain(v) for v in value)
    slots = getattr(type(value), "__slots__", None)
    if slots and not isinstance(value, str | bytes):
        return tuple((name, _plain(getattr(value, name, None))) for name in slots
                     if not name.startswith("_") and not callable(getattr(value, name, None)))
    return value


def changed_keys(old: FlagSet | None, new: FlagSet) -> frozenset[str]:
    """The keys whose evaluation may differ between ``old`` and ``new``: added, removed,
    changed (variants, targeting, split, rollout...), and the flags that require one of
    those, transitively. A change of the whole set (``emergency_shutdown``...) is every key."""
    if old is None:
        return frozenset(new.flags)
    if old.digest is not None and old.digest == new.digest:
        return frozenset()
    everything = frozenset(old.flags) | frozenset(new.flags)
    for name in FlagSet.__slots__:
        if name not in ("flags", "digest", "source_commit") and not name.startswith("_") \
                and _plain(getattr(old, name, None)) != _plain(getattr(new, name, None)):
            return everything
    changed = set(everything.symmetric_difference(old.flags.keys() & new.flags.keys()))
    for key in old.flags.keys() & new.flags.keys():
        if _plain(old.flags[key]) != _plain(new.flags[key]):
            changed.add(key)
    dependents: dict[str, list[str]] = {}
    for flags in (old.flags, new.flags):
        for key, f in flags.items():
            for required, _variant in f.requires:
                dependents.setdefault(required, []).append(key)
    todo = list(changed)
    while todo:
        for key in dependents.get(todo.pop(), ()):
            if key not in changed:
                changed.add(key)
                todo.append(key)
    return frozenset(changed)
