"""``rollout demo`` end to end: the repository it leaves shows the rollback and the hold."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git, run_cli


def trailers(repo: Path, key: str) -> list[str]:
    out = git(repo, "log", f"--format=%(trailers:key={key},valueonly)%x1e")
    return [t.strip() for t in out.split("\x1e") if t.strip()][::-1]


def test_demo_runs_the_whole_story(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    out = run_cli(["demo", "--keep", str(keep)], cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    # the runner's transitions, in order, from the commits' own trailers
    assert trailers(keep, "Rollout-Action") == [
        "start", "advance", "advance", "advance", "rollback", "hold",  # new_checkout
        "start", "advance", "rollback"]  # new_pricing, stopped by its comparison gate
    subjects = git(keep, "log", "--reverse", "--format=%s").splitlines()
    rollback = git(keep, "rev-parse", "HEAD~6")  # then the revert, the hold, new_pricing's 4
    assert subjects[:2] == ["Set up Rollout Runner", "Add new_checkout with a safe rollout plan"]
    assert subjects[-7] == "rollout(new_checkout): rollback 25% → 0%"
    # a person reverted the automatic rollback, and the runner held instead of fighting it
    assert subjects[-6] == 'Revert "rollout(new_checkout): rollback 25% → 0%"'
    assert git(keep, "log", "-1", "--format=%an", "HEAD~5") == "Bob Oncall"
    assert subjects[-5] == f"rollout(new_checkout): hold at 25% after revert of {rollback[:7]}"
    assert trailers(keep, "Rollout-Reverted-Commit") == [rollback]
    state = json.loads((keep / "rollouts/new_checkout.state.json").read_text())
    assert (state["phase"], state["current_percentage"]) == ("paused", 25)
    # the failing gate is in the rollback's evidence
    gates = git(keep, "log", "-1", "--format=%(trailers:key=Rollout-Gate,valueonly)", rollback)
    assert "error_rate=4.2 fail (<= 1 at 95 %)" in gates
    # the transcript shows users' answers at each stage, the audit and the history
    text = out.stdout
    # the pull request's review: what `rollout plan` comments
    assert "## Rollout plan" in text and "▶️ Starts: `new_checkout` (safe" in text
    assert "| `new_checkout` | medium | added, with a rollout plan | — | 0% |" in text
    assert "qa-user-1=ON  (TARGETING_MATCH)" in text
    assert "after the automatic rollback [rolled_back at 0%]" in text
    assert "after the revert, held by the runner [paused at 25%]" in text
    # the last mile: a client polling the published folder over HTTP picks up each change
    assert "now serves the rollback (source commit " + rollback[:7] in text
    assert "qa-user-1=off user-1=off" in text.split("now serves the rollback")[1][:120]
    assert "now serves the revert, held at 25%" in text
    assert f"reverted by {git(keep, 'rev-parse', 'HEAD~5')[:7]}" in text
    # the gate that sees the flag: at 5 % the global error rate (0.55 %) passes its 1 % gate,
    # and the comparison of treatment with control rolls the feature back there
    assert subjects[-4:] == ["Add new_pricing with a guarded rollout plan",
                             "rollout(new_pricing): start at 0%", "rollout(new_pricing): 0% → 5%",
                             "rollout(new_pricing): rollback 5% → 0%"]
    guarded = json.loads((keep / "rollouts/new_pricing.state.json").read_text())
    assert (guarded["phase"], guarded["current_percentage"]) == ("rolled_back", 0)
    gates = git(keep, "log", "-1", "--format=%(trailers:key=Rollout-Gate,valueonly)").splitlines()
    assert "error_rate=0.55 pass (<= 1)" in gates
    assert any(g.startswith("compare.error_rate=") and " fail " in g for g in gates), gates
    assert any(g.startswith("compare.sample_ratio=") and " pass " in g for g in gates), gates
    compare = git(keep, "log", "-1", "--format=%(trailers:key=Rollout-Compare,valueonly)")
    assert compare.startswith("error_rate treatment 5.33% (n=600) control 0.298% (n=11,400)")
    assert compare.endswith(": fail")
    assert "== 5. A gate that sees the flag: treatment against control" in text
    assert "Rollout-Gate: error_rate=0.55 pass (<= 1)  <- the global gate passes" in text
    assert "new_pricing after the comparison's rollback [rolled_back at 0%]" in text
    # the repository it leaves is valid and clean
    assert run_cli(["validate"], cwd=keep).returncode == 0
    assert git(keep, "status", "--porcelain", "--", "flags", "rollouts") == ""


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    out = run_cli(["demo", "--keep", str(tmp_path / "busy")], cwd=tmp_path)
    assert out.returncode == 2 and "empty" in out.stderr


def test_demo_environments_promotes_from_staging_to_production(tmp_path: Path) -> None:
    """`rollout demo --environments`: staging walks to 100 %, production waits out the soak
    (nothing of it committed before), starts, waits for Alice's approval, then walks."""
    keep = tmp_path / "demo"
    out = run_cli(["demo", "--environments", "--keep", str(keep)], cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    subjects = git(keep, "log", "--reverse", "--format=%s").splitlines()
    staging = [s for s in subjects if "@staging" in s]
    production = [s for s in subjects if "@production" in s]
    assert staging[-1] == "rollout(new_checkout@staging): 75% → 100%"
    assert production[0] == "rollout(new_checkout@production): start at 0%"
    assert production[-1] == "rollout(new_checkout@production): 75% → 100%"
    # every staging commit comes before production's first
    assert subjects.index(staging[-1]) < subjects.index(production[0])
    assert "promote_after 1h" in out.stdout and "waiting for staging" in out.stdout
    assert "Alice Engineer" in trailers(keep, "Rollout-Approved-By")[0]
    for env in ("staging", "production"):
        state = json.loads((keep / f"rollouts/new_checkout.{env}.state.json").read_text())
        assert (state["phase"], state["current_percentage"], state["environment"]) == (
            "completed", 100, env)
