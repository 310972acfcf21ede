"""The JSON Schemas in ``schemas/``, compiled once per process."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_FILES = {
    "flag": "flag.schema.json",
    "rollout": "rollout.schema.json",
    "state": "rollout-state.schema.json",
    "config": "config.schema.json",
}


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
    return json.loads((schema_dir() / SCHEMA_FILES[kind]).read_text(encoding="utf-8"))


@cache
def validator(kind: str) -> Draft202012Validator:
    s = schema(kind)
    Draft202012Validator.check_schema(s)
    return Draft202012Validator(s, registry=_registry())
