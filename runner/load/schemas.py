"""The JSON Schemas in ``schemas/``, compiled once per process."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

try:  # compiled (Rust) validation: ~40x faster on valid documents, the common case
    import jsonschema_rs
except ImportError:  # pragma: no cover - then jsonschema alone does the work
    _HAVE_RS = False
else:
    _HAVE_RS = True

SCHEMA_FILES = {
    "flag": "flag.schema.json",
    "rollout": "rollout.schema.json",
    "state": "rollout-state.schema.json",
    "config": "config.schema.json",
}
#: Schemas without references to other files, which the compiled validator takes alone.
_SELF_CONTAINED = ("flag", "rollout", "state")


def schema_dir() -> Path:
    """The schemas: ``schemas/`` of a source checkout, or the copy packed into the wheel."""
    here = Path(__file__).resolve().parent.parent  # runner/
    for candidate in (here.parent / "schemas", here / "_schemas"):
        if (candidate / "flag.schema.json").is_file():
            return candidate
    raise FileNotFoundError("rollout-runner's JSON Schemas are missing from the installation")


@cache
def _registry() -> Registry:
    resources = []
    for name in SCHEMA_FILES.values():
        doc = json.loads((schema_dir() / name).read_text(encoding="utf-8"))
        resource = Resource.from_contents(doc)
        resources.append((doc["$id"], resource))
        resources.append((name, resource))  # relative $refs between our schemas
    return Registry().with_resources(resources)


@cache
def schema(kind: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((schema_dir() / SCHEMA_FILES[kind]).read_text(encoding="utf-8"))
    return doc


@cache
def validator(kind: str) -> Draft202012Validator:
    s = schema(kind)
    Draft202012Validator.check_schema(s)
    return Draft202012Validator(s, registry=_registry())


@cache
def _fast(kind: str) -> jsonschema_rs.Validator | None:
    if not _HAVE_RS or kind not in _SELF_CONTAINED:
        return None
    try:
        return jsonschema_rs.validator_for(schema(kind))
    except Exception:  # an incompatible jsonschema-rs: jsonschema does the work
        return None


def is_valid(data: Any, kind: str) -> bool:
    """Whether ``data`` passes the ``kind`` schema.

    A compiled validator (jsonschema-rs) answers when it is installed; jsonschema describes
    the errors (see ``validator``), so messages are the same either way. Whatever the fast
    path cannot take (a number out of its range...) goes to jsonschema.
    """
    fast = _fast(kind)
    if fast is not None:
        try:
            return bool(fast.is_valid(data))
        except Exception:  # jsonschema-rs (third party) cannot take this data: jsonschema can
            pass
    return validator(kind).is_valid(data)
