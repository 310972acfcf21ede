"""The flagd export: valid against flagd's schema, and evaluated by the real flagd provider
(``openfeature-provider-flagd`` in file mode, on ``openfeature-flagd-core``) exactly as
FlagClient evaluates the native artifact."""

from __future__ import annotations

import json
import random
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
from tests.conftest import run_cli
from tests.evaluate.conftest import RepoWriter, flagd_schemas

N_CONTEXTS = 10_000


def _agreement_repo(make_repo: Callable[..., RepoWriter]) -> RepoWriter:
    w = make_repo()
    w.flag("half_percent", percentage=0.5)
    w.flag("five", percentage=5)
    w.flag("third", percentage=33.33)
    w.flag("canaried", percentage=50,
           targeting={"users": ["user-7", "user-70", "vip"], "regions": ["us-west-2"]})
    w.flag("color", variants={"red": "#f00", "green": "#0f0", "blue": "#00f"},
           default_variant="red", rollout_variant="green",
           percentage={"red": 33.33, "green": 33.33, "blue": 33.34},
           targeting={"rules": [
               {"attribute": "plan", "in": ["pro", "team"], "variant": "blue"},
               {"attribute": "email", "ends_with": "@example.com", "variant": "green"},
               {"attribute": "email", "starts_with": "ops", "variant": "red"},
               {"attribute": "country", "not_in": ["FR", "DE"], "variant": "red"},
               {"attribute": "tier", "equals": 3, "variant": "blue"},
           ]})
    w.flag("limit", variants={"low": 10, "mid": 100, "high": 1000}, default_variant="low",
           rollout_variant="high", percentage={"low": 25, "mid": 25, "high": 50})
    w.flag("ratio", variants={"lo": 0.25, "hi": 0.75}, default_variant="lo",
           rollout_variant="hi", percentage=10)
    w.flag("layout", variants={"a": {"cols": 2}, "b": {"cols": 3}}, default_variant="a",
           rollout_variant="b", percentage=50)
    w.flag("child", percentage=100, requires=["canaried"])
    w.flag("grandchild", percentage=33.33, requires=["child", "five"])
    w.flag("wants_blue", percentage=100,
           requires=[{"flag": "color", "variant": "blue"}])
    w.flag("per_account", percentage=50, bucket_by="account")
    w.flag("switched_off", enabled=False, percentage=100, targeting={"users": ["vip"]})
    w.flag("needs_switched_off", percentage=100, requires=["switched_off"])
    w.flag("always_on", default_variant="on")
    w.flag("everyone", percentage=100)  # constant, but not the default variant
    w.flag("rolled", risk="high", targeting={"regions": ["eu-north-1"]})
    w.plan("rolled")
    w.state("rolled", 10)
    w.flag("rolled_child", percentage=100, requires=["rolled"])
    # an automatic rollback: nobody gets the flag, canaries included, nor its dependents
    w.flag("rolled_back", risk="high",
           targeting={"users": ["vip", "user-7"], "regions": ["us-west-2", "eu-west-1"]})
    w.plan("rolled_back")
    w.state("rolled_back", 0, phase="rolled_back", step=0)
    w.flag("needs_rolled_back", percentage=100, requires=["rolled_back"])
    # a pause is not a rollback: percentage and canaries stay
    w.flag("paused", risk="high", targeting={"users": ["vip"], "regions": ["ap-south-1"]})
    w.plan("paused")
    w.state("paused", 25, phase="paused", step=3)
    return w


def _contexts(n: int) -> list[tuple[str | None, dict[str, Any]]]:
    rng = random.Random(20261127)
    out: list[tuple[str | None, dict[str, Any]]] = []
    for i in range(n):
        key = None if i % 97 == 0 else rng.choice([f"user-{i}", str(uuid.UUID(int=rng.getrandbits(128))),
                                                   f"ü-{i}", f"long-{'x' * 130}-{i}"])
        attrs: dict[str, Any] = {}
        if rng.random() < 0.8:
            attrs["region"] = rng.choice(["us-west-2", "eu-west-1", "eu-north-1", "ap-south-1"])
        if rng.random() < 0.5:
            attrs["plan"] = rng.choice(["free", "pro", "team", "enterprise"])
        if rng.random() < 0.3:
            attrs["email"] = rng.choice([f"u{i}@example.com", f"ops{i}@corp.io", f"x{i}@y.org"])
        if rng.random() < 0.3:
            attrs["country"] = rng.choice(["FR", "DE", "US"])
        if rng.random() < 0.2:
            attrs["tier"] = rng.choice([1, 3, 3.0, "3"])
        if rng.random() < 0.9:
            attrs["account"] = rng.choice([f"acct-{rng.randrange(500)}", rng.randrange(500)])
        out.append((key, attrs))
    out[:3] = [("vip", {}), ("user-7", {"region": "us-west-2"}), ("user-70", {"plan": "pro"})]
    return out


@pytest.fixture
def exported(make_repo: Callable[..., RepoWriter], tmp_path: Path) -> tuple[Path, Path]:
    w = _agreement_repo(make_repo)
    native, flagd = tmp_path / "flags.resolved.json", tmp_path / "flags.flagd.json"
    out = run_cli(["build", "--out", str(native)], cwd=w.root)
    assert out.returncode == 0, out.stderr
    out = run_cli(["build", "--format", "flagd", "--flagd-schemas", str(flagd_schemas()),
                   "--out", str(flagd)], cwd=w.root)
    assert out.returncode == 0, out.stderr
    return native, flagd


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
        for tk, attrs in _contexts(N_CONTEXTS):
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

    w = _agreement_repo(make_repo).config("[tool.rollout]\nemergency_shutdown = true\n")
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
