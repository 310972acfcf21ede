"""``rollout plan`` in a repository with environments: the pipeline per rollout (serving per
environment, the plan's overrides, soaks, freeze windows, traffic) in JSON and Markdown, and
its risks (issue 20)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, run_cli
from tests.review.mermaid_gantt import gantt_tasks

pytestmark = pytest.mark.cli_inprocess

NOW = "2026-01-15T12:00:00Z"
CONFIG = """\
[tool.rollout]
flags_dir = "flags"
rollouts_dir = "rollouts"
freeze = [{start = "2026-01-15T16:00:00Z", end = "2026-01-15T18:00:00Z", reason = "release train"}]

[tool.rollout.metrics]
type = "file"
path = "metrics/{{ flag }}.json"

[tool.rollout.environments.staging]

[tool.rollout.environments.production]
freeze = [{weekly = "sat-sun", reason = "weekend"}]
"""
FLAG = "key: checkout\ndescription: the new checkout\nowner: shop\nrisk: high\n"
#: Before the plan, staging served the flag to a static 20 %.
FLAG_BEFORE = FLAG + "environments:\n  staging: {percentage: 20}\n"
PLAN = """\
flag: checkout
strategy: custom
steps: [0, 10, 50, 100]
wait: 30m
gates:
  error_rate: 1.0
promote_after: 2h
environments:
  staging: {}
  production:
    steps: [0, {percentage: 5, approval: true}, 25, 100]
    wait: 1h
