"""runner.openfeature: the provider, exercised through ``openfeature.api`` as applications do."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from runner import FlagClient
from runner.evaluate.bucket import bucket, weight
from runner.openfeature import RolloutProvider
from tests.evaluate.conftest import RepoWriter


@pytest.fixture
def of_client(make_repo: Callable[..., RepoWriter]) -> Iterator[OpenFeatureClient]:
    w = make_repo()
    w.flag("feature", percentage=50, targeting={"users": ["vip"]})
    w.flag("theme", variants={"light": "light", "dark": "dark"}, default_variant="light",
           rollout_variant="dark", targeting={"rules": [
               {"attribute": "plan", "equals": "pro", "variant": "dark"}]})
    w.flag("max_items", variants={"few": 10, "many": 500}, default_variant="few",
           rollout_variant="many", percentage=100)
    w.flag("ratio", variants={"a": 0.5, "b": 1.5}, default_variant="a", rollout_variant="b")
    w.flag("layout", variants={"a": {"cols": 2}, "b": {"cols": 3}}, default_variant="b",
           rollout_variant="a")
    w.flag("gated", percentage=100, requires=["feature"])
    client = FlagClient.from_repo(w.root, env={"RATIO": "b"})
    domain = f"rollout-{uuid.uuid4()}"
    api.set_provider(RolloutProvider(client), domain=domain)
    yield api.get_client(domain)
    api.clear_providers()


def test_every_type_resolves_with_variant_and_reason(of_client: OpenFeatureClient) -> None:
    vip = EvaluationContext("vip")
    d = of_client.get_boolean_details("feature", False, vip)
    assert (d.value, d.variant, d.reason) == (True, "on", "TARGETING_MATCH")
    d = of_client.get_string_details("theme", "x", EvaluationContext("u", {"plan": "pro"}))
    assert (d.value, d.variant, d.reason) == ("dark", "dark", "TARGETING_MATCH")
    d = of_client.get_integer_details("max_items", 0, vip)
    assert (d.value, d.variant, d.reason) == (500, "many", "SPLIT")
    d = of_client.get_float_details("ratio", 0.0, vip)
    assert (d.value, d.variant, d.reason) == (1.5, "b", "STATIC")  # the RATIO override
    d = of_client.get_object_details("layout", {}, vip)
    # a flag without prerequisite, targeting or split: a constant, OpenFeature's STATIC
    assert (d.value, d.variant, d.reason) == ({"cols": 3}, "b", "STATIC")
    # the default variant of a flag with targeting, for a context it does not match: DEFAULT
    d = of_client.get_string_details("theme", "x", EvaluationContext("u", {"plan": "free"}))
    assert (d.value, d.variant, d.reason) == ("light", "light", "DEFAULT")
    assert of_client.get_integer_value("max_items", 0) == 500  # no context at all


def test_split_and_prerequisite_reasons(of_client: OpenFeatureClient) -> None:
    outside = next(f"u{i}" for i in range(1000) if bucket("feature", f"u{i}") >= weight(50))
    inside = next(f"u{i}" for i in range(1000) if bucket("feature", f"u{i}") < weight(50))
    d = of_client.get_boolean_details("feature", True, EvaluationContext(inside))
    assert (d.value, d.reason) == (True, Reason.SPLIT)
    d = of_client.get_boolean_details("gated", True, EvaluationContext(outside))
    # OpenFeature has no PREREQUISITE_FAILED (OFREP's client would serve the caller's
    # default): a standard reason, the runner's own in the metadata
    assert (d.value, d.variant, d.reason) == (False, "off", Reason.DEFAULT)
    assert d.flag_metadata.get("rollout_reason") == "PREREQUISITE_FAILED"
    assert "feature" in str(d.flag_metadata.get("details"))
    standard = {r.value for r in Reason}
    for key, ctx in [("feature", inside), ("feature", outside), ("gated", outside),
                     ("gated", inside), ("feature", "vip"), ("layout", "u")]:
        details = of_client.get_object_details(key, {}, EvaluationContext(ctx)) \
            if key == "layout" else of_client.get_boolean_details(key, True, EvaluationContext(ctx))
        assert details.reason in standard, (key, ctx, details.reason)


def test_errors_give_the_callers_default_with_a_code(of_client: OpenFeatureClient) -> None:
    d = of_client.get_boolean_details("ghost", True)
    assert (d.value, d.reason, d.error_code) == (True, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
    d = of_client.get_string_details("feature", "fallback", EvaluationContext("vip"))
    assert (d.value, d.error_code) == ("fallback", ErrorCode.TYPE_MISMATCH)
    d = of_client.get_boolean_details("max_items", False)
    assert (d.value, d.error_code) == (False, ErrorCode.TYPE_MISMATCH)
    d = of_client.get_integer_details("ratio", 3)
    assert (d.value, d.error_code) == (3, ErrorCode.TYPE_MISMATCH)


def test_provider_not_ready_while_no_artifact_exists(tmp_path: object) -> None:
    from pathlib import Path

    client = FlagClient.from_file(Path(str(tmp_path)) / "missing.json", wait=False)
    domain = f"rollout-{uuid.uuid4()}"
    api.set_provider(RolloutProvider(client), domain=domain)
    try:
        d = api.get_client(domain).get_boolean_details("feature", True)
        assert (d.value, d.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)
    finally:
        api.clear_providers()


def test_flagclient_accepts_an_openfeature_context_too(
        make_repo: Callable[..., RepoWriter]) -> None:
    w = make_repo().flag("feature", percentage=0, targeting={"regions": ["eu-west-1"]})
    client = FlagClient.from_repo(w.root, env={})
    ctx = EvaluationContext("u1", {"region": "eu-west-1"})
    assert client.is_enabled("feature", ctx) is True
    assert client.evaluate("feature", ctx).reason == "TARGETING_MATCH"
    r = client.evaluate("feature", object())  # type: ignore[arg-type]
    assert (r.value, r.reason, r.error_code) == (None, "ERROR", "GENERAL")
