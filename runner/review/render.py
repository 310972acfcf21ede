"""Markdown through Jinja2 templates in ``runner/templates``: sandboxed, strict, no autoescape.

Autoescape is HTML's; this output is Markdown, so user-controlled strings (descriptions,
owners, reasons, values) go through ``md`` (``runner.safemarkup.markdown``) or ``code``
filters that neutralise what Markdown would otherwise interpret (tables, links, HTML,
mentions) in a pull-request comment, an issue or a job summary.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from runner.percent import percent
from runner.safemarkup import markdown
from runner.timefmt import shown_time

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

MAX_VALUE = 120


def md(value: Any) -> str:
    """Text safe inside a Markdown paragraph or table cell: no mention, link or HTML
    (:func:`runner.safemarkup.markdown`, the one escaper every Markdown surface shares)."""
    return markdown(value)


def _shorten(s: str) -> str:
    return s if len(s) <= MAX_VALUE else s[: MAX_VALUE - 1] + "…"


def code(value: Any) -> str:
    """A value as inline code, safe in a table cell: JSON for non-strings, ``—`` for None."""
    if value is None:
        return "—"
    s = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    s = _shorten(" ".join(s.split())) or " "
    fence = "`" * (max((len(m) for m in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    # GFM splits table cells on | even inside code spans unless it is escaped
    return f"{fence}{pad}{s.replace('|', chr(92) + '|')}{pad}{fence}"


MAX_LABEL = 60


def mermaid_label(value: Any) -> str:
    """Text for a Mermaid label: no characters that Mermaid's gantt/xychart syntax reads
    (``%%`` starts a comment or a directive: one ``%`` at a time), one line, bounded."""
    s = " ".join(re.sub(r"[^A-Za-z0-9_ .%+\-/→]", " ", str(value)).split())
    s = re.sub(r"%+", "%", s)
    if len(s) > MAX_LABEL:
        s = s[: MAX_LABEL - 1].rstrip() + "…"
    return s or "-"


def pct(value: Any) -> str:
    return percent(None if value is None else float(value))


@cache
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(md=md, code=code, mermaid_label=mermaid_label, pct=pct,
                       mermaid_time=shown_time)
    return env


def render(template: str, **context: Any) -> str:
    text = environment().get_template(template).render(**context)
    # blank-line runs from template control blocks: one is enough in Markdown
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
