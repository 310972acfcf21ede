"""Static checks of metric sources: what would make every evaluation an error."""

from __future__ import annotations

from runner.gates import source_problems
from runner.model import Gate

from .helpers import SAFE_GATES, metrics, plan


def test_a_correct_prometheus_plan_has_no_problems() -> None:
    from tests.prometheus_server import QUERIES

    p = plan("f", metrics("prometheus", url="http://127.0.0.1:9090", queries=QUERIES))
    assert source_problems(p) == ()


def test_prometheus_mistakes_are_named() -> None:
    queries = {"error_rate": 'rate(x{flag="{{ flg }}"}[{{ window }}])',
               "request_count": "{{ ''.__class__ }}"}
    gates = (*SAFE_GATES, Gate("custom_one", max=1, query="sum(y{p='{{ percentage }}'}"))
    problems = source_problems(plan("f", metrics("prometheus", url="http://x", queries=queries), gates))
    assert problems == (
        "metrics.queries.p95_latency_ms: no PromQL for gate p95_latency_ms",
        "metrics.queries.error_rate: template uses an undefined value: 'flg' is undefined",
        "metrics.queries.request_count: template rejected by the sandbox: access to attribute "
        "'__class__' of 'str' object is unsafe.",
    )  # the custom query renders fine; PromQL syntax is Prometheus's to judge


def test_file_and_command_and_missing_sources() -> None:
    assert source_problems(plan("f", metrics("file", path="m/{{ flag }}.json"))) == ()
    assert source_problems(plan("f", metrics("file", path="m/{{ flag }.json"))) == (
        "metrics.path: template syntax error (line 1): unexpected '}'",)
    assert source_problems(plan("f", metrics("command", command=["x", "{{ nope }}"]))) == (
        "metrics.command[1]: template uses an undefined value: 'nope' is undefined",)
    assert "no metric source" in source_problems(plan("f", None))[0]
    assert source_problems(plan("f", None, gates=())) == ()
    assert source_problems(plan("f", metrics("file", path="m.json", window="five"))) == (
        "metrics.window: 'five' is not a duration such as 300s, 5m, 1h30m or 2d",)
