"""What ``rollout validate`` prints: its problems and warnings, one line each, and the
one-line summary that ends its text output."""

from __future__ import annotations

from collections.abc import Sequence

from runner.load.problems import Problem
from runner.safetext import safe_line


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def problem_line(p: Problem) -> str:
    return safe_line(p, limit=2000)


def warning_line(p: Problem) -> str:
    """``file:line:col: warning: field: message`` (as compilers write a warning)."""
    where = f"{p.path}:{p.line}:{p.column}: warning: "
    return safe_line(where + (f"{p.field}: {p.message}" if p.field else p.message), limit=2000)


def summary(problems: Sequence[Problem], warnings: Sequence[Problem], flags: int, plans: int,
            files: int | None = None, ascii_only: bool = False) -> str:
    """``✓ 9 flags, 2 plans valid`` or ``✗ 3 problems in 9 flags, 2 plans``; warnings counted
    apart. ``files``: the number of files asked about, when only some were."""
    what = (_count(files, "file") if files is not None
            else f"{_count(flags, 'flag')}, {_count(plans, 'plan')}")
    ok, bad = ("OK:", "FAILED:") if ascii_only else ("✓", "✗")
    line = (f"{bad} {_count(len(problems), 'problem')} in {what}" if problems
            else f"{ok} {what} valid")
    if warnings:
        line += f", {_count(len(warnings), 'warning')}"
    return line
