"""Applications record the cohort: evaluation hooks, the prometheus_client request recorder
and OpenTelemetry evaluation events (real prometheus_client registries, the real OTel SDK)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from runner import FlagClient
from runner.evaluate import FlagSet
from runner.evaluate.resolution import Resolution
from runner.telemetry.prometheus import RequestRecorder
from tests.evaluate.conftest import RepoWriter

MakeRepo = Callable[..., RepoWriter]
Seen = list[tuple[str, Any, Resolution]]


def _client(make_repo: MakeRepo, **kwargs: Any) -> FlagClient:
    w = make_repo().flag("checkout", percentage=50, targeting={"users": ["vip"]})
    w.flag("color", variants={"red": "r", "blue": "b"}, default_variant="red",
           rollout_variant="blue", percentage=100)
    return FlagClient(FlagSet.from_repository(w.load()), env={}, **kwargs)


def _recorder(seen: Seen) -> Callable[[str, Mapping[str, Any] | None, Resolution], None]:
    def hook(key: str, context: Mapping[str, Any] | None, r: Resolution) -> None:
        seen.append((key, context, r))
    return hook


# --- FlagClient.on_evaluation -----------------------------------------------------------

def test_hooks_see_every_evaluation_with_what_the_caller_got(make_repo: MakeRepo) -> None:
    first: Seen = []
    second: Seen = []
    order: list[str] = []
    client = _client(make_repo, on_evaluation=[_recorder(first),
                                               lambda *a: order.append("a")])
    client.on_evaluation(_recorder(second))
    client.on_evaluation(lambda *a: order.append("b"))
    vip = {"targetingKey": "vip"}
    r = client.evaluate("checkout", vip)
    assert (r.value, r.variant, r.reason) == (True, "on", "TARGETING_MATCH")
    assert client.value("color", {"targetingKey": "u"}) == "b"
    assert client.is_enabled("checkout", vip) is True
    assert client.evaluate("ghost", None, 7).value == 7
    assert [(k, c, (x.value, x.variant, x.reason)) for k, c, x in first] == [
        ("checkout", vip, (True, "on", "TARGETING_MATCH")),
        ("color", {"targetingKey": "u"}, ("b", "blue", "SPLIT")),
        ("checkout", vip, (True, "on", "TARGETING_MATCH")),
        ("ghost", None, (7, None, "ERROR")),
    ]
    assert first[0][2] is r and first[3][2].error_code == "FLAG_NOT_FOUND"
    assert second == first and order == ["a", "b"] * 4
    client.all_flags(vip)  # every flag at once is no request's evaluation: no hook
    assert len(first) == 4


def test_every_constructor_takes_hooks(make_repo: MakeRepo, tmp_path: Any) -> None:
    from runner.evaluate import render_artifact, write_atomic

    w = make_repo().flag("checkout", percentage=100)
    path = tmp_path / "flags.json"
    write_atomic(path, render_artifact(w.load(), source_commit=None))
    seen: Seen = []
    for client in (FlagClient.from_file(path, env={}, on_evaluation=_recorder(seen)),
                   FlagClient.from_repo(w.root, env={}, reload_interval=None,
                                        on_evaluation=_recorder(seen))):
        assert client.is_enabled("checkout", {"targetingKey": "u"}) is True
    assert [(k, r.variant) for k, _, r in seen] == [("checkout", "on")] * 2


def test_a_raising_hook_never_breaks_an_evaluation_and_is_logged_once(
        make_repo: MakeRepo, caplog: pytest.LogCaptureFixture) -> None:
    seen: Seen = []

    def broken(key: str, context: Any, r: Resolution) -> None:
        raise RuntimeError("bug in the hook")

    client = _client(make_repo, on_evaluation=broken)
    client.on_evaluation(_recorder(seen))  # after the broken one: still called
    with caplog.at_level(logging.DEBUG, logger="runner.sdk"):
        for _ in range(3):
            assert client.evaluate("checkout", {"targetingKey": "vip"}).value is True
            assert client.is_enabled("checkout", {"targetingKey": "vip"}) is True
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "bug in the hook" in caplog.text and errors[0].exc_info
    assert client.hook_errors == 6 and len(seen) == 6


def test_removing_the_last_hook_restores_the_plain_methods(make_repo: MakeRepo) -> None:
    seen: Seen = []
    client = _client(make_repo)
    plain = FlagClient.evaluate
    assert client.evaluate.__func__ is plain  # type: ignore[attr-defined]
    hook = client.on_evaluation(_recorder(seen))
    assert client.evaluation_hooks == (hook,)
    client.evaluate("checkout", {"targetingKey": "vip"})
    assert client.remove_evaluation_hook(hook) is True
    assert client.remove_evaluation_hook(hook) is False
    client.evaluate("checkout", {"targetingKey": "vip"})
    client.is_enabled("checkout", {"targetingKey": "vip"})
    assert len(seen) == 1 and client.evaluation_hooks == ()
    assert client.evaluate.__func__ is plain  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="callable"):
        client.on_evaluation("not a function")  # type: ignore[arg-type]


def test_openfeature_evaluations_reach_the_client_hooks(make_repo: MakeRepo) -> None:
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    from runner.openfeature import RolloutProvider

    seen: Seen = []
    client = _client(make_repo, on_evaluation=_recorder(seen))
    api.set_provider(RolloutProvider(client), domain="telemetry-hooks")
    try:
        of = api.get_client("telemetry-hooks")
        assert of.get_boolean_value("checkout", False, EvaluationContext("vip")) is True
    finally:
        api.clear_providers()
    assert [(k, c["targetingKey"], r.variant) for k, c, r in seen] == [("checkout", "vip", "on")]


# --- runner.telemetry.prometheus ----------------------------------------------------------

def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    v = registry.get_sample_value(name, labels)
    return 0.0 if v is None else v


def test_requests_are_counted_under_the_variant_each_was_served(make_repo: MakeRepo) -> None:
    registry = CollectorRegistry()
    recorder = RequestRecorder(registry)
    client = _client(make_repo)
    served = {"on": 0, "off": 0}
    for i in range(400):
        ctx = {"targetingKey": f"user-{i}"}
        with recorder.request(client, "checkout", ctx) as r:
            served[r.variant or ""] += 1
            assert r.value is (r.variant == "on") and r.reason == "SPLIT"
    assert served["on"] > 100 and served["off"] > 100  # a 50 % split
    for variant, n in served.items():
        labels = {"flag": "checkout", "variant": variant, "reason": "SPLIT"}
        assert _value(registry, "rollout_requests_total", **labels) == n
        assert _value(registry, "rollout_request_errors_total", **labels) == 0
        assert _value(registry, "rollout_request_duration_seconds_count", **labels) == n
    with recorder.request(client, "checkout", {"targetingKey": "vip"}) as r:
        assert r.reason == "TARGETING_MATCH"
    assert _value(registry, "rollout_requests_total", flag="checkout", variant="on",
                  reason="TARGETING_MATCH") == 1


def test_the_first_request_of_a_flag_creates_every_cohort_at_zero(make_repo: MakeRepo) -> None:
    registry = CollectorRegistry()
    recorder = RequestRecorder(registry)
    client = _client(make_repo)
    assert client.flag_variants("color") == ("blue", "red") and client.flag_variants("x") is None
    with recorder.request(client, "color", {"targetingKey": "u"}) as r:  # at 100 %: blue
        assert r.variant == "blue"
    red = {"flag": "color", "variant": "red", "reason": "SPLIT"}
    # control's series exist before anyone is served it: Prometheus sees them grow from 0
    assert registry.get_sample_value("rollout_requests_total", red) == 0
    assert registry.get_sample_value("rollout_request_errors_total", red) == 0
    assert registry.get_sample_value("rollout_request_duration_seconds_count", red) == 0
    assert _value(registry, "rollout_requests_total", **{**red, "variant": "blue"}) == 1
    with recorder.request(client, "ghost", {"targetingKey": "u"}):  # unknown: nothing declared
        pass
    assert registry.get_sample_value("rollout_requests_total",
                                     {"flag": "unknown", "variant": "", "reason": "ERROR"}) == 1
    recorder.declare("later", ["on", "off"], reasons=["SPLIT", "TARGETING_MATCH"])
    assert registry.get_sample_value("rollout_requests_total", {
        "flag": "later", "variant": "off", "reason": "TARGETING_MATCH"}) == 0


def test_each_user_is_assigned_once_until_the_flag_changes(make_repo: MakeRepo,
                                                           tmp_path: Any) -> None:
    from runner.evaluate import render_artifact, write_atomic

    w = make_repo().flag("checkout", percentage=50)
    path = tmp_path / "flags.json"
    write_atomic(path, render_artifact(w.load(), source_commit="v1"))
    client = FlagClient.from_file(path, env={}, reload_interval=3600)
    registry = CollectorRegistry()
    recorder = RequestRecorder(registry, max_users=21)
    users = [f"user-{i}" for i in range(20)]
    served = {}
    for _round in range(3):  # three requests a user
        for user in users:
            with recorder.request(client, "checkout", {"targetingKey": user}) as r:
                served[user] = r.variant

    def count(name: str, variant: str) -> float:
        return _value(registry, name, flag="checkout", variant=variant, reason="SPLIT")

    on = sum(v == "on" for v in served.values())
    assert 0 < on < 20
    assigned = (count("rollout_assignments_total", "on"),
                count("rollout_assignments_total", "off"))
    assert assigned == (on, 20 - on)
    assert count("rollout_requests_total", "on") == 3 * on
    # the next step: every user is assigned anew, under the variant the new split gives
    write_atomic(path, render_artifact(make_repo("v2").flag("checkout", percentage=100).load(),
                                       source_commit="v2"))
    assert client.reload() is True
    for user in users[:2] * 2:
        with recorder.request(client, "checkout", {"targetingKey": user}):
            pass
    assert count("rollout_assignments_total", "on") == on + 2
    # past max_users keys it forgets them all, and counts from there
    for user in [*users[2:], "new-1", "new-2", users[0]]:
        with recorder.request(client, "checkout", {"targetingKey": user}):
            pass
    assert count("rollout_assignments_total", "on") == on + 2 + 18 + 2 + 1
    with recorder.request(client, "checkout", None):  # no targeting key: no user to count
        pass
    assert count("rollout_assignments_total", "on") == on + 23


def test_an_exception_or_fail_counts_an_error_and_the_exception_goes_on(
        make_repo: MakeRepo) -> None:
    registry = CollectorRegistry()
    recorder = RequestRecorder(registry)
    client = _client(make_repo)
    vip = {"flag": "checkout", "variant": "on", "reason": "TARGETING_MATCH"}
    with pytest.raises(ZeroDivisionError), \
            recorder.request(client, "checkout", {"targetingKey": "vip"}):
        _ = 1 / 0
    with recorder.request(client, "checkout", {"targetingKey": "vip"}) as r:
        r.fail()  # a 503 answered without raising
    with recorder.request(client, "checkout", {"targetingKey": "vip"}):
        pass
    assert _value(registry, "rollout_requests_total", **vip) == 3
    assert _value(registry, "rollout_request_errors_total", **vip) == 2
    # a failed evaluation served the caller's default: no variant, no cohort
    with recorder.request(client, "ghost", {"targetingKey": "vip"}, False) as r:
        assert r.value is False
    assert _value(registry, "rollout_requests_total", flag="unknown", variant="",
                  reason="ERROR") == 1


def test_latency_histogram_has_the_half_second_bound(make_repo: MakeRepo) -> None:
    registry = CollectorRegistry()
    recorder = RequestRecorder(registry)
    client = _client(make_repo)
    recorder.watch(client)  # middleware calling observe: the flags it knows
    for seconds in (0.02, 0.3, 0.49, 0.51, 2.0):
        recorder.observe("checkout", "on", "SPLIT", seconds)
    recorder.observe("checkout", "on", "SPLIT", 0.1, error=True)
    labels = {"flag": "checkout", "variant": "on", "reason": "SPLIT"}
    bucket = "rollout_request_duration_seconds_bucket"
    assert _value(registry, bucket, **labels, le="0.5") == 4  # 0.02 0.3 0.49 0.1
    assert _value(registry, bucket, **labels, le="+Inf") == 6
    assert _value(registry, "rollout_request_errors_total", **labels) == 1
    text = generate_latest(registry).decode()
    assert 'rollout_requests_total{flag="checkout",reason="SPLIT",variant="on"} 6.0' in text
    assert "# TYPE rollout_request_duration_seconds histogram" in text


def test_count_evaluations_is_an_evaluation_hook(make_repo: MakeRepo) -> None:
    registry = CollectorRegistry()
    recorder = RequestRecorder(registry, buckets=(0.1, 0.5, 1.0))
    client = _client(make_repo)
    recorder.count_evaluations(client)
    client.is_enabled("checkout", {"targetingKey": "vip"})
    client.value("color", {"targetingKey": "u"})
    assert _value(registry, "rollout_evaluations_total", flag="checkout", variant="on",
                  reason="TARGETING_MATCH") == 1
    assert _value(registry, "rollout_evaluations_total", flag="color", variant="blue",
                  reason="SPLIT") == 1


def test_keys_variants_and_reasons_no_artifact_knows_are_one_unknown_series(
        make_repo: MakeRepo) -> None:
    import random
    import string

    registry = CollectorRegistry()
    recorder = RequestRecorder(registry)
    client = _client(make_repo)
    recorder.count_evaluations(client)
    rng = random.Random(17)
    keys = {"".join(rng.choices(string.printable, k=rng.randint(1, 40))) for _ in range(10_000)}
    keys -= {"checkout", "color"}
    for key in keys:  # a typo'd key, or one taken from user input
        with recorder.request(client, key, {"targetingKey": key}):
            pass
        client.is_enabled(key)
        recorder.observe(key, key, key, 0.01)
    with recorder.request(client, "checkout", {"targetingKey": "vip"}):
        pass
    recorder.observe("checkout", "on", "SPLIT", 0.01)
    recorder.observe("color", "green", "SPLIT", 0.01)  # no such variant
    recorder.observe("color", "red", "MADE_UP", 0.01)  # no such reason
    series = {(s.labels["flag"], s.labels["variant"], s.labels["reason"])
              for metric in registry.collect() if metric.name == "rollout_requests"
              for s in metric.samples if s.name == "rollout_requests_total"}
    assert series == {("unknown", "", "ERROR"), ("unknown", "unknown", "unknown"),
                      ("checkout", "on", "SPLIT"), ("checkout", "off", "SPLIT"),
                      ("checkout", "on", "TARGETING_MATCH"),
                      ("color", "unknown", "SPLIT"), ("color", "red", "unknown")}
    assert _value(registry, "rollout_requests_total", flag="unknown", variant="",
                  reason="ERROR") == len(keys)
    assert _value(registry, "rollout_evaluations_total", flag="unknown", variant="",
                  reason="ERROR") == 2 * len(keys)  # request() evaluates too
    # bounded, whatever the keys were (a declared variant has a series per latency bound in
    # the histogram and in rollout_users_slow_total)
    assert len(generate_latest(registry)) < 30_000


# --- runner.telemetry.otel ----------------------------------------------------------------

def _log_pipeline() -> tuple[Any, Any]:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    try:
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as Exporter
    except ImportError:  # older SDKs name it so
        from opentelemetry.sdk._logs.export import InMemoryLogExporter as Exporter

    exporter = Exporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return provider, exporter


def _events(exporter: Any) -> list[tuple[str | None, dict[str, Any]]]:
    return [(d.log_record.event_name, dict(d.log_record.attributes or {}))
            for d in exporter.get_finished_logs()]


def test_otel_events_follow_the_feature_flag_conventions(make_repo: MakeRepo) -> None:
    from runner.telemetry.otel import EvaluationEvents

    provider, exporter = _log_pipeline()
    client = _client(make_repo)
    EvaluationEvents(client, logger_provider=provider)
    client.evaluate("checkout", {"targetingKey": "vip"})
    client.value("color", {"targetingKey": "u"})
    client.evaluate("ghost", {"targetingKey": "u"}, "fallback")
    events = _events(exporter)
    assert [name for name, _ in events] == ["feature_flag.evaluation"] * 3
    digest = client.digest
    assert events[0][1] == {
        "feature_flag.key": "checkout", "feature_flag.provider.name": "rollout-runner",
        "feature_flag.result.variant": "on", "feature_flag.result.reason": "targeting_match",
        "feature_flag.context.id": "vip", "feature_flag.version": digest}
    assert events[1][1]["feature_flag.result.variant"] == "blue"
    assert events[1][1]["feature_flag.result.reason"] == "split"
    assert "feature_flag.result.value" not in events[1][1]  # the variant names it
    ghost = events[2][1]
    assert ghost["error.type"] == "flag_not_found" and ghost["feature_flag.result.reason"] == "error"
    assert ghost["feature_flag.result.value"] == "fallback"  # no variant: the value
    assert "feature_flag.result.variant" not in ghost and "ghost" in ghost[
        "feature_flag.error.message"]


def test_otel_options_value_context_id_and_span_events(make_repo: MakeRepo) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from runner.telemetry.otel import EvaluationEvents

    provider, exporter = _log_pipeline()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    client = _client(make_repo)
    client.on_evaluation(EvaluationEvents(logger_provider=provider, include_value=True,
                                          context_id=False, span_events=True))
    with tracer_provider.get_tracer("test").start_as_current_span("GET /checkout") as span:
        client.is_enabled("checkout", {"targetingKey": "vip"})
        trace_id = span.get_span_context().trace_id
    (name, attrs), = _events(exporter)
    assert attrs["feature_flag.result.value"] is True and "feature_flag.context.id" not in attrs
    assert "feature_flag.version" not in attrs  # no client given: no digest
    record = exporter.get_finished_logs()[0].log_record
    assert record.trace_id == trace_id  # the event is in the request's trace
    (finished,) = spans.get_finished_spans()
    assert [(e.name, dict(e.attributes or {})) for e in finished.events] == [(name, attrs)]


def test_otel_events_for_openfeature_evaluations(make_repo: MakeRepo) -> None:
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    from runner.openfeature import RolloutProvider
    from runner.telemetry.otel import EvaluationEvents

    provider, exporter = _log_pipeline()
    client = _client(make_repo)
    EvaluationEvents(client, logger_provider=provider)
    api.set_provider(RolloutProvider(client), domain="telemetry-otel")
    try:
        of = api.get_client("telemetry-otel")
        assert of.get_string_value("color", "red", EvaluationContext("u")) == "b"
    finally:
        api.clear_providers()
    ((_, attrs),) = _events(exporter)
    assert (attrs["feature_flag.key"], attrs["feature_flag.result.variant"],
            attrs["feature_flag.context.id"]) == ("color", "blue", "u")


def test_users_with_errors_and_slow_users_are_each_counted_once_until_the_flag_changes(
        make_repo: MakeRepo, tmp_path: Any) -> None:
    """What a comparison of users reads: users seen, users who saw an error, users whose
    slowest request exceeded each bucket bound — each user once a step."""
    from runner.evaluate import render_artifact, write_atomic

    w = make_repo().flag("checkout", percentage=100)
    path = tmp_path / "flags.json"
    write_atomic(path, render_artifact(w.load(), source_commit="v1"))
    client = FlagClient.from_file(path, env={}, reload_interval=3600)
    registry = CollectorRegistry()
    recorder = RequestRecorder(registry, buckets=(0.1, 0.5, 1.0, float("inf")))
    split = {"flag": "checkout", "variant": "on", "reason": "SPLIT"}

    def users(name: str, **extra: str) -> float:
        return _value(registry, name, **split, **extra)

    with recorder.request(client, "checkout", {"targetingKey": "a"}):
        pass
    # the first request declared every series at zero, every bound included
    assert users("rollout_users_with_errors_total") == 0
    assert [users("rollout_users_slow_total", slower_than=b) for b in ("0.1", "0.5", "1.0")] == [0] * 3
    assert registry.get_sample_value("rollout_users_slow_total",
                                     {**split, "slower_than": "+Inf"}) is None
    for _ in range(3):  # a user failing three times is one user with errors
        with recorder.request(client, "checkout", {"targetingKey": "a"}) as r:
            r.fail()
    with pytest.raises(RuntimeError), recorder.request(client, "checkout", {"targetingKey": "b"}):
        raise RuntimeError("boom")
    with recorder.request(client, "checkout", None) as r:  # no user: a request, no user
        r.fail()
    assert users("rollout_assignments_total") == 2
    assert users("rollout_users_with_errors_total") == 2
    assert users("rollout_request_errors_total") == 5
    # middleware timing requests itself: 0.3 s exceeds 0.1; then 0.7 s exceeds 0.5 too
    recorder.observe("checkout", "on", "SPLIT", 0.3, user="c")
    recorder.observe("checkout", "on", "SPLIT", 0.3, user="c")
    recorder.observe("checkout", "on", "SPLIT", 0.7, user="c")
    recorder.observe("checkout", "on", "SPLIT", 0.05, user="d")
    recorder.observe("checkout", "on", "SPLIT", 2.0, user="e", error=True)
    assert users("rollout_assignments_total") == 5
    assert [users("rollout_users_slow_total", slower_than=b) for b in ("0.1", "0.5", "1.0")] == [
        2, 2, 1]
    assert users("rollout_users_with_errors_total") == 3
    # the flag changes (the next step): every user counts anew
    write_atomic(path, render_artifact(make_repo("v2").flag("checkout", percentage=100,
                                                           targeting={"users": ["x"]}).load(),
                                       source_commit="v2"))
    assert client.reload() is True
    recorder.observe("checkout", "on", "SPLIT", 0.7, user="c", error=True)
    assert users("rollout_assignments_total") == 6
    assert users("rollout_users_with_errors_total") == 4
    assert [users("rollout_users_slow_total", slower_than=b) for b in ("0.1", "0.5", "1.0")] == [
        3, 3, 1]
