"""scripts/check-mermaid: the commands it runs succeed and every chart it would render is
there, drawn without the reader's clock and without a schedule for a rollout that is not
moving.

The renderer (mmdc, node, chromium) is not installed on every machine: the script's
``--no-render`` mode runs the same commands on the dashboard's example repository and
extracts the blocks; where the renderer is installed, the test renders them too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT
from tests.review.mermaid_gantt import gantt_tasks

SCRIPT = PROJECT / "scripts" / "check-mermaid"
MMDC = PROJECT / "tools" / "mermaid" / "node_modules" / ".bin" / "mmdc"
CHROMIUM = Path("/usr/bin/chromium")


def _sections(markdown: str) -> dict[str, str]:
    """A plan comment's rollout sections: flag -> its text."""
    parts = re.split(r"^#### .*?`([^`]+)`.*$", markdown, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_check_mermaid_runs_every_command_and_finds_every_chart(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(SCRIPT), "--no-render", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # the incident report is drawn too (the script once passed it a --now it refuses)
    assert "no `rollout incident` command" not in done.stdout
    charts = {p.stem: p.read_text() for p in out.glob("*.mmd")}
    assert {name.split("-")[0] for name in charts} == {"status", "plan", "incident"}
    gantts = {name: c for name, c in charts.items() if c.startswith("gantt")}
    assert {name.split("-")[0] for name in gantts} == {"status", "plan", "incident"}
    for name, chart in gantts.items():
        # no red line at the reader's clock: these charts are of other times
        assert "\n    todayMarker off\n" in chart, name
        assert gantt_tasks(chart), name  # Mermaid keeps tasks of each

    plan = _sections((out / "plan.md").read_text())
    # the dashboard repository's rolled back and paused rollouts: what moves them, no
    # "from the merge" schedule of steps that will not happen
    assert "```mermaid" not in plan["aatc_system_enabled"]
    assert "Earliest" not in plan["aatc_system_enabled"]
    assert ("No timeline: the rollout is rolled back, and nothing moves until `rollout retry`"
            in plan["aatc_system_enabled"])
    assert "```mermaid" not in plan["phase_4_deployment"]
    assert ("No timeline: the rollout is paused, and nothing moves until `rollout resume`"
            in plan["phase_4_deployment"])
    # a rollout that starts still gets its earliest timeline
    assert "earliest timeline UTC" in plan["checkout_v2"]

    if MMDC.exists() and CHROMIUM.exists():  # the renderer is installed: render them all
        done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "png")],
                              capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
