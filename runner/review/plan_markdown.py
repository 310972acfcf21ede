"""The Markdown of ``rollout plan``, kept within what a pull-request comment can hold.

GitHub refuses a comment body over 65,536 characters (and a job summary over 1 MiB), and
cutting the text at a byte count breaks a table or a Mermaid chart half-way. So when the
whole report is too long, it is rendered again with fewer rollouts drawn in full (steps
and chart) and, if that is not enough, fewer rows per list, each list ending with how many
were left out; ``--format json`` always has everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.review.render import render

MARKER = "<!-- rollout-plan -->"

#: GitHub's limit on a comment body is 65,536 characters; leave room for the workflow's
#: own additions (the marker line) and count generously.
PR_COMMENT_LIMIT = 65_000


def plan_markdown(report: Mapping[str, Any], limit: int = PR_COMMENT_LIMIT) -> str:
    def at(rows: int, details: int) -> str:
        return render("plan.md.j2", plan=report, marker=MARKER,
                      limit={"rows": rows, "details": details})

    everything = 1 + max(len(report["risks"]), *(len(v) for v in report["flags"].values()),
                         *(len(v) for v in report["rollouts"].values()))
    text = at(everything, everything)
    if len(text) <= limit:
        return text
    # the most rollouts drawn in full that still fit (rows unlimited), else fewer rows too
    lo, hi = 0, everything
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(at(everything, mid)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    if len(text := at(everything, lo)) <= limit:
        return text
    lo, hi = 0, everything
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(at(mid, 0)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return at(lo, 0)
