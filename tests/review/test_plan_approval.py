"""``rollout plan`` names approval steps and the bake of a plan, in its fields and comment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


NOW = "2026-11-27T05:00:00Z"


def test_a_plan_gaining_an_approval_step_and_a_bake_says_so(example_repo: Path) -> None:
    path = example_repo / "rollouts/phase_4_deployment.yaml"
    path.write_text(path.read_text().replace("wait: 5m", "wait: 5m\nbake: 48h\n"
                                             "approvers: [octocat]\nsteps: [0, 5, 10, 25, "
                                             "{percentage: 50, approval: true}, 75, 100]"))
    out = run_cli(["plan", "--format", "json", "--now", NOW], cwd=example_repo)
    assert out.returncode == 0, out.stderr
    (changed,) = json.loads(out.stdout)["rollouts"]["changed"]
    fields = {c["field"]: (c["before"], c["after"]) for c in changed["changes"]}
    assert fields == {"bake": (None, "2d"), "approvers": (None, "octocat"),
                      "steps[4].approval": (None, True)}
    steps = changed["timeline"]["steps"]
    assert [s["approval"] for s in steps] == [False] * 4 + [True, False, False]
    assert steps[-1]["bake"] is True and steps[-1]["wait"] == "2d"
    assert changed["timeline"]["total"] == "2d30m"  # six 5-minute waits, then the bake
    md = run_cli(["plan", "--now", NOW], cwd=example_repo).stdout
    assert "| 4 | 50% (approval) |" in md
    assert "| 6 | 100% | 2d bake |" in md
    assert "A step marked (approval) also waits for a person's `rollout approve`." in md
    assert "At 100 % the gates are watched for the bake before the rollout is completed." in md
