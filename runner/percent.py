"""Percentages as text: ``25``, ``2.5``, ``0.01``, with ``%``, and what stands for none.

A side module: it imports none of the layers. The share of users a rollout serves is written
the same way in commit messages, reasons, state-file problems, history, incidents and the
dashboards, through these functions.
"""

from __future__ import annotations

#: What people read where a percentage is unknown (history, the status dashboard, plans).
MISSING = "—"


def pct(p: float) -> str:
    """The number, without the sign: ``25``, ``2.5``, ``0.01`` (as commit messages write it)."""
    return f"{p:g}"


def percent(p: float | None, missing: str = MISSING) -> str:
    """``25%``, ``2.5%``; ``missing`` for None."""
    return missing if p is None else f"{p:g}%"
