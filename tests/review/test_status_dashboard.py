"""The status dashboard (``rollout status --format markdown``) as people read it: every phase
distinct at a glance, every number labelled, and each active rollout's timeline (what
happened in its current run, from git, beside what is planned), its Mermaid text safe."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from runner.review.status_markdown import PHASES, phase_label, status_markdown
from tests.conftest import run_cli
from tests.review import dashboard_repo
from tests.review.mermaid_gantt import gantt_tasks

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


HOSTILE = dashboard_repo.HOSTILE


def row(flag: str, phase: str, pct: float = 0, step: int = 0, **extra: object) -> dict[str, object]:
    return {"flag": flag, "plan": flag, "phase": phase, "current_percentage": pct,
            "step": step, "steps": [0, 5, 25, 100],
            "step_started_at": None if phase == "pending" else "2026-01-15T12:00:00Z",
            "next_step_at": None, "last_gates": [], "reason": "", **extra}


def outside_code(md: str) -> str:
    """The Markdown that GitHub renders as Markdown: code spans and Mermaid blocks (whose
    text is shown or drawn, never interpreted as HTML or mentions) left out."""
    md = re.sub(r"```mermaid\n.*?```", "", md, flags=re.S)
    return re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", md)


def assert_inert(prose: str) -> None:
    """No HTML tag but ours, no mention, no link of the hostile text."""
    assert not re.search(r"(?<!\\)<(?!!-- rollout-status -->|br>)", prose)
    assert "@everyone" not in prose
    assert not re.search(r"(?<!\\)\]\(|(?<!\\)\[[^\]]*(?<!\\)\]\(", prose)


def mermaid_blocks(md: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)```", md, flags=re.S)


def table_row(md: str, flag: str) -> str:
    return next(line for line in md.splitlines() if line.startswith(f"| `{flag}`"))


# --- at a glance ------------------------------------------------------------------------


def test_every_phase_differs_in_icon_word_and_styling() -> None:
    icons = [v[0] for v in PHASES.values()]
    words = [v[1].lower() for v in PHASES.values()]
    styles = [v[2] for v in PHASES.values()]
    assert len(set(icons)) == len(set(words)) == len(set(styles)) == len(PHASES)


def test_rolled_back_pending_and_paused_at_the_same_share_look_different() -> None:
    md = status_markdown([row("a_pending", "pending"), row("b_rolled", "rolled_back"),
                          row("c_paused", "paused", 0, 1)])
    cells = {f: table_row(md, f).split(" | ")[1:3] for f in ("a_pending", "b_rolled", "c_paused")}
    phases = [c[0] for c in cells.values()]
    serving = [c[1] for c in cells.values()]
    assert len(set(phases)) == 3 and len(set(serving)) == 3
    assert cells["b_rolled"] == [phase_label("rolled_back"), "0%, rolled back"]
    assert cells["a_pending"] == [phase_label("pending"), "0%, not started"]
    assert cells["c_paused"][1].endswith("0%, paused")
    # the chart's axis says the phase too: two 0 % bars are told apart by their labels
    chart = mermaid_blocks(md)[0]
    assert '"a_pending - pending"' in chart and '"b_rolled - rolled back"' in chart
    # a rolled back and a paused rollout are called out above the table, a pending one not
    assert "> [!CAUTION]\n> " + phase_label("rolled_back") + ": `b_rolled`" in md
    assert "> [!WARNING]\n> " + phase_label("paused") + ": `c_paused`" in md
    assert "`a_pending` serves" not in md


def test_values_are_labelled() -> None:
    gates = [{"name": "error_rate", "verdict": "fail", "value": 3.2, "threshold": "<= 1"},
             {"name": "request_count", "verdict": "inconclusive", "value": None,
              "threshold": ">= 100", "dry_run": True}]
    md = status_markdown([row("checkout", "progressing", 25, 2, next_step_at="2026-01-15T12:05:00Z",
                              last_gates=gates)])
    header = next(line for line in md.splitlines() if line.startswith("| Flag |"))
    assert "Serving now (share of users)" in header and "Next step at (UTC)" in header
    assert "name = value (threshold) verdict" in header
    line = table_row(md, "checkout")
    assert "█" in line and " 25% |" in line and "| step 3 of 4 |" in line
    assert "| 2026-01-15 12:05:00 |" in line
    assert "`error_rate = 3.2 (<= 1)` ❌ fail" in line
    assert "`request_count = none (>= 100) dry run` ❔ inconclusive" in line
    assert "4 steps planned" in table_row(status_markdown([row("later", "pending")]), "later")


def test_comparison_evidence_and_bake_and_approval_are_shown_when_present() -> None:
    cohorts = {"treatment_rate": 1.4, "control_rate": 0.9, "treatment_requests": 5200,
               "control_requests": 98000, "low": -0.1, "high": 1.1, "margin": 0.5,
               "confidence": 0.95}
    gates = [{"name": "error_rate_vs_control", "verdict": "inconclusive", "value": 0.5,
              "threshold": "<= +0.5", "cohorts": cohorts}]
    md = status_markdown([row("cmp", "progressing", 100, 3, last_gates=gates, baking=True,
                              bake_ends_at="2026-01-17T12:00:00Z", awaiting_approval=True)],
                         {"cmp": {"happened": [], "planned": [], "now": "2026-01-15T12:00:00Z"}})
    assert "baking at 100% until 2026-01-17 12:00:00 UTC" in table_row(md, "cmp")
    assert "awaiting approval" in table_row(md, "cmp")
    evidence = next(line for line in md.splitlines() if line.startswith("| `error_rate_vs"))
    assert "1.4% of 5200 requests" in evidence and "0.9% of 98000 requests" in evidence
    assert "\\[-0.1, 1.1\\] points at 95% confidence" in evidence and "+0.5 points" in evidence
    # absent fields: nothing said about them
    plain = status_markdown([row("p", "progressing", 5, 1)])
    assert "baking" not in plain and "approval" not in plain and "Treatment" not in plain


# --- hostile text -----------------------------------------------------------------------


def test_hostile_names_and_reasons_are_inert_in_markdown_and_mermaid() -> None:
    gates = [{"name": HOSTILE, "verdict": "fail", "value": 1, "threshold": HOSTILE}]
    rows = [row(HOSTILE, "rolled_back", 0, 0, reason=HOSTILE, last_gates=gates)]
    happened = [{"time": "2026-01-15T12:00:00Z", "action": "start", "from": 0, "to": 5,
                 "phase": "progressing", "by": HOSTILE, "sha": "abcdef0", "reason": HOSTILE,
                 "reverted": False},
                {"time": "2026-01-15T12:05:00Z", "action": "rollback", "from": 5, "to": 0,
                 "phase": "rolled_back", "by": HOSTILE, "sha": "abcdef1", "reason": HOSTILE,
                 "reverted": False}]
    md = status_markdown(rows, {HOSTILE: {"happened": happened, "planned": [],
                                          "now": "2026-01-15T12:10:00Z"}})
    prose = outside_code(md)
    assert_inert(prose)
    # every table line has exactly its columns: no | of the text adds a cell
    for line in md.splitlines():
        if line.startswith("| `") or line.startswith("| 2026"):
            assert len(re.findall(r"(?<!\\)\|", line)) in (7, 8), line
    blocks = mermaid_blocks(md)
    assert len(blocks) == 2
    for block in blocks:
        assert_plausible_mermaid(block)
        assert 'href "' not in block
    tasks = gantt_tasks(blocks[1])
    assert [t["name"] for t in tasks] == ["at 5%", "rollback 5% to 0%"]


def assert_plausible_mermaid(block: str) -> None:
    """What the product writes in a Mermaid block: a known diagram type first, then lines
    Mermaid's grammar reads as ours (quoted labels without quotes inside, no directives,
    no comments, no interaction)."""
    lines = block.strip("\n").splitlines()
    assert lines[0] in ("gantt", "xychart-beta horizontal", "xychart-beta"), lines[0]
    assert "%%" not in block, "a directive or comment"
    assert not re.search(r"^\s*(click|call|href)\b", block, re.M), "interaction"
    for line in lines[1:]:
        assert line.startswith("    "), line
        if lines[0] == "gantt":
            key = line.split()[0]
            if key in ("title", "dateFormat", "axisFormat", "todayMarker", "section"):
                continue
            name, _, data = line.strip().partition(" :")
            assert name and ":" not in name and "#" not in name and ";" not in name, line
            assert re.fullmatch(r"((done|active|crit|milestone), )*\w+, [\d\- :]+, "
                                r"([\d\- :]+|0d)", data), line
            assert name[1:2] != "%", "Mermaid's lexer drops a task whose 2nd character is %"
        else:
            for label in re.findall(r'"([^"]*)"', line):
                assert re.fullmatch(r"[A-Za-z0-9_ .,%+\-/→()…]*", label), label
            assert line.count('"') % 2 == 0, line


# --- from a real repository -------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard(dashboard_root: Path) -> tuple[Path, str]:
    root = dashboard_root
    out = run_cli(["status", "--format", "markdown", "--now", dashboard_repo.NOW], cwd=root)
    assert out.returncode == 0, out.stderr
    return root, out.stdout


def section(md: str, flag: str) -> str:
    return md.split(f": `{flag}`\n", 1)[1].split("\n### ", 1)[0]


def test_real_repo_every_phase_at_a_glance(dashboard: tuple[Path, str]) -> None:
    _, md = dashboard
    assert ("4 rollouts: 1 " + phase_label("rolled_back") + " · 1 " + phase_label("paused")
            + " · 1 " + phase_label("progressing") + " · 1 " + phase_label("pending")) in md
    assert phase_label("rolled_back") in table_row(md, "aatc_system_enabled")
    assert phase_label("paused") in table_row(md, "phase_4_deployment")
    assert phase_label("pending") in table_row(md, "search_v3")
    assert "| 2026-01-16 09:00:00 |" in table_row(md, "search_v3")  # its start_at
    # timelines for the active ones only, the most urgent first
    heads = re.findall(r"^### .*: `(\w+)`$", md, re.M)
    assert heads == ["aatc_system_enabled", "phase_4_deployment", "checkout_v2"]


def test_real_repo_timeline_of_what_happened_beside_what_is_planned(
        dashboard: tuple[Path, str]) -> None:
    _, md = dashboard
    progressing = section(md, "checkout_v2")
    happened = [line for line in progressing.splitlines() if line.startswith("| 2026")]
    # five runner commits, with their times, then the two planned steps
    assert [h.split(" | ")[0] for h in happened[:5]] == [
        f"| 2026-01-15 12:{m}:00" for m in ("00", "05", "10", "15", "20")]
    assert "25% → 50%" in happened[4]
    assert happened[5].startswith("| 2026-01-15 12:32:00 | step 6 | 75% | 5m")
    assert happened[6].startswith("| 2026-01-15 12:37:00 | step 7 | 100% |")
    tasks = gantt_tasks(mermaid_blocks(progressing)[0])
    assert [(t["section"], t["name"]) for t in tasks] == [
        ("happened", "at 0%"), ("happened", "at 5%"), ("happened", "at 10%"),
        ("happened", "at 25%"), ("happened", "at 50%"), ("planned", "at 75%"),
        ("planned", "reach 100%")]
    # what happened ends now, where the plan takes over
    assert tasks[4]["end"] == tasks[5]["start"] == datetime(2026, 1, 15, 12, 32)


def test_real_repo_rollback_and_revert_and_hold_markers(dashboard: tuple[Path, str]) -> None:
    _, md = dashboard
    rolled = section(md, "aatc_system_enabled")
    tasks = gantt_tasks(mermaid_blocks(rolled)[0])
    assert tasks[-1]["name"] == "rollback 10% to 0%" and tasks[-1]["milestone"]
    assert "crit" in tasks[-1]["tags"]
    assert "Planned: nothing more until `rollout retry`." in rolled
    assert "⏪ rollback" in rolled and "10% → 0%" in rolled
    held = section(md, "phase_4_deployment")
    names = [t["name"] for t in gantt_tasks(mermaid_blocks(held)[0])]
    assert names[-3].startswith("revert ") and names[-2:] == ["hold at 5%", "paused at 5%"]
    assert "advance (reverted)" in held and "↩️ revert" in held and "✋ hold" in held
    assert "| Test Human |" in held  # who reverted
    assert "Planned: nothing more until `rollout resume`." in held


def test_real_repo_hostile_reason_is_inert(dashboard: tuple[Path, str]) -> None:
    _, md = dashboard
    assert_inert(outside_code(md))
    for block in mermaid_blocks(md):
        assert_plausible_mermaid(block)


def test_every_mermaid_block_of_the_plan_comment_is_plausible(dashboard_root: Path) -> None:
    from tests.conftest import git

    root = dashboard_root
    out = run_cli(["plan", "--base", git(root, "rev-list", "--max-parents=0", "HEAD"),
                   "--format", "markdown", "--now", dashboard_repo.NOW], cwd=root)
    assert out.returncode == 0, out.stderr
    blocks = mermaid_blocks(out.stdout)
    assert blocks
    for block in blocks:
        assert_plausible_mermaid(block)


def test_markdown_without_git_history_still_shows_everything(dashboard: tuple[Path, str],
                                                             tmp_path: Path) -> None:
    import shutil

    root, _ = dashboard
    copy = tmp_path / "not-git"
    copy.mkdir()
    for part in ("flags", "rollouts", "schemas", "metrics"):
        shutil.copytree(root / part, copy / part)
    shutil.copy2(root / "pyproject.toml", copy / "pyproject.toml")
    out = run_cli(["status", "--format", "markdown", "--now", dashboard_repo.NOW], cwd=copy)
    assert out.returncode == 0, out.stderr
    assert phase_label("rolled_back") in table_row(out.stdout, "aatc_system_enabled")
    assert "no git history here" in section(out.stdout, "checkout_v2")
    assert "| 2026-01-15 12:32:00 | step 6 | 75% | 5m |" in section(out.stdout, "checkout_v2")


def test_the_chart_keeps_to_a_readable_number_of_bars_active_first() -> None:
    from runner.review.status_markdown import CHART_LIMIT

    rows = [row(f"done_{i:03d}", "completed", 100, 3) for i in range(100)]
    rows.append(row("zz_rolled", "rolled_back"))
    chart = mermaid_blocks(status_markdown(rows))[0]
    labels = re.findall(r'"([^"]+)"', chart.split("x-axis", 1)[1].split("\n", 1)[0])
    assert len(labels) == CHART_LIMIT and "zz_rolled - rolled back" in labels
    assert f"{CHART_LIMIT} of 101 rollouts, active first" in chart
    assert_plausible_mermaid(chart)
