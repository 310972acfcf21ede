"""The crash-test seam: named points of the commit protocol where a test can stop a run.

``ROLLOUT_TEST_SLEEP=point:seconds[,point:seconds...]`` makes a run print
``rollout: test hook: sleeping at <point>`` and sleep there, so that a test killing it on
that line kills it at that very moment (tests/runner/test_git_safety.py). Seconds default to
5. The variable is read once per process; unset, ``pause_at`` costs a dictionary lookup.
"""

from __future__ import annotations

import os
import time
from functools import cache

#: In the order a run passes them (see ``runner.reconcile.commit``): commits built, journal
#: not yet written; journal written, branch not yet moved; branch moved, no file written
#: yet; after each state file written.
POINTS = ("before-journal", "before-ref", "after-ref", "during-sync")

VARIABLE = "ROLLOUT_TEST_SLEEP"


@cache
def _pauses() -> dict[str, float]:
    pauses = {}
    for part in filter(None, os.environ.get(VARIABLE, "").split(",")):
        name, _, seconds = part.partition(":")
        pauses[name] = float(seconds or 5)
    return pauses


def pause_at(point: str) -> None:
    if point not in POINTS:
        raise ValueError(f"{point!r} is not one of the crash points {POINTS}")
    seconds = _pauses().get(point)
    if seconds is not None:
        print(f"rollout: test hook: sleeping at {point}", flush=True)
        time.sleep(seconds)
