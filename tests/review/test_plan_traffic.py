"""A measured traffic (``traffic.query``) in ``rollout plan``: read from the plan's own
Prometheus source (a real Prometheus, backfilled with promtool) at ``--now``; when Prometheus
is unreachable or answers nothing, one line and the declared traffic, never a failed plan."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.review.plan_evidence import plan_evidence
from tests.conftest import run_cli
from tests.prometheus_server import (
    metrics_block,
    prometheus,  # noqa: F401 (the fixture)
    traffic,
)
from tests.review.helpers import write

pytestmark = pytest.mark.cli_inprocess

START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
NOW = START + timedelta(hours=2)
FLAG = """\
key: checkout_v2
description: New checkout flow
owner: payments-team
risk: high
default_variant: off
"""
QUERY = 'sum(rate(http_requests_total{flag="{{ flag }}"}[1h])) * 3600'
STEP_QUERIES = {
    "step_requests": 'sum(increase(http_requests_total{flag="{{ flag }}"}[{{ step_window }}]))',
    "step_errors": 'sum(increase(http_requests_total{flag="{{ flag }}",code=~"5.."}'
                   '[{{ step_window }}])) or vector(0)',
}


def _plan(repo: Path, metrics: dict[str, Any], traffic_block: str) -> None:
    metrics = {**metrics, "queries": {**metrics.get("queries", {}), **STEP_QUERIES}}
    write(repo, "flags/checkout_v2.yaml", FLAG)
    write(repo, "rollouts/checkout_v2.yaml",
          "flag: checkout_v2\nstrategy: safe\ngates:\n  error_rate: {max: 1.0, confidence: 0.95}\n"
          f"metrics: {json.dumps(metrics)}\ntraffic:\n{traffic_block}")


def _plan_json(repo: Path, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    out = run_cli(["plan", "--format", "json", "--now", NOW.isoformat()], cwd=repo, env=env)
    md = run_cli(["plan", "--now", NOW.isoformat()], cwd=repo, env=env)
    assert out.returncode == 0 and md.returncode == 0, out.stderr + md.stderr
    [entry] = json.loads(out.stdout)["rollouts"]["started"]
    return entry["evidence"], md.stdout


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_measured_traffic_is_read_from_prometheus_at_now(
        example_repo: Path, prometheus: Any) -> None:  # noqa: F811 (the fixture)
    server = prometheus(traffic("checkout_v2", start=START, end=NOW, requests_per_minute=100))
    _plan(example_repo, metrics_block(server.url), f"  query: '{QUERY}'\n  requests_per_hour: 50\n")
    evidence, md = _plan_json(example_repo)
    assert evidence["measured"] is True and "traffic_note" not in evidence
    assert evidence["requests_per_hour"] == pytest.approx(6000, rel=0.01)
    step = evidence["steps"][0]["absolute"][0]
    assert step["pass"]["seconds"] == pytest.approx(
        step["pass"]["requests"] / evidence["requests_per_hour"] * 3600, abs=1)
    assert "Evidence at 6,000 requests an hour (measured by traffic.query)" in md
    # before the traffic began Prometheus has nothing: the declared 50 an hour, said in a line
    early = run_cli(["plan", "--format", "json", "--now", (START - timedelta(hours=3)).isoformat()],
                    cwd=example_repo)
    [entry] = json.loads(early.stdout)["rollouts"]["started"]
    assert early.returncode == 0 and entry["evidence"]["requests_per_hour"] == 50
    assert entry["evidence"]["traffic_note"].startswith("traffic.query not read: no answer (")
    assert entry["evidence"]["traffic_note"].endswith("using the declared 50 requests an hour")


def test_unreachable_prometheus_falls_back_to_the_declared_traffic(example_repo: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    _plan(example_repo, metrics_block(url), f"  query: '{QUERY}'\n  requests_per_hour: 3000\n")
    evidence, md = _plan_json(example_repo)
    assert evidence["requests_per_hour"] == 3000 and "measured" not in evidence
    assert evidence["traffic_note"] == (
        f"traffic.query not read: prometheus {url}: unreachable: Connection refused; using the "
        "declared 3,000 requests an hour")
    lines = [line for line in md.splitlines() if line.startswith("Traffic: ")]
    assert len(lines) == 1 and "unreachable" in lines[0]
    assert "Evidence at 3,000 requests an hour:" in md


def test_without_a_declared_traffic_no_evidence_section_and_secrets_stay_hidden(
        example_repo: Path, prometheus: Any) -> None:  # noqa: F811 (the fixture)
    server = prometheus([])  # a Prometheus without the flag's series: an empty answer
    metrics = {**metrics_block(server.url), "bearer_token_env": "PROM_TOKEN"}
    _plan(example_repo, metrics, f"  query: '{QUERY}'\n")
    evidence, md = _plan_json(example_repo, env={"PROM_TOKEN": "s3cret-token"})
    assert set(evidence) == {"traffic_note"}
    assert evidence["traffic_note"].startswith("traffic.query not read: no answer (empty result")
    assert evidence["traffic_note"].endswith(
        "no evidence section without a declared traffic.requests_per_hour")
    assert "| Step | Serving | Gate |" not in md and "Traffic: traffic.query not read" in md
    # url_env holding a URL with a password, unreachable: named, never shown
    metrics = {k: v for k, v in metrics_block(f"http://u:pa55word@127.0.0.1:{_closed_port()}"
                                              ).items() if k != "url"}
    _plan(example_repo, {**metrics, "url_env": "PROM_URL"}, f"  query: '{QUERY}'\n")
    env = {"PROM_URL": f"http://u:pa55word@127.0.0.1:{_closed_port()}"}
    evidence, md = _plan_json(example_repo, env=env)
    assert "pa55word" not in json.dumps(evidence) and "pa55word" not in md
    assert "unreachable" in evidence["traffic_note"]
    # unset: said in the line, the plan still exits 0
    evidence, _ = _plan_json(example_repo, env={})
    assert "environment variable PROM_URL (metrics.url_env) is not set" in evidence["traffic_note"]


def test_plan_evidence_takes_the_measured_rate_before_the_declared_one(example_repo: Path) -> None:
    from runner.load import load_repository

    _plan(example_repo, metrics_block("http://127.0.0.1:9"),
          f"  query: '{QUERY}'\n  requests_per_hour: 3000\n")
    plan = load_repository(example_repo).plans["checkout_v2"]
    assert plan_evidence(plan)["requests_per_hour"] == 3000
    measured = plan_evidence(plan, 12000.0)
    assert measured["requests_per_hour"] == 12000 and measured["measured"] is True
