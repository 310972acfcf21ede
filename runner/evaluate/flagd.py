"""Export to flagd's flag-definition format, evaluated by flagd exactly as FlagClient evaluates.

Each flag's targeting is one JSON Logic expression that yields the variant name
the SDK's resolver (:mod:`runner.evaluate.resolver`) would choose for it:

* canary users and regions become ``in`` tests, attribute rules their JSON Logic
  counterparts, in the same first-match order (an ``if`` chain);
* the split becomes ``fractional`` with integer weights out of 10,000 and an explicit
  bucketing value ``{"cat": ["<flag key>", {"var": "targetingKey"}]}`` (see
  :mod:`runner.evaluate.bucket` for why not the shorthand). The same rule under both
  bucketing schemes: ``cat`` yields a string, which the Go daemon and the JavaScript core
  hash as a string (``flagd-v2``) and openfeature-flagd-core 2.x for Python as its CBOR
  encoding (``flagd-v3``); no JSON Logic expression can turn one into the other (a CBOR
  header holds the length of a text that is known only at evaluation), so the scheme names
  the implementations that evaluate the export exactly as FlagClient does, and
  ``metadata.bucketing`` records it;
* prerequisites, which flagd lacks, become a test that the prerequisite's own expression,
  inlined, yields the required variant;
* ``enabled: false``, a rolled back rollout and the repository's kill switch become a flag
  with no targeting,
  serving its default variant (flagd's ``DISABLED`` would serve the *caller's* default).

What flagd cannot see is left out by nature: the process-local ``EMERGENCY_SHUTDOWN`` and
per-flag environment overrides.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from runner.errors import UsageError
from runner.evaluate.artifact import artifact_content, content_digest
from runner.model import Phase, Repository

FLAGD_SCHEMA_ID = "https://flagd.dev/schema/v0/flags.json"
#: flagd's own schemas, shipped in the package (see flagd_schemas/README.md).
BUNDLED_SCHEMAS = Path(__file__).resolve().parent / "flagd_schemas"
TARGETING_SCHEMA_ID = "https://flagd.dev/schema/v0/targeting.json"

Expr = str | dict[str, Any]


def _var(attribute: str) -> dict[str, Any]:
    return {"var": attribute}


def _rule_condition(rule: dict[str, Any]) -> dict[str, Any]:
    attr = _var(rule["attribute"])
    op, values = rule["op"], list(rule["values"])
    if op in ("in", "equals"):
        return {"in": [attr, values]}
    if op == "not_in":
        return {"and": [{"!==": [attr, None]}, {"!": {"in": [attr, values]}}]}
    return {op: [attr, values[0]]}  # starts_with / ends_with: flagd's own operators


def _split_expr(key: str, entry: dict[str, Any]) -> Expr:
    split = entry["split"]
    default: str = entry["default_variant"]
    if not split:
        return default
    if len(split) == 1:
        only: str = split[0]["variant"]
        return only
    value = _var(entry["bucket_by"] or "targetingKey")
    fractional = [{"cat": [key, value]}, *([s["variant"], s["weight"]] for s in split)]
    # no bucketing value: the default variant, as FlagClient does (flagd would hash "null")
    return {"if": [{"!==": [value, None]}, {"fractional": fractional}, default]}


def _targeting_expr(key: str, entry: dict[str, Any]) -> Expr:
    t = entry["targeting"]
    branches: list[Any] = []
    if t["users"]:
        branches += [{"in": [_var("targetingKey"), list(t["users"])]}, t["variant"]]
    if t["regions"]:
        branches += [{"in": [_var("region"), list(t["regions"])]}, t["variant"]]
    for rule in t["rules"]:
        branches += [_rule_condition(rule), rule["variant"]]
    tail = _split_expr(key, entry)
    if not branches:
        return tail
    return {"if": [*branches, tail]}


class _Exporter:
    def __init__(self, content: dict[str, Any]):
        self.flags: dict[str, dict[str, Any]] = content["flags"]
        self.killed: bool = content["emergency_shutdown"]
        self.memo: dict[str, Expr] = {}

    def variant_expr(self, key: str) -> Expr:
        """JSON Logic yielding the variant the flag serves (a plain string when constant)."""
        if key in self.memo:
            return self.memo[key]
        entry = self.flags[key]
        default = entry["default_variant"]
        expr: Expr
        rollout = entry.get("rollout") or {}
        if self.killed or not entry["enabled"] or rollout.get("phase") == Phase.ROLLED_BACK.value:
            expr = default
        else:
            body = _targeting_expr(key, entry)
            conditions = []
            failed = False
            for req in entry["requires"]:
                sub = self.variant_expr(req["flag"])
                if isinstance(sub, str):  # decided without a context
                    failed = failed or sub != req["variant"]
                    continue
                conditions.append({"===": [sub, req["variant"]]})
            if failed:
                expr = default
            elif not conditions:
                expr = body
            else:
                cond = conditions[0] if len(conditions) == 1 else {"and": conditions}
                expr = {"if": [cond, body, default]}
        self.memo[key] = expr
        return expr

    def flag(self, key: str) -> dict[str, Any]:
        entry = self.flags[key]
        out: dict[str, Any] = {
            "state": "ENABLED",
            "variants": entry["variants"],
            "defaultVariant": entry["default_variant"],
        }
        expr = self.variant_expr(key)
        if isinstance(expr, str):
            if expr != entry["default_variant"]:
                out["targeting"] = {"if": [True, expr, entry["default_variant"]]}
        else:
            out["targeting"] = expr
        return out


def flagd_document(repo: Repository, *, source_commit: str | None,
                   generation: int | None = None,
                   environment: str | None = None) -> dict[str, Any]:
    """The flagd export; ``metadata.sourceCommit``, ``metadata.generation`` (a
    publication's, see ``artifact_document``) and ``metadata.environment`` when given."""
    content = artifact_content(repo)
    exporter = _Exporter(content)
    metadata: dict[str, Any] = {"flagSetId": "rollout-runner", "version": content_digest(content),
                                # which flagd implementations bucket as FlagClient does
                                "bucketing": content["bucketing"]}
    if source_commit:
        metadata["sourceCommit"] = source_commit
    if generation is not None:
        metadata["generation"] = generation
    if environment is not None:
        metadata["environment"] = environment
    return {
        "$schema": FLAGD_SCHEMA_ID,
        "metadata": metadata,
        "flags": {key: exporter.flag(key) for key in sorted(content["flags"])},
    }


# --- validation against flagd's own schema -----------------------------------------------


class FlagdSchemaMissing(UsageError, RuntimeError):
    """flagd's schemas are not where they were expected."""


def flagd_validator(schema_dir: Path) -> Any:
    """A draft-07 validator for flagd files, from the vendored ``flags.json``/``targeting.json``."""
    # inline for start-up time: the SDK imports this module (through runner.evaluate) and
    # never validates; jsonschema and referencing would make its import several times slower
    from jsonschema import Draft7Validator
    from referencing import Registry, Resource

    flags_text, targeting_text = _schema_texts(schema_dir)
    flags_schema, targeting_schema = json.loads(flags_text), json.loads(targeting_text)
    targeting = Resource.from_contents(targeting_schema)
    # Draft-07 ignores "$id" beside a root "$ref", as flags.json has, so its relative
    # "./targeting.json" is resolved against no base: register that spelling too.
    registry: Registry = Registry().with_resources([
        (FLAGD_SCHEMA_ID, Resource.from_contents(flags_schema)),
        (TARGETING_SCHEMA_ID, targeting),
        ("./targeting.json", targeting),
    ])
    return Draft7Validator(flags_schema, registry=registry)


def _schema_texts(schema_dir: Path) -> tuple[str, str]:
    flags_path, targeting_path = schema_dir / "flags.json", schema_dir / "targeting.json"
    for p in (flags_path, targeting_path):
        if not p.is_file():
            raise FlagdSchemaMissing(f"flagd schema {p} not found (expected the vendored "
                                     "open-feature/flagd-schemas json/ folder there)")
    return flags_path.read_text(encoding="utf-8"), targeting_path.read_text(encoding="utf-8")


def _refuse_retrieval(uri: str) -> Any:
    # flagd's schemas are all in the registry: a reference outside them is never fetched
    raise ValueError(f"{uri}: not one of flagd's vendored schemas")


@functools.cache
def _compiled_validator(flags_text: str, targeting_text: str) -> Any:
    """flagd's schema compiled by jsonschema-rs (Rust), or None when it cannot take it.
    Keyed by the schemas' text: compiled once per process for the same files."""
    try:
        import jsonschema_rs  # inline, as jsonschema in flagd_validator: the SDK never validates

        flags_schema = json.loads(flags_text)
        registry = jsonschema_rs.Registry([
            (FLAGD_SCHEMA_ID, flags_schema), (TARGETING_SCHEMA_ID, json.loads(targeting_text))])
        # base_uri: "./targeting.json" resolves to TARGETING_SCHEMA_ID, as flagd_validator
        # registers it; formats unchecked, as jsonschema's Draft7Validator leaves them
        return jsonschema_rs.Draft7Validator(
            flags_schema, registry=registry, base_uri=FLAGD_SCHEMA_ID, validate_formats=False,
            retriever=_refuse_retrieval)
    except Exception:  # no or an incompatible jsonschema-rs: jsonschema does all the work
        return None


def flagd_problems(document: Any, schema_dir: Path) -> list[str]:
    """Every way ``document`` breaks flagd's schema, one line each (empty when valid).

    jsonschema-rs answers whether it is valid (~100x faster than jsonschema over a whole
    export: a publication at 10,000 flags spent most of its time here); only a document it
    finds invalid, or cannot take, is gone through by jsonschema, whose messages these are."""
    fast = _compiled_validator(*_schema_texts(schema_dir))
    if fast is not None:
        try:
            if fast.is_valid(document):
                return []
        except Exception:  # data jsonschema-rs cannot take (a number out of its range...)
            pass
    validator = flagd_validator(schema_dir)
    problems = []
    for err in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path))):
        where = "/".join(map(str, err.absolute_path)) or "(document)"
        problems.append(f"{where}: {err.message}")
    return problems
