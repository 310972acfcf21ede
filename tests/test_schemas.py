"""The schemas themselves, and the two validators that apply them.

jsonschema-rs answers "valid?" on the fast path and jsonschema describes errors; they must
agree on every document, or a bad file could slip through the fast path.
"""

from __future__ import annotations

import json

import pytest

from runner.load import schemas
from runner.load.yamlsafe import YamlError, load_text
from tests.bad_inputs.cases import CASES
from tests.conftest import PROJECT


def documents() -> list[tuple[str, str, object]]:
    docs: list[tuple[str, str, object]] = []
    for case in CASES:
        for rel, content in case.files.items():
            if isinstance(content, bytes):
                continue
            try:
                data = load_text(content, string_keys=True)
            except YamlError:
                continue
            kind = "flag" if rel.startswith("flags/") else "rollout"
            docs.append((f"{case.name}:{rel}", kind, data))
    for folder, kind in (("flags", "flag"), ("rollouts", "rollout")):
        for p in sorted((PROJECT / folder).glob("*.yaml")):
            docs.append((p.name, kind, load_text(p.read_text(), string_keys=True)))
    return docs


def test_every_schema_is_valid_draft_2020_12_with_an_id() -> None:
    for kind, name in schemas.SCHEMA_FILES.items():
        doc = json.loads((PROJECT / "schemas" / name).read_text())
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert doc["$id"].endswith("/" + name)
        schemas.validator(kind)  # check_schema raises on an invalid schema


def test_the_compiled_validator_is_in_use() -> None:
    assert schemas._fast("flag") is not None and schemas._fast("rollout") is not None


@pytest.mark.parametrize(("name", "kind", "data"), documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_fast_and_describing_validators_agree(name: str, kind: str, data: object) -> None:
    assert schemas.is_valid(data, kind) == schemas.validator(kind).is_valid(data), name


def _undescribed(node: object, path: str) -> list[str]:
    """Every property of a schema (at any depth) that has no ``description``."""
    missing: list[str] = []
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            missing += [f"{path}/properties/{k}" for k, v in props.items()
                        if isinstance(v, dict) and not v.get("description")]
        for k, v in node.items():
            missing += _undescribed(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            missing += _undescribed(v, f"{path}/{i}")
    return missing


def test_every_property_of_every_schema_is_described() -> None:
    """Editors show a property's description on hover: every field a user may meet has one."""
    for p in sorted((PROJECT / "schemas").glob("*.schema.json")):
        assert _undescribed(json.loads(p.read_text()), "") == [], p.name
