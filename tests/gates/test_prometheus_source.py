"""The prometheus source against a real Prometheus holding backfilled data."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta

from runner.gates import assess_all
from runner.model import Gate, Verdict
from tests.prometheus_server import QUERIES, traffic

from .helpers import by_name, metrics, request
from .http_stub import prometheus_stub

START = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
END = START + timedelta(minutes=40)
AT = START + timedelta(minutes=20)


def source(url: str, **kw: object):
    return metrics("prometheus", url=url, queries=QUERIES, window="5m", timeout=5.0, **kw)


def run(req, now=AT, env=None):
    return assess_all([req], root=".", now=now, env=env or {})[req.flag]


def spike(at: datetime):
    """0.1 % errors and 180 ms p95 before ``at``, then 5 % and 900 ms."""
    return (lambda t: 0.1 if t < at else 5.0), (lambda t: 180 if t < at else 900)


def test_healthy_traffic_passes_and_bad_traffic_fails_and_no_series_is_inconclusive(prometheus) -> None:
    errors, latency = spike(START + timedelta(minutes=25))
    server = prometheus(
        traffic("healthy", start=START, end=END, requests_per_minute=600, error_percent=0.2, p95_ms=180)
        + traffic("broken", start=START, end=END, requests_per_minute=600, error_percent=3.0, p95_ms=200)
        + traffic("spiky", start=START, end=END, requests_per_minute=600, error_percent=errors,
                  p95_ms=latency))
    s = source(server.url)
    out = assess_all([request(f, s) for f in ("healthy", "broken", "absent", "spiky")],
                       root=".", now=AT, env={})
    healthy = by_name(out["healthy"])
    assert {r.verdict for r in healthy.values()} == {Verdict.PASS}
    assert abs(healthy["error_rate"].value - 0.2) < 1e-9
    assert healthy["p95_latency_ms"].value == 180
    assert 2900 < healthy["request_count"].value < 3100

    broken = by_name(out["broken"])
    assert broken["error_rate"].verdict is Verdict.FAIL
    assert abs(broken["error_rate"].value - 3.0) < 1e-9
    assert broken["p95_latency_ms"].verdict is Verdict.PASS

    absent = out["absent"]
    assert {r.verdict for r in absent} == {Verdict.INCONCLUSIVE}
    assert "empty result" in absent[0].detail

    # the injected clock decides what is read: before the spike healthy, after it failing
    assert {r.verdict for r in out["spiky"]} == {Verdict.PASS}
    later = by_name(run(request("spiky", s), now=START + timedelta(minutes=35)))
    assert later["error_rate"].verdict is Verdict.FAIL
    assert later["p95_latency_ms"].verdict is Verdict.FAIL
    # after the data ends there is nothing: no data, never a pass
    assert {r.verdict for r in run(request("healthy", s), now=END + timedelta(hours=1))} \
        == {Verdict.INCONCLUSIVE}


def test_too_little_traffic_is_inconclusive_even_with_errors(prometheus) -> None:
    server = prometheus(traffic("quiet", start=START, end=END, requests_per_minute=10,
                                error_percent=50, p95_ms=2000))
    results = by_name(run(request("quiet", source(server.url))))
    assert {r.verdict for r in results.values()} == {Verdict.INCONCLUSIVE}
    assert results["request_count"].value < 100
    assert abs(results["error_rate"].value - 50) < 1e-9  # reported, not judged
    assert "too little traffic" in results["error_rate"].detail
    assert "would be fail" in results["error_rate"].detail


def test_server_stopped_is_an_error_for_every_gate(prometheus) -> None:
    server = prometheus(traffic("f", start=START, end=END, requests_per_minute=600))
    s = source(server.url)
    assert {r.verdict for r in run(request("f", s))} == {Verdict.PASS}
    server.stop()
    results = run(request("f", s))
    assert {r.verdict for r in results} == {Verdict.ERROR}
    assert "unreachable" in results[0].detail and server.url in results[0].detail


def test_answers_that_mean_nothing(prometheus) -> None:
    server = prometheus(traffic("f", start=START, end=END, requests_per_minute=600))
    gates = (
        Gate("ambiguous", max=1e9, query='http_requests_total{flag="{{ flag }}"}'),  # 2 series
        Gate("bad_promql", max=1, query="sum(rate(http_requests_total[5m]"),
        Gate("range", max=1, query='http_requests_total{flag="{{ flag }}",code="200"}[1m]'),
        Gate("not_a_number", max=1, query="0/0"),
        Gate("infinite", max=1, query="1/0"),
        Gate("at_percentage", max=30, query="vector({{ percentage }})"),
        Gate("undefined_var", max=1, query='up{service="{{ service }}"}'),
        Gate("escape", max=1, query="vector({{ ''.__class__.__mro__ }})"),
    )
    results = by_name(run(request("f", source(server.url), gates, step=3)))
    assert results["ambiguous"].verdict is Verdict.ERROR
    assert "ambiguous: 2 series" in results["ambiguous"].detail
    assert results["bad_promql"].verdict is Verdict.ERROR
    assert "bad_data" in results["bad_promql"].detail
    assert results["range"].verdict is Verdict.ERROR
    assert "matrix" in results["range"].detail
    assert results["not_a_number"].verdict is Verdict.INCONCLUSIVE
    assert results["infinite"].verdict is Verdict.INCONCLUSIVE
    assert results["at_percentage"].verdict is Verdict.PASS
    assert results["at_percentage"].value == 25  # step 3 of safe
    assert results["undefined_var"].verdict is Verdict.ERROR
    assert "'service' is undefined" in results["undefined_var"].detail
    assert results["escape"].verdict is Verdict.ERROR
    assert "sandbox" in results["escape"].detail


def test_built_in_gate_without_a_query_is_an_error(prometheus) -> None:
    server = prometheus([])
    s = metrics("prometheus", url=server.url, queries={"error_rate": "vector(0)"})
    results = by_name(run(request("f", s)))
    assert results["error_rate"].verdict is Verdict.PASS
    assert results["p95_latency_ms"].verdict is Verdict.ERROR
    assert "add it to metrics.queries" in results["p95_latency_ms"].detail


def test_bearer_token_is_read_from_the_named_variable_and_sent() -> None:
    with prometheus_stub() as stub:
        s = metrics("prometheus", url=stub.url, queries={"error_rate": 'q{flag="{{ flag }}"}'},
                    bearer_token_env="PROM_TOKEN")
        gates = (Gate("error_rate", max=1.0),)
        results = run(request("f", s, gates), env={"PROM_TOKEN": "s3cret"})
        assert results[0].verdict is Verdict.PASS
        path, headers, body = stub.seen[0]
        assert path == "/api/v1/query"
        assert headers["Authorization"] == "Bearer s3cret"
        form = urllib.parse.parse_qs(body)
        assert form["query"] == ['q{flag="f"}']
        assert float(form["time"][0]) == AT.timestamp()
        assert "s3cret" not in results[0].detail

        stub.seen.clear()
        missing = run(request("f", s, gates), env={})
        assert missing[0].verdict is Verdict.ERROR
        assert "PROM_TOKEN" in missing[0].detail and "not set" in missing[0].detail
        assert stub.seen == []  # nothing sent without the token


def test_url_env_reads_the_url_from_the_named_variable_and_never_shows_its_secrets() -> None:
    """``url_env``: the URL (a repository variable or secret in Actions) comes from the run's
    environment; unset is an error naming the variable, and nothing is sent."""
    gates = (Gate("error_rate", max=1.0),)
    with prometheus_stub() as stub:
        s = metrics("prometheus", url_env="PROM_URL", queries={"error_rate": 'q{flag="{{ flag }}"}'},
                    bearer_token_env="PROM_TOKEN")
        results = run(request("f", s, gates), env={"PROM_URL": stub.url + "/", "PROM_TOKEN": "tk"})
        assert results[0].verdict is Verdict.PASS, results[0].detail
        assert stub.seen[0][0] == "/api/v1/query"
        assert stub.seen[0][1]["Authorization"] == "Bearer tk"
        stub.seen.clear()
        missing = run(request("f", s, gates), env={"PROM_TOKEN": "tk"})
        assert missing[0].verdict is Verdict.ERROR
        assert "PROM_URL" in missing[0].detail and "not set" in missing[0].detail
        bad = run(request("f", s, gates), env={"PROM_URL": "ftp://x?key=hidden", "PROM_TOKEN": "tk"})
        assert bad[0].verdict is Verdict.ERROR and "hidden" not in bad[0].detail
        assert stub.seen == []
    # a query value of the URL from the environment is sent but never shown
    with prometheus_stub(status=401, answer={"status": "error"}) as stub:
        s = metrics("prometheus", url_env="PROM_URL", queries={"error_rate": "q"})
        results = run(request("f", s, gates), env={"PROM_URL": stub.url + "?key=hidden"})
        assert results[0].verdict is Verdict.ERROR and "HTTP 401" in results[0].detail
        assert "hidden" not in results[0].detail


def test_refused_token_and_redirects_are_errors() -> None:
    s = lambda url: metrics("prometheus", url=url, queries={"error_rate": "q"},  # noqa: E731
                            bearer_token_env="T")
    gates = (Gate("error_rate", max=1.0),)
    with prometheus_stub(status=401, answer={"status": "error"}) as stub:
        results = run(request("f", s(stub.url), gates), env={"T": "wrong"})
    assert results[0].verdict is Verdict.ERROR
    assert "HTTP 401" in results[0].detail and "token" in results[0].detail
    with prometheus_stub(status=302, answer={}) as stub:
        results = run(request("f", s(stub.url), gates), env={"T": "t"})
    assert results[0].verdict is Verdict.ERROR
    assert "redirect refused" in results[0].detail


def test_slow_server_times_out_as_an_error() -> None:
    with prometheus_stub(delay=3.0) as stub:
        s = metrics("prometheus", url=stub.url, queries={"error_rate": "q"}, timeout=0.5)
        results = run(request("f", s, (Gate("error_rate", max=1.0),)))
    assert results[0].verdict is Verdict.ERROR
    assert "no answer within the timeout" in results[0].detail


def test_non_json_answer_is_an_error() -> None:
    with prometheus_stub(answer="<html>hello</html>") as stub:
        s = metrics("prometheus", url=stub.url, queries={"error_rate": "q"})
        results = run(request("f", s, (Gate("error_rate", max=1.0),)))
    assert results[0].verdict is Verdict.ERROR
    assert "not a Prometheus query answer" in results[0].detail



def test_a_plan_written_in_yaml_evaluates_against_prometheus(prometheus, example_repo) -> None:
    """The fixture's metrics block is a valid plan source, end to end through the loader."""
    import json

    from runner.gates import GateRequest
    from runner.load import check_repository
    from tests.prometheus_server import metrics_block

    server = prometheus(traffic("phase_4_deployment", start=START, end=END, requests_per_minute=600,
                                error_percent=1.5, p95_ms=200))
    plan_file = example_repo / "rollouts/phase_4_deployment.yaml"
    plan_file.write_text(json.dumps({
        "flag": "phase_4_deployment", "strategy": "safe", "wait": "5m",
        "gates": {"error_rate": 1.0, "p95_latency_ms": 500, "request_count": 100},
        "metrics": metrics_block(server.url)}))
    checked = check_repository(example_repo)
    assert not checked.problems, checked.problems
    plan = checked.repository.plans["phase_4_deployment"]
    out = assess_all([GateRequest(plan.flag, plan, 2, 10.0)], root=example_repo, now=AT, env={})
    results = by_name(out[plan.flag])
    assert results["error_rate"].verdict is Verdict.FAIL
    assert abs(results["error_rate"].value - 1.5) < 1e-9
    assert results["p95_latency_ms"].verdict is Verdict.PASS
    assert results["request_count"].verdict is Verdict.PASS
