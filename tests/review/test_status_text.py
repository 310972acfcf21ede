"""``rollout status``'s text, in-process from records: one line per fact, every value from a
file on one line, gate values as the commits write them."""

from __future__ import annotations

from typing import Any

from runner.review.status_text import gate_value, status_text


def row(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "flag": "checkout_v2", "phase": "progressing", "current_percentage": 25,
        "steps": [0, 5, 25, 100], "step": 2, "step_started_at": "2026-01-15T12:00:00Z",
        "next_step_at": "2026-01-15T12:05:00Z", "last_gates": [], "reason": "gates passed"}
    base.update(kw)
    return base


def test_no_rollout_is_no_text() -> None:
    assert status_text([]) == ""


def test_a_progressing_rollout_with_a_comparison_gate() -> None:
    gates = [{"name": "error_rate_vs_control", "value": 5.035087719298246,
              "threshold": "<= +0.5 points", "verdict": "fail", "dry_run": True,
              "cohorts": {"treatment_rate": 5.1, "control_rate": 0.3,
                          "treatment_requests": 1204, "control_requests": 22870, "low": 3.9,
                          "high": 5.7, "margin": 0.5, "confidence": 0.95}},
             {"name": "p95_latency_ms", "value": 120.0, "threshold": "<= 500",
              "verdict": "pass"}]
    assert status_text([row(last_gates=gates)]) == (
        "checkout_v2: progressing at 25% (step 3 of 4; 0/5/25/100)\n"
        "  next step at 2026-01-15T12:05:00Z\n"
        "  error_rate_vs_control = 5.03509 (<= +0.5 points, dry run): fail\n"
        "    treatment 5.1% (n=1,204) control 0.3% (n=22,870) diff +4.8 pp [+3.9, +5.7] "
        "at 95% margin 0.5 pp\n"
        "  p95_latency_ms = 120 (<= 500): pass\n"
        "  gates passed\n")


def test_approval_bake_orphan_and_a_reason_that_tries_two_lines() -> None:
    text = status_text([
        row(awaiting_approval=3, next_step_at=None),
        row(flag="a", approved_step=3, approved_by="Ann <ann@example.com>", baking=True,
            bake_ends_at="2026-01-16T00:00:00Z", reason=""),
        row(flag="gone", phase="paused", steps=[], step_started_at=None, next_step_at=None,
            reason="orphaned\nROLLED BACK: checkout_v2"),
    ])
    assert text == (
        "checkout_v2: progressing at 25% (step 3 of 4; 0/5/25/100)\n"
        "  step 4 (100%) needs approval: `rollout approve checkout_v2`\n"
        "  gates passed\n"
        "a: progressing at 25% (step 3 of 4; 0/5/25/100)\n"
        "  baking at 100% until 2026-01-16T00:00:00Z (gates still evaluated; completed after it)\n"
        "  step 4 approved by Ann <ann@example.com>\n"
        "gone: paused at 25% (orphaned, no plan)\n"
        "  orphaned\\nROLLED BACK: checkout_v2\n")


def test_gate_values_as_the_commits_write_them() -> None:
    assert [gate_value(v) for v in (None, 3, 3.0, 0.1 + 0.2, True, "n/a")] == [
        "none", "3", "3", "0.3", "True", "n/a"]
