"""The Markdown status dashboard that advance runs write into their job summary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runner.review.status_markdown import status_markdown
from tests.conftest import run_cli

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


ROWS = [
    {"flag": "phase_4_deployment", "phase": "progressing", "current_percentage": 25, "step": 3,
     "steps": [0, 5, 10, 25, 50, 75, 100], "step_started_at": "2026-11-27T05:00:00Z",
     "next_step_at": "2026-11-27T05:05:00Z",
     "last_gates": [{"name": "error_rate", "verdict": "pass", "value": 0.42, "threshold": "<= 1"},
                    {"name": "request_count", "verdict": "inconclusive", "value": None,
                     "threshold": ">= 100"}],
     "reason": "waiting | for <b>@ops</b>"},
    {"flag": "checkout_v2", "phase": "rolled_back", "current_percentage": 0, "step": 0,
     "steps": 4, "step_started_at": None, "next_step_at": None,
     "last_gates": [{"name": "error_rate", "verdict": "fail", "value": 3.2, "threshold": "<= 1"}],
     "reason": "error_rate 3.2 > 1"},
]


def test_table_has_one_row_per_rollout_with_gates_and_next_step() -> None:
    md = status_markdown(ROWS)
    lines = md.splitlines()
    rows = [line for line in lines if line.startswith("| `")]
    assert len(rows) == 2
    first = rows[0]
    assert "🚀 **progressing**" in first and " 25% |" in first and "| step 4 of 7 |" in first
    assert "2026-11-27 05:05:00" in first
    assert "`error_rate = 0.42 (<= 1)` ✅ pass" in first
    assert "`request_count = none (>= 100)` ❔ inconclusive" in first
    # the reason is user text: its | does not add a cell and its HTML and mention are inert
    assert len(re.findall(r"(?<!\\)\|", first)) == 8
    assert "<b>" not in first and "@ops" not in first
    assert "`error_rate = 3.2 (<= 1)` ❌ fail" in rows[1]
    assert "⛔ **~~ROLLED BACK~~**" in rows[1] and "0%, rolled back" in rows[1]


def test_mermaid_chart_plots_every_rollout() -> None:
    md = status_markdown(ROWS)
    chart = md.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert chart.startswith("xychart-beta")
    assert 'x-axis ["phase_4_deployment - progressing", "checkout_v2 - rolled back"]' in chart
    assert "bar [25.0, 0.0]" in chart


def test_no_rollouts() -> None:
    md = status_markdown([])
    assert "No rollouts" in md and "mermaid" not in md


def test_status_command_renders_markdown_of_a_real_rollout(example_repo: Path) -> None:
    (example_repo / "logs").mkdir()
    (example_repo / "logs/metrics.json").write_text(json.dumps(
        {"error_rate": 0.2, "p95_latency_ms": 120, "request_count": 500}))
    for minute in (0, 5):
        out = run_cli(["advance", "--now", f"2026-01-15T12:0{minute}:00Z"], cwd=example_repo)
        assert out.returncode == 0, out.stderr
    out = run_cli(["status", "--format", "markdown", "--now", "2026-01-15T12:06:00Z"],
                  cwd=example_repo)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("| `phase_4"))
    assert "🚀 **progressing**" in row and " 5% |" in row and "| step 2 of 7 |" in row
    assert "2026-01-15 12:10:00" in row  # the next step: 5 minutes after this one started
    assert "`error_rate = 0.2 (<= 1)` ✅ pass" in row
    assert 'x-axis ["phase_4_deployment - progressing"]' in out.stdout
