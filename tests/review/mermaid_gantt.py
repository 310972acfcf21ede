"""What Mermaid's gantt parser makes of a chart: the tasks it keeps, with their dates.

A port of the rules of Mermaid's gantt lexer (``gantt.jison``, unchanged from v9 to v11,
which GitHub renders with) that decide which lines are tasks, applied as jison applies them:
the first rule that matches at a position wins, not the longest. Two of its comment rules,
``%%*[^\\n]*`` and ``[^}]%%*[^\\n]*``, swallow a whole line that starts with ``%`` or whose
second character is ``%``: a task named ``5%`` is silently dropped from the chart.
Mermaid itself (a browser library) cannot run in these tests; this keeps its task rules.
"""

from __future__ import annotations

import re
from datetime import datetime

# (name, pattern) in the lexer's order; only the rules a rendered plan chart can reach
_RULES: list[tuple[str, re.Pattern[str]]] = [(name, re.compile(p, re.I)) for name, p in [
    ("comment", r"%%(?!\{)[^\n]*"),
    ("comment", r"[^}]%%*[^\n]*"),
    ("comment", r"%%*[^\n]*[\n]*"),
    ("newline", r"[\n]+"),
    ("space", r"\s+"),
    ("comment", r"%[^\n]*"),
    ("gantt", r"gantt\b"),
    ("dateFormat", r"dateFormat\s[^#\n;]+"),
    ("axisFormat", r"axisFormat\s[^#\n;]+"),
    ("todayMarker", r"todayMarker\s[^\n;]+"),
    ("title", r"title\s[^\n]+"),
    ("section", r"section\s[^\n]+"),
    ("taskTxt", r"[^:\n]+"),
    ("taskData", r":[^#\n;]+"),
]]

#: The tags a task's data may start with (Mermaid's ganttDb.parseTags).
_TAGS = ("active", "done", "crit", "milestone")
_FORMATS = {"YYYY-MM-DD HH:mm:ss": "%Y-%m-%d %H:%M:%S", "YYYY-MM-DD": "%Y-%m-%d"}


def gantt_tasks(chart: str) -> list[dict[str, object]]:
    """The tasks Mermaid draws: section, name, start and end (or milestone)."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(chart):
        for name, rule in _RULES:
            m = rule.match(chart, pos)
            if m and m.end() > pos:
                tokens.append((name, m.group(0)))
                pos = m.end()
                break
        else:
            raise AssertionError(f"no gantt rule matches at {chart[pos:pos + 30]!r}")
    assert tokens and tokens[0][0] in ("gantt", "space"), "a gantt chart starts with gantt"
    date_format = "YYYY-MM-DD"
    section = ""
    tasks: list[dict[str, object]] = []
    meaningful = [(n, v) for n, v in tokens if n not in ("space", "newline", "comment")]
    for i, (name, value) in enumerate(meaningful):
        if name == "dateFormat":
            date_format = value.split(None, 1)[1].strip()
        elif name == "section":
            section = value.split(None, 1)[1].strip()
        elif name == "taskTxt":
            assert i + 1 < len(meaningful) and meaningful[i + 1][0] == "taskData", \
                f"task {value!r} has no data"
            data = [d.strip() for d in meaningful[i + 1][1][1:].split(",")]
            tags = []
            while data and data[0] in _TAGS:
                tags.append(data.pop(0))
            milestone = "milestone" in tags
            fmt = _FORMATS[date_format]
            start = datetime.strptime(data[-2], fmt)
            end = start if milestone or re.fullmatch(r"\d+[dhms]", data[-1]) else \
                datetime.strptime(data[-1], fmt)
            tasks.append({"section": section, "name": value.strip(), "start": start,
                          "end": end, "milestone": milestone, "tags": tags,
                          "id": data[0] if len(data) == 3 else None})
    return tasks