"""


def _repo(tmp_path: Path, plan: str) -> Path:
    root = tmp_path / "repo"
    (root / "flags").mkdir(parents=True)
    (root / "rollouts").mkdir()
    (root / "pyproject.toml").write_text(CONFIG)
    (root / "flags" / "checkout.yaml").write_text(FLAG_BEFORE)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "checkout, no plan yet")
    (root / "flags" / "checkout.yaml").write_text(FLAG)
    (root / "rollouts" / "checkout.yaml").write_text(plan)
    return root


def _plan(root: Path) -> dict[str, Any]:
    out = run_cli(["plan", "--format", "json", "--now", NOW], cwd=root)
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_json_pipeline_soak_approval_and_freeze(tmp_path: Path) -> None:
    root = _repo(tmp_path, PLAN)
    report = _plan(root)
    (started,) = report["rollouts"]["started"]
    staging, production = started["environments"]
    assert [staging["environment"], production["environment"]] == ["staging", "production"]
    # the flag is served per environment: staging's static 20 % before the plan starts
    assert (staging["serving_before"], staging["serving_after"]) == (20, 0)
    assert (production["serving_before"], production["serving_after"]) == (0, 0)
    assert {c["field"]: c["after"] for c in production["overrides"]} == {
        "steps": [0, 5, 25, 100], "wait": "1h", "steps[1].approval": True}
    assert staging["overrides"] == []
    s = staging["schedule"]
    assert (s["start"], s["complete_at"], s["soak"]) == (NOW, "2026-01-15T13:30:00Z", None)
    p = production["schedule"]
    # the soak after staging's completion, then step 0 (1h) ends at 16:30 in the freeze:
    # the advance waits for 18:00; two more hours of steps
    assert p["soak"] == {"start": "2026-01-15T13:30:00Z", "end": "2026-01-15T15:30:00Z",
                         "seconds": 7200}
    assert p["freezes"] == [{"start": "2026-01-15T16:30:00Z", "end": "2026-01-15T18:00:00Z",
                             "reason": "release train", "holds": "advance", "seconds": 5400.0}]
    assert [st["start"] for st in p["steps"]] == [
        "2026-01-15T15:30:00Z", "2026-01-15T18:00:00Z", "2026-01-15T19:00:00Z",
        "2026-01-15T20:00:00Z"]
    assert [st["approval"] for st in p["steps"]] == [False, True, False, False]
    pipe = started["pipeline"]
    assert pipe["complete_at"] == "2026-01-15T20:00:00Z" and pipe["total"] == "8h"
    assert pipe["summary"] == ("staging ~1h30m → soak 2h → production ~4h30m: ~8h from now to "
                               "the last environment's completion (soaks 2h, freezes 1h30m "
                               "included)")
    # approval in production and a soak: no pipeline risk
    assert not [r for r in report["risks"] if r["kind"] in ("promotion_unguarded",
                                                            "environment_skipped")]
    (flag,) = report["flags"]["changed"] or [None]  # the flag's serving moves in staging
    assert flag is not None and flag["environments"] == [
        {"environment": "staging", "before": 20, "after": 0},
        {"environment": "production", "before": 0, "after": 0}]


def test_markdown_pipeline_chart_has_a_section_per_environment(tmp_path: Path) -> None:
    root = _repo(tmp_path, PLAN)
    out = run_cli(["plan", "--now", NOW], cwd=root)
    assert out.returncode == 0, out.stderr
    md = out.stdout
    assert ("**Pipeline**: staging \\~1h30m → soak 2h → production \\~4h30m: \\~8h from now to "
            "the last environment's completion \\(soaks 2h, freezes 1h30m included\\).") in md
    assert ("| `production` | 0% → 0% | 2h | 0%, 5% (approval), 25%, 100% | 2026-01-15 15:30:00 "
            "| 2026-01-15 20:00:00 |") in md
    assert "| `production` | `wait` | `30m` | `1h` |" in md
    assert ("- ❄️ `production` frozen 2026-01-15 16:30:00 → 2026-01-15 18:00:00 (release "
            "train): holds its advance until then.") in md
    chart = re.search(r"```mermaid\n(.*?)```", md, re.S)
    assert chart is not None
    tasks = gantt_tasks(chart.group(1))
    by_section: dict[str, list[str]] = {}
    for t in tasks:
        by_section.setdefault(str(t["section"]), []).append(str(t["name"]))
    assert by_section == {
        "staging": ["at 0%", "at 10%", "at 50%", "100% reached"],
        "production": ["soak 2h", "frozen release train", "at 0%", "at 5%", "at 25%",
                       "100% reached"]}
    soak = next(t for t in tasks if t["name"] == "soak 2h")
    assert (soak["start"], soak["end"]) == (datetime(2026, 1, 15, 13, 30),
                                            datetime(2026, 1, 15, 15, 30))
    frozen = next(t for t in tasks if t["name"] == "frozen release train")
    assert frozen["tags"] == ["crit"]


def test_traffic_gives_expected_step_durations(tmp_path: Path) -> None:
    plan = PLAN.replace("  error_rate: 1.0\n",
                        "  error_rate: {max: 1.0, confidence: 0.95}\ntraffic: 6000/h\n")
    root = _repo(tmp_path, plan)
    (started,) = _plan(root)["rollouts"]["started"]
    evidence = {st["index"]: st["seconds"] for st in started["evidence"]["steps"]}
    staging = started["environments"][0]["schedule"]
    assert staging["evidence"] is True
    for st in staging["steps"][:-1]:  # each step holds its wait or its evidence, the longer
        assert st["expected"] is not None
        held = (datetime.fromisoformat(st["end"]) - datetime.fromisoformat(st["start"]))
        assert held.total_seconds() == max(1800, evidence[st["index"]])


def test_production_without_approval_or_soak_is_a_risk(tmp_path: Path) -> None:
    plan = ("flag: checkout\nstrategy: custom\nsteps: [0, 50, 100]\nwait: 5m\n"
            "gates: {error_rate: 1.0}\n")
    root = _repo(tmp_path, plan)
    risks = {r["kind"]: r for r in _plan(root)["risks"]}
    assert risks["promotion_unguarded"]["level"] == "high"  # a high-risk flag
    assert risks["promotion_unguarded"]["message"] == (
        "checkout starts in production as soon as staging completes it, with no approval "
        "step and no soak (promote_after 0): nobody looks and nothing settles before it "
        "moves there")


def test_a_skipped_environment_is_a_risk(tmp_path: Path) -> None:
    plan = ("flag: checkout\nstrategy: custom\nsteps: [0, 50, 100]\nwait: 5m\n"
            "gates: {error_rate: 1.0}\nenvironments: [production]\n")
    root = _repo(tmp_path, plan)
    report = _plan(root)
    (started,) = report["rollouts"]["started"]
    assert [e["environment"] for e in started["environments"]] == ["production"]
    assert started["pipeline"]["skipped"] == ["staging"]
    risk = next(r for r in report["risks"] if r["kind"] == "environment_skipped")
    assert risk["message"] == ("checkout's plan skips staging: it runs in production only, "
                               "and starts in production with no earlier environment")


def test_an_edit_of_one_environments_block_is_a_changed_rollout(tmp_path: Path) -> None:
    root = _repo(tmp_path, PLAN)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the plan")
    (root / "rollouts" / "checkout.yaml").write_text(PLAN.replace("wait: 1h", "wait: 2h"))
    report = _plan(root)
    (changed,) = report["rollouts"]["changed"]
    assert changed["changes"] == []  # the plan as written is the same
    staging, production = changed["environments"]
    assert staging["changes"] == []
    assert production["changes"] == [{"field": "wait", "before": "1h", "after": "2h"}]
