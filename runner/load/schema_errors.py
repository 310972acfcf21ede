"""JSON Schema errors in words: each as the field it is about and a message a person can act on.

jsonschema's own messages name the rule that failed ("... is not valid under any of the given
schemas"); these name the field and say what would be right.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from jsonschema.exceptions import ValidationError

from runner.load import schemas
from runner.load.documents import a_type
from runner.load.problems import did_you_mean, shown
from runner.load.units import unit_advice

_DURATION_PATTERN = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d|w))+$"
_KEY_PATTERN = "^[a-z][a-z0-9_]*$"
#: What the schemas' patterns mean, in words.
_PATTERNS = {
    _KEY_PATTERN: "is not a lower snake case name (a-z, 0-9 and _, starting with a letter)",
    _DURATION_PATTERN: "is not a duration such as 300s, 5m, 1h30m or 2d",
    "^https?://": "is not an http:// or https:// URL",
    "^[A-Za-z_][A-Za-z0-9_]*$": "is not an environment variable name (letters, digits, _)",
    "^[A-Za-z0-9][A-Za-z0-9_.-]*$": "is not a variant name (letters, digits, _ . -)",
    "^[0-9]+(ms|s|m|h|d|w)$": "is not a window such as 5m or 1h",
    "^[0-9]+(\\.[0-9]+)?/(s|m|h|d)$": "is not a traffic such as 6000/h (requests an hour; /s, "
                                      "/m and /d too)",
}


def _alternatives(err: ValidationError) -> tuple[tuple[Any, ...], str] | None:
    """A oneOf/anyOf error in words: the branch the author meant, or what the choices are."""
    branches = cast("list[dict[str, Any]]", err.validator_value)  # the oneOf/anyOf list
    if all(set(b) == {"required"} for b in branches):  # "exactly one of these fields"
        names = [n for b in branches for n in b["required"]]
        present = [n for n in names if isinstance(err.instance, dict) and n in err.instance]
        path = tuple(err.absolute_path)
        if len(present) > 1:
            return path, f"give only one of {', '.join(present)}"
        return path, f"needs one of {', '.join(names)}"
    by_branch: dict[str | int, list[ValidationError]] = {}
    for e in err.context or ():
        by_branch.setdefault(e.relative_schema_path[0], []).append(e)
    if not by_branch:
        return None

    def unmeant(errs: list[ValidationError]) -> tuple[bool, bool, int]:
        # a branch whose type, or whose discriminator (metrics.type), does not match was
        # not what the author meant
        wrong_type = any(e.validator == "type" and not e.relative_path for e in errs)
        wrong_kind = any(e.validator in ("const", "enum") and len(e.relative_path) == 1 for e in errs)
        return wrong_type, wrong_kind, len(errs)

    kinds = [[e for e in errs if e.validator == "const" and len(e.relative_path) == 1]
             for errs in by_branch.values()]
    if len(by_branch) == len(branches) and all(kinds):  # a discriminator such as metrics.type
        wrong = kinds[0][0]
        choices = [k[0].validator_value for k in kinds]
        allowed = ", ".join(map(str, choices))
        return tuple(wrong.absolute_path), (f"{shown(wrong.instance)} is not one of {allowed}"
                                            + did_you_mean(wrong.instance, choices))
    best = min(by_branch.values(), key=unmeant)
    if unmeant(best)[0]:  # no branch has the value's type
        types: list[str] = []
        for b in branches:
            t = b.get("type") or (["object"] if "properties" in b else [])
            types.extend([t] if isinstance(t, str) else t)
        want = " or ".join(dict.fromkeys(types)) or "an allowed value"
        return tuple(err.absolute_path), _typed(tuple(err.absolute_path), err.instance, want)
    return _describe(min(best, key=lambda e: -len(e.absolute_path)))


def _typed(path: tuple[Any, ...], instance: Any, want: str) -> str:
    """A value of the wrong type, in words; for a number written with its unit (``'500ms'``,
    ``'5%'``) what to write instead."""
    said = f"{shown(instance)} is {a_type(instance)}, expected {want}"
    advice = unit_advice(path, instance)
    if path == ("traffic",) and isinstance(instance, int | float) \
            and not isinstance(instance, bool) and instance >= 0:  # traffic needs its unit
        advice = f"write {instance:g}/h (requests an hour; /s, /m and /d too)"
    return f"{said}: {advice}" if advice else said


def _describe(err: ValidationError) -> tuple[tuple[Any, ...], str]:
    """One schema error as (field path, message) a person can act on."""
    path = tuple(err.absolute_path)
    # A validator sets these on every error it yields (the stubs also allow a hand-made
    # error, where they are unset).
    v = cast(str, err.validator)
    instance: Any = err.instance
    value: Any = err.validator_value
    if v in ("oneOf", "anyOf"):
        said = _alternatives(err)
        if said is not None:
            return said
    if v == "additionalProperties":
        properties = err.schema.get("properties", {}) if isinstance(err.schema, Mapping) else {}
        extra = sorted(set(map(str, instance)) - set(properties))
        if extra and properties:
            near = did_you_mean(extra[0], properties)
            if near:
                return (*path, extra[0]), f"unknown field{near}"
            allowed = ", ".join(sorted(properties))
            if extra[0] == "confidence" and len(path) >= 2 and path[-2] == "gates":
                return (*path, extra[0]), (f"unknown field (allowed: {allowed}); only error_rate "
                                           "takes a confidence: a rate of counted errors can be "
                                           "bounded, a latency percentile cannot (compare a "
                                           "slow_rate instead, docs/guarded.md)")
            return (*path, extra[0]), f"unknown field (allowed: {allowed})"
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else ""
        return (*path, missing), "required field is missing"
    if v == "enum":
        return path, (f"{shown(instance)} is not one of {', '.join(map(str, value))}"
                      + did_you_mean(instance, value))
    if v == "const":
        return path, f"{shown(instance)}: expected {value!r}"
    if v == "pattern" and value in _PATTERNS:
        return path, f"{shown(instance)} {_PATTERNS[value]}"
    if v == "type":
        want = value
        want = " or ".join(want) if isinstance(want, list) else want
        return path, _typed(path, instance, want)
    if v == "minLength" and value == 1:
        return path, "must not be empty"
    if v == "uniqueItems":
        seen: list[Any] = []
        for item in instance:
            if item in seen:
                return path, f"{shown(item)} is listed more than once"
            seen.append(item)
    if v == "propertyNames" and err.context:
        return _describe(err.context[0])
    if v in ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"):
        word = {"maximum": "greater than the maximum of", "minimum": "less than the minimum of",
                "exclusiveMaximum": "greater than or equal to the maximum of",
                "exclusiveMinimum": "less than or equal to the minimum of"}[v]
        return path, f"{shown(instance)} is {word} {value}"
    n = value
    if v in ("minItems", "minProperties") and n == 1:
        return path, "must not be empty"
    words = {"maxLength": f"is too long (at most {n} characters)",
             "minLength": f"is too short (at least {n} characters)",
             "maxItems": f"has more than {n} items", "minItems": f"has fewer than {n} items",
             "maxProperties": f"has more than {n} fields",
             "minProperties": f"has fewer than {n} fields"}.get(v)
    if words:
        return path, f"{shown(instance)} {words}"
    return path, err.message


def schema_findings(data: Any, kind: str) -> list[tuple[tuple[Any, ...], str]]:
    if schemas.is_valid(data, kind):
        return []
    errors = list(schemas.validator(kind).iter_errors(data))
    return [_describe(e) for e in sorted(errors, key=lambda e: list(map(str, e.absolute_path)))]
