"""`rollout advance` against a real Prometheus server (Debian's package) holding backfilled data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import git
from tests.prometheus_server import QUERIES, traffic
from tests.runner.helpers import rollout, state, subjects, trailer, write_flag

START = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
HEALTHY, FAILING, SILENT = "healthy_feature", "failing_feature", "silent_feature"


def _now(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _plan(flag: str, url: str) -> str:
    metrics = {"type": "prometheus", "url": url, "queries": dict(QUERIES), "window": "5m",
               "timeout": "2s"}
    return (f"flag: {flag}\nstrategy: custom\nsteps: [0, 25, 50, 100]\nwait: 5m\n"
            "gates:\n  error_rate: 1.0\n  p95_latency_ms: 500\n  request_count: 100\n"
            f"error_limit: 2\nmetrics: {json.dumps(metrics)}\n")


def test_prometheus_healthy_advances_errors_roll_back_no_series_holds_outage_pauses(
        example_repo: Path, prometheus) -> None:
    end = START + timedelta(minutes=60)
    series = [*traffic(HEALTHY, start=START, end=end, requests_per_minute=600,
                       error_percent=0.2, p95_ms=180),
              *traffic(FAILING, start=START, end=end, requests_per_minute=600,
                       error_percent=lambda t: 0.3 if t < START + timedelta(minutes=16) else 4.0,
                       p95_ms=200)]
    server = prometheus(series)
    for flag in (HEALTHY, FAILING, SILENT):
        write_flag(example_repo, flag)
        (example_repo / "rollouts" / f"{flag}.yaml").write_text(_plan(flag, server.url))
    (example_repo / "rollouts/phase_4_deployment.yaml").unlink()
    git(example_repo, "add", "-A", "flags", "rollouts")
    git(example_repo, "commit", "-q", "-m", "three prometheus-gated plans")

    out = rollout(example_repo, "advance", "--now", _now(10))
    assert out.returncode == 0, out.stderr
    out = rollout(example_repo, "advance", "--now", _now(15))
    assert out.returncode == 0, out.stderr
    for flag in (HEALTHY, FAILING):
        assert state(example_repo, f"rollouts/{flag}.state.json")["current_percentage"] == 25
    silent = state(example_repo, f"rollouts/{SILENT}.state.json")
    assert (silent["phase"], silent["current_percentage"]) == ("progressing", 0)
    assert "holding at 0%: inconclusive" in out.stdout  # no series: never an advance

    out = rollout(example_repo, "advance", "--now", _now(18))  # the spike, mid-wait
    assert out.returncode == 4, out.stdout + out.stderr
    assert f"ROLLED BACK: {FAILING}" in out.stdout
    failing = state(example_repo, f"rollouts/{FAILING}.state.json")
    assert (failing["phase"], failing["current_percentage"]) == ("rolled_back", 0)
    assert f"rollout({FAILING}): rollback 25% → 0%" in subjects(example_repo)
    healthy = state(example_repo, f"rollouts/{HEALTHY}.state.json")
    assert (healthy["phase"], healthy["current_percentage"]) == ("progressing", 25)

    server.stop()
    out = rollout(example_repo, "advance", "--now", _now(19), HEALTHY)
    assert out.returncode == 0, out.stderr
    assert subjects(example_repo)[0] == f"rollout({HEALTHY}): observe at 25%"
    assert state(example_repo, f"rollouts/{HEALTHY}.state.json")["consecutive_errors"] == 1
    out = rollout(example_repo, "advance", "--now", _now(20), HEALTHY)
    # paused because its metrics could not be read: loud, and red (docs/runner.md)
    assert out.returncode == 1, out.stderr
    assert f"warning: {HEALTHY}: paused because its metrics could not be read" in out.stderr
    assert "unreachable" in out.stderr
    healthy = state(example_repo, f"rollouts/{HEALTHY}.state.json")
    assert (healthy["phase"], healthy["current_percentage"]) == ("paused", 25)
    assert "failed 2 times in a row" in healthy["reason"]
    assert trailer(example_repo, "Rollout-Action") == "pause"
    assert "error_rate=none error" in trailer(example_repo, "Rollout-Gate")


def test_prometheus_comparison_rolls_back_at_five_percent_while_the_global_gate_passes(
        example_repo: Path, prometheus) -> None:
    from tests.prometheus_server import COHORT_QUERIES, cohort_traffic

    flag = "guarded_feature"
    end = START + timedelta(minutes=60)
    # 5 % of 6000 requests a minute fail 5 % of the time, the rest 0.3 %: 0.54 % overall
    series = [*traffic(flag, start=START, end=end, requests_per_minute=6000, error_percent=0.54,
                       p95_ms=180),
              *cohort_traffic(flag, start=START, end=end, variants={"on": 300, "off": 5700},
                              error_percent={"on": 5.0, "off": 0.3})]
    server = prometheus(series)
    write_flag(example_repo, flag)
    metrics = {"type": "prometheus", "url": server.url, "window": "5m", "timeout": "5s",
               "queries": {**QUERIES, **COHORT_QUERIES}}
    (example_repo / "rollouts" / f"{flag}.yaml").write_text(
        f"flag: {flag}\nstrategy: custom\nsteps: [0, 5, 100]\nwait: 5m\n"
        "gates:\n  error_rate: 1.0\n  request_count: 100\n"
        "compare:\n  error_rate: {max_increase: 0.5}\n"
        f"metrics: {json.dumps(metrics)}\n")
    (example_repo / "rollouts/phase_4_deployment.yaml").unlink()
    git(example_repo, "add", "-A", "flags", "rollouts")
    git(example_repo, "commit", "-q", "-m", "a comparison-gated plan")
    assert rollout(example_repo, "validate").returncode == 0

    assert rollout(example_repo, "advance", "--now", _now(10)).returncode == 0
    assert rollout(example_repo, "advance", "--now", _now(16)).returncode == 0
    assert state(example_repo, f"rollouts/{flag}.state.json")["current_percentage"] == 5
    out = rollout(example_repo, "advance", "--now", _now(17))  # 300 treatment requests: too few
    assert out.returncode == 0, out.stdout + out.stderr
    assert "holding at 5%: inconclusive" in out.stdout and "compare.error_rate" in out.stdout

    out = rollout(example_repo, "advance", "--now", _now(20))  # 4 minutes at 5 %: 1,200
    assert out.returncode == 4, out.stdout + out.stderr
    st = state(example_repo, f"rollouts/{flag}.state.json")
    assert (st["phase"], st["current_percentage"]) == ("rolled_back", 0)
    gates = {g["name"]: g for g in st["last_gates"]}
    assert gates["error_rate"]["verdict"] == "pass"
    assert gates["compare.error_rate"]["verdict"] == "fail"
    assert 1150 <= gates["compare.error_rate"]["cohorts"]["treatment_requests"] <= 1250
    assert trailer(example_repo, "Rollout-Compare").startswith("error_rate treatment 5% (n=")
