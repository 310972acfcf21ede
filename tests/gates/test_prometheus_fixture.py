"""The Prometheus fixture itself: backfilled data is queryable at its fixed timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.prometheus_server import QUERIES, Series, openmetrics, traffic

START = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)


def render(query: str, flag: str, window: str = "5m") -> str:
    return query.replace("{{ flag }}", flag).replace("{{ window }}", window)


def test_traffic_series_give_the_scenarios_numbers(prometheus) -> None:
    server = prometheus(traffic("checkout", start=START, end=START + timedelta(minutes=30),
                                requests_per_minute=600, error_percent=2.0, p95_ms=180))
    at = START + timedelta(minutes=20)
    error_rate = server.query(render(QUERIES["error_rate"], "checkout"), at)["result"]
    assert abs(float(error_rate[0]["value"][1]) - 2.0) < 1e-6
    count = float(server.query(render(QUERIES["request_count"], "checkout"), at)["result"][0]["value"][1])
    assert 2900 < count < 3100  # 600/min over 5m, with Prometheus's extrapolation
    p95 = server.query(render(QUERIES["p95_latency_ms"], "checkout"), at)["result"]
    assert float(p95[0]["value"][1]) == 180
    # other flags and other times have no data
    assert server.query(render(QUERIES["error_rate"], "other"), at)["result"] == []
    assert server.query(render(QUERIES["error_rate"], "checkout"), START + timedelta(hours=2))["result"] == []


def test_arbitrary_series_and_stop(prometheus) -> None:
    samples = [(START, 3), (START + timedelta(minutes=1), 7)]
    server = prometheus([Series("queue_depth", {"flag": 'we"ird'}, samples)])
    at = START + timedelta(minutes=2)
    assert server.query('queue_depth{flag="we\\"ird"}', at)["result"][0]["value"][1] == "7"
    assert server.running
    server.stop()
    assert not server.running


def test_openmetrics_groups_a_metrics_samples() -> None:
    text = openmetrics([Series("b", {}, [(2, 1)]), Series("a", {"x": "1"}, [(5, 2), (1, 3)]),
                        Series("b", {"y": "2"}, [(1, 4)])])
    assert text.splitlines() == ['a{x="1"} 3.0 1.000', 'a{x="1"} 2.0 5.000', "b 1.0 2.000",
                                 'b{y="2"} 4.0 1.000', "# EOF"]


def test_missing_binaries_fail_loudly(tmp_path, monkeypatch) -> None:
    import pytest

    from tests.prometheus_server import PrometheusUnavailable, running_prometheus

    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without prometheus/promtool
    with pytest.raises(PrometheusUnavailable, match="apt-get install prometheus"), \
            running_prometheus(traffic("f", start=START, end=START, requests_per_minute=1), tmp_path / "w"):
        pass
