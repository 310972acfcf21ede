"""``rollout status --format markdown``: every rollout in a table and a progress chart,
for the job summary of each advance run. Input: the rows ``rollout status`` computes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.review.render import render

MARKER = "<!-- rollout-status -->"

PHASE_ICONS = {"pending": "⏳", "progressing": "🚀", "paused": "⏸️", "completed": "✅",
               "rolled_back": "⏪"}


def _bar(pct: float, width: int = 10) -> str:
    filled = round(max(0.0, min(100.0, pct)) / 100 * width)
    return "█" * filled + "░" * (width - filled)


def _gate(g: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": str(g.get("name", "?")), "verdict": str(g.get("verdict", "?")),
            "value": g.get("value"), "threshold": str(g.get("threshold") or ""),
            "dry_run": bool(g.get("dry_run", False))}


def status_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown for rows with flag, phase, current_percentage, step, steps (a list of
    percentages or their number), step_started_at, next_step_at, last_gates, reason."""
    view = []
    for row in rows:
        pct = float(row.get("current_percentage") or 0)
        steps = row.get("steps")
        count = len(steps) if isinstance(steps, Sequence) and not isinstance(steps, str) else steps
        view.append({
            "flag": str(row["flag"]),
            "phase": str(row.get("phase", "")),
            "icon": PHASE_ICONS.get(str(row.get("phase")), "•"),
            "pct": pct,
            "bar": _bar(pct),
            "step": row.get("step"),
            "steps": count,
            "step_started_at": row.get("step_started_at"),
            "next_step_at": row.get("next_step_at"),
            "gates": [_gate(g) for g in row.get("last_gates") or ()],
            "reason": str(row.get("reason") or ""),
        })
    return render("status.md.j2", rows=view, marker=MARKER)
