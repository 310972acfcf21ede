"""The flagd export: valid against flagd's schema, and, under ``bucketing = "flagd-v3"``,
evaluated by the real flagd provider (``openfeature-provider-flagd`` in file mode, on
``openfeature-flagd-core`` 2.x) exactly as FlagClient evaluates the native artifact."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext

from runner import FlagClient
from runner.evaluate.flagd import flagd_problems
from tests.evaluate.agreement import N_CONTEXTS, agreement_repo, contexts, export
from tests.evaluate.conftest import RepoWriter, flagd_schemas


@pytest.fixture
def exported(make_repo: Callable[..., RepoWriter], tmp_path: Path) -> tuple[Path, Path]:
    return export(agreement_repo(make_repo, "flagd-v3"), tmp_path)


def test_flagd_export_validates_against_flagds_schema(exported: tuple[Path, Path]) -> None:
    doc = json.loads(exported[1].read_text())
    assert flagd_problems(doc, flagd_schemas()) == []
    assert doc["$schema"] == "https://flagd.dev/schema/v0/flags.json"
    # and the schema really checks: a broken document is reported
    broken = json.loads(json.dumps(doc))
    broken["flags"]["five"]["state"] = "MAYBE"
    del broken["flags"]["five"]["variants"]
    problems = flagd_problems(broken, flagd_schemas())
    assert problems and any("flags/five" in p for p in problems)


def test_flagd_provider_in_file_mode_agrees_with_flagclient(exported: tuple[Path, Path]) -> None:
    native, flagd = exported
    client = FlagClient.from_file(native, env={})
    provider = FlagdProvider(resolver_type=ResolverType.FILE,
                             offline_flag_source_path=str(flagd))
    domain = f"agreement-{uuid.uuid4()}"
    api.set_provider(provider, domain=domain)
    try:
        of = api.get_client(domain)
        getters = {"boolean": of.get_boolean_details, "string": of.get_string_details,
                   "number": of.get_float_details, "object": of.get_object_details}
        defaults: dict[str, Any] = {"boolean": False, "string": "", "number": -1.0,
                                    "object": {}}
        keys = client.flag_keys()
        assert len(keys) == 21
        checked = 0
        seen: dict[str, set[str]] = {k: set() for k in keys}
        for tk, attrs in contexts(N_CONTEXTS):
            ctx = {**attrs, "targetingKey": tk}
            for key in keys:
                ours = client.evaluate(key, ctx)
                kind = client.flag_type(key)
                assert kind is not None
                theirs = getters[kind](key, defaults[kind], EvaluationContext(tk, attrs))
                assert theirs.error_code is None, (key, tk, attrs, theirs.error_message)
                assert (theirs.value, theirs.variant) == (ours.value, ours.variant), \
                    f"{key} for {tk!r} {attrs}: flagd {theirs.variant}, FlagClient {ours.variant}"
                seen[key].add(str(ours.variant))
                checked += 1
    finally:
        provider.shutdown()
    assert checked == N_CONTEXTS * 21
    # the comparison exercised every outcome, not just defaults
    assert seen["canaried"] == {"on", "off"} and seen["grandchild"] == {"on", "off"}
    assert seen["color"] == {"red", "green", "blue"} and seen["limit"] == {"low", "mid", "high"}
    assert seen["half_percent"] == {"on", "off"} and seen["rolled_child"] == {"on", "off"}
    assert seen["everyone"] == {"on"}
    assert seen["switched_off"] == {"off"} and seen["needs_switched_off"] == {"off"}
    assert seen["rolled_back"] == {"off"} and seen["needs_rolled_back"] == {"off"}
    assert seen["paused"] == {"on", "off"}


def test_repository_kill_switch_exports_every_flag_at_its_default(
        make_repo: Callable[..., RepoWriter]) -> None:
    from openfeature.contrib.tools.flagd.core import FlagdCore

    from runner.evaluate import render_artifact

    w = agreement_repo(make_repo, None).config("[tool.rollout]\nemergency_shutdown = true\n")
    repo = w.load()
    doc = json.loads(render_artifact(repo, source_commit=None, fmt="flagd"))
    assert flagd_problems(doc, flagd_schemas()) == []
    assert all("targeting" not in f for f in doc["flags"].values())
    core = FlagdCore()
    core.set_flags(doc)
    client = FlagClient.from_repo(w.root, env={})
    for key in client.flag_keys():
        r = client.evaluate(key, {"targetingKey": "vip", "region": "us-west-2"})
        assert r.reason == "DISABLED"
        kind = client.flag_type(key)
        resolve = {"boolean": core.resolve_boolean_value, "string": core.resolve_string_value,
                   "number": core.resolve_float_value,
                   "object": core.resolve_object_value}[kind or ""]
        theirs = resolve(key, None, EvaluationContext("vip", {"region": "us-west-2"}))
        assert (theirs.value, theirs.variant) == (r.value, r.variant)


def _python_problems(doc: Any) -> list[str]:
    """flagd_problems as it was before the compiled fast path: jsonschema alone."""
    from runner.evaluate.flagd import flagd_validator

    validator = flagd_validator(flagd_schemas())
    return [f"{'/'.join(map(str, e.absolute_path)) or '(document)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))]


def _mutations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Valid and broken variants of an export, each breaking flagd's schema in another place
    (state, variants, targeting operators and their arguments, keys, metadata, top level)."""
    def copy() -> dict[str, Any]:
        out: dict[str, Any] = json.loads(json.dumps(doc))
        return out

    out = [copy()]
    edits: list[Callable[[dict[str, Any]], None]] = [
        lambda d: d["flags"]["five"].update(state="MAYBE"),
        lambda d: d["flags"]["five"].pop("variants"),
        lambda d: d["flags"]["five"].update(defaultVariant=7),
        lambda d: d["flags"]["five"].update(targeting={"nonsense": [1, 2]}),
        lambda d: d["flags"]["five"].update(targeting={"fractional": "no"}),
        lambda d: d["flags"]["color"].update(variants={"red": 1, "green": "x"}),
        lambda d: d["flags"]["limit"].update(variants={"low": "ten"}),
        lambda d: d["flags"].update({"": d["flags"]["five"]}),
        lambda d: d["flags"].update({"line\n": d["flags"]["five"]}),
        lambda d: d["flags"]["five"].update(extra=True),
        lambda d: d.update(flags=[]),
        lambda d: d.update(metadata="x"),
        lambda d: d.update({"$evaluators": {"e": {"in": [1]}}}),
        lambda d: d["flags"]["canaried"]["targeting"]["if"].append({"sem_ver": [1, "=", "x"]}),
        lambda d: d["flags"]["five"].update(targeting={}),  # empty targeting: valid
    ]
    for edit in edits:
        d = copy()
        edit(d)
        out.append(d)
    return [*out, [], "flags", {"flags": {}}]  # type: ignore[list-item]


def test_the_compiled_schema_check_reports_exactly_what_jsonschema_reports(
        exported: tuple[Path, Path]) -> None:
    from runner.evaluate.flagd import _compiled_validator, _schema_texts

    # the fast path is there (a jsonschema-rs that cannot compile flagd's schema would make
    # every publication slow again, silently)
    assert _compiled_validator(*_schema_texts(flagd_schemas())) is not None
    doc = json.loads(exported[1].read_text())
    results = [(flagd_problems(d, flagd_schemas()), _python_problems(d)) for d in _mutations(doc)]
    for ours, theirs in results:
        assert ours == theirs
    assert sum(1 for ours, _ in results if ours) >= 12  # the broken ones are reported
