"""``rollout status --format openmetrics``: gauges per rollout that promtool accepts, that
the real Prometheus scrapes (OpenMetrics parser: strict about ``# EOF``, escaping and
families), and whose label values survive hostile text exactly."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from runner.review.status_metrics import CONTENT_TYPE, escape_label, status_openmetrics
from tests.conftest import run_cli
from tests.prometheus_server import scraping_prometheus
from tests.review import dashboard_repo

HOSTILE = 'we"ird\\name\nsecond line} {x="1"} # EOF'


@pytest.fixture(scope="module")
def repo(dashboard_root: Path) -> Path:
    return dashboard_root


@pytest.fixture(scope="module")
def exposition(repo: Path) -> str:
    out = run_cli(["status", "--format", "openmetrics", "--now", dashboard_repo.NOW], cwd=repo)
    assert out.returncode == 0, out.stderr
    return out.stdout


def hostile_exposition() -> str:
    gates = [{"name": HOSTILE, "verdict": "fail", "value": 3.5, "threshold": "<= 1"},
             {"name": "cmp", "verdict": "pass", "value": 0.1, "threshold": "<= +0.5",
              "cohorts": {"treatment_rate": 1.5, "control_rate": 1.4, "treatment_requests": 900,
                          "control_requests": 9000, "low": -0.2, "high": 0.3, "margin": 0.5,
                          "confidence": 0.95}}]
    rows = [{"flag": "hostile_flag", "plan": HOSTILE, "phase": "rolled_back",
             "current_percentage": 0, "step": 0, "steps": [0, 50, 100],
             "step_started_at": "2026-01-15T12:00:00Z", "next_step_at": None,
             "last_gates": gates, "reason": HOSTILE, "started_at": "2026-01-15T11:00:00Z",
             "plan_digest": "sha256:" + "ab" * 32, "plan_changed": False,
             "baking": False, "bake_ends_at": None, "awaiting_approval": True}]
    return status_openmetrics(rows, {})


def value(text: str, series: str) -> str:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return line.split(" ")[-1]
    raise AssertionError(f"no series {series} in\n{text}")


def promtool(text: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is needed (apt-get install prometheus; .ci/run installs it)"
    return subprocess.run([binary, "check", "metrics"], input=text, text=True,
                          capture_output=True, check=False)


def test_every_rollout_has_its_gauges(exposition: str) -> None:
    base = 'flag="checkout_v2",plan="checkout_v2"'
    assert value(exposition, f"rollout_percentage{{{base}}}") == "50"
    assert value(exposition, f"rollout_step{{{base}}}") == "5"
    assert value(exposition, f"rollout_steps{{{base}}}") == "7"
    assert value(exposition, f'rollout_last_gate_value{{{base},gate="error_rate"}}') == "0.2"
    assert value(exposition,
                 f'rollout_last_gate_verdict{{{base},gate="error_rate",verdict="pass"}}') == "1"
    assert value(exposition,
                 f'rollout_last_gate_verdict{{{base},gate="error_rate",verdict="fail"}}') == "0"
    assert value(exposition, f"rollout_last_evaluated_timestamp_seconds{{{base}}}") == str(
        1768479600)  # 2026-01-15T12:20:00Z
    assert value(exposition, f"rollout_failures{{{base}}}") == "0"
    # one 0/1 series per phase: exactly one is 1, and it is the right one
    for flag, phase in (("aatc_system_enabled", "rolled_back"), ("phase_4_deployment", "paused"),
                        ("checkout_v2", "progressing"), ("search_v3", "pending")):
        ones = [line for line in exposition.splitlines()
                if line.startswith(f'rollout_phase{{flag="{flag}"') and line.endswith(" 1")]
        assert len(ones) == 1 and f'phase="{phase}"' in ones[0], ones
    assert value(exposition, 'rollout_step{flag="search_v3",plan="search_v3"}') == "0"
    assert exposition.endswith("# EOF\n")
    for name in ("rollout_percentage", "rollout_phase", "rollout_last_gate_value"):
        assert f"# HELP {name} " in exposition and f"# TYPE {name} gauge" in exposition


def test_promtool_accepts_it(exposition: str) -> None:
    for text in (exposition, hostile_exposition()):
        done = promtool(text)
        assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_label_values_are_escaped_as_openmetrics_says() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    text = hostile_exposition()
    assert 'plan="we\\"ird\\\\name\\nsecond line} {x=\\"1\\"} # EOF"' in text
    assert text.count("# EOF") == 1 + text.count('# EOF"') and text.endswith("# EOF\n")
    assert "\n" not in value(text, 'rollout_awaiting_approval{flag="hostile_flag",plan='
                             '"we\\"ird\\\\name\\nsecond line} {x=\\"1\\"} # EOF"}')
    # the reason (free text) is no label at all
    assert "reason" not in text.replace("HELP", "")
    cohorts = [line for line in text.splitlines() if line.startswith("rollout_last_gate_cohort")]
    assert len(cohorts) == 4 and any('cohort="treatment"' in c and c.endswith(" 1.5")
                                     for c in cohorts)


def test_output_file_is_written_atomically_and_only_when_it_changes(repo: Path,
                                                                   tmp_path: Path) -> None:
    target = tmp_path / "textfile" / "rollouts.prom"
    target.parent.mkdir()
    args = ["status", "--format", "openmetrics", "--now", dashboard_repo.NOW,
            "--output", str(target)]
    out = run_cli(args, cwd=repo)
    assert out.returncode == 0 and out.stdout == "", out.stderr
    first = target.stat()
    assert target.read_text().endswith("# EOF\n")
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind
    assert run_cli(args, cwd=repo).returncode == 0
    assert target.stat().st_ino == first.st_ino  # the same bytes: not rewritten
    bad = run_cli([*args[:-1], str(tmp_path)], cwd=repo)  # a folder
    assert bad.returncode == 2 and "--output" in bad.stderr and "Traceback" not in bad.stderr


class _Handler(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        body = self.bodies.get(self.path)
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def metrics_server(exposition: str) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"bodies": {
        "/rollouts": exposition, "/hostile": hostile_exposition()}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _query(url: str, promql: str) -> list[dict[str, object]]:
    q = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_prometheus_scrapes_it(metrics_server: str, tmp_path: Path) -> None:
    targets = {"rollouts": f"{metrics_server}/rollouts", "hostile": f"{metrics_server}/hostile"}
    with scraping_prometheus(targets, tmp_path / "prometheus") as prom:
        # wait (bounded) for both scrapes; their health says whether the parser took them
        deadline = time.monotonic() + 60
        up: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            up = _query(prom.url, "up")
            if (len(up) == 2 and all(r["value"][1] == "1" for r in up)  # type: ignore[index]
                    and len(_query(prom.url, "rollout_percentage")) == 5):
                break
            time.sleep(0.2)
        with urllib.request.urlopen(f"{prom.url}/api/v1/targets", timeout=10) as resp:
            health = {t["labels"]["job"]: (t["health"], t["lastError"])
                      for t in json.load(resp)["data"]["activeTargets"]}
        assert health == {"rollouts": ("up", ""), "hostile": ("up", "")}, health
        rolled = _query(prom.url, 'rollout_phase{phase="rolled_back"} == 1')
        assert sorted(r["metric"]["flag"] for r in rolled) == [  # type: ignore[index]
            "aatc_system_enabled", "hostile_flag"]
        pct = _query(prom.url, 'rollout_percentage{job="rollouts",flag="checkout_v2"}')
        assert [r["value"][1] for r in pct] == ["50"]  # type: ignore[index]
        gate = _query(prom.url, 'rollout_last_gate_value{job="hostile",gate!="cmp"}')
        # the hostile text came back exactly, as a label value
        assert [r["metric"]["gate"] for r in gate] == [HOSTILE]  # type: ignore[index]
        assert [r["metric"]["plan"] for r in gate] == [HOSTILE]  # type: ignore[index]
