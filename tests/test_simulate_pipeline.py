"""``rollout simulate`` in a repository with environments: the whole pipeline in promotion
order over a timeline per environment (production starts only after staging's completion and
the soak; a freeze holds it; a regression in staging stops the pipeline), ``--env`` for one,
and bad inputs (issue 20)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.cli_inprocess

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
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
"""
FLAG = "key: checkout\ndescription: the new checkout\nowner: shop\nrisk: low\n"
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


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def timeline(path: Path, hours: int, bad_from: int | None = None) -> Path:
    """A line every 5 minutes; error_rate 5 % from minute ``bad_from`` on."""
    lines = [json.dumps({"timestamp": iso(T0 + timedelta(minutes=m)),
                         "error_rate": 5.0 if bad_from is not None and m >= bad_from else 0.1})
             for m in range(0, hours * 60 + 1, 5)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "flags").mkdir(parents=True)
    (root / "rollouts").mkdir()
    (root / "pyproject.toml").write_text(CONFIG)
    (root / "flags" / "checkout.yaml").write_text(FLAG)
    (root / "rollouts" / "checkout.yaml").write_text(PLAN)
    return root


def simulate(repo: Path, *args: str) -> Any:
    return run_cli(["simulate", "checkout", "--repo", str(repo), *args], cwd=repo)


def test_production_starts_after_staging_and_the_soak_and_waits_out_a_freeze(
        repo: Path, tmp_path: Path) -> None:
    staging = timeline(tmp_path / "staging.jsonl", 4)
    production = timeline(tmp_path / "production.jsonl", 12)
    out = simulate(repo, "--timeline", f"staging={staging}", "--timeline",
                   f"production={production}", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    s, p = doc["environments"]
    assert (s["environment"], s["outcome"], s["completed_at"]) == (
        "staging", "completed", "2026-01-15T13:30:00Z")
    # staging completed at 13:30; promote_after 2h: production's first look is 15:30
    assert p["environment"] == "production" and p["started_at"] == "2026-01-15T15:30:00Z"
    assert p["looks"][0]["at"] == "2026-01-15T15:30:00Z"
    # its first step's wait ends at 16:30, in the freeze: the advance waits for 18:00
    held = [look for look in p["looks"] if "frozen until 2026-01-15T18:00:00Z" in look["reason"]]
    assert held and held[0]["at"] == "2026-01-15T16:30:00Z"
    advances = [look["at"] for look in p["looks"] if look["action"] == "advance"]
    assert advances[0] == "2026-01-15T18:00:00Z"
    assert (doc["outcome"], doc["ended_at"], doc["seconds"]) == (
        "completed", "2026-01-15T20:00:00Z", 8 * 3600)
    assert doc["summary"] == (
        "pipeline: completed in production at 2026-01-15T20:00:00Z, 8h after the start in "
        "staging (soaks 2h, held by freezes about 1h30m included)")
    text = simulate(repo, "--timeline", f"staging={staging}", "--timeline", str(production))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == ("rollout simulate checkout (rollouts/checkout.yaml): the pipeline "
                        "staging → production; nothing is written")
    assert ("checkout@production: starts after staging completed at 2026-01-15T13:30:00Z and "
            "promote_after 2h: first look at 2026-01-15T15:30:00Z") in lines
    assert lines[-1] == doc["summary"]


def test_a_regression_in_staging_stops_the_pipeline(repo: Path, tmp_path: Path) -> None:
    staging = timeline(tmp_path / "staging.jsonl", 4, bad_from=40)
    production = timeline(tmp_path / "production.jsonl", 12)
    out = simulate(repo, "--timeline", f"staging={staging}", "--timeline", str(production))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "checkout@production: rejected: rolled back in staging at 2026-01-15T12:40:00Z" in lines
    assert not any(line.startswith("rollout simulate checkout@production") for line in lines)
    assert lines[-1] == (
        "pipeline: stopped in staging: rolled back at 2026-01-15T12:40:00Z, 40m after the "
        "start in staging; the plan version is rejected; production never starts (until "
        "`rollout retry checkout --env staging` or a new plan version)")
    doc = json.loads(simulate(repo, "--timeline", f"staging={staging}", "--timeline",
                              str(production), "--format", "json").stdout)
    assert (doc["outcome"], doc["stopped_in"]) == ("rolled_back", "staging")
    assert doc["environments"][1] == {"environment": "production", "outcome": "not_started",
                                      "note": "rejected: rolled back in staging at "
                                      "2026-01-15T12:40:00Z", "looks": []}


def test_env_replays_one_environment_from_since(repo: Path, tmp_path: Path) -> None:
    production = timeline(tmp_path / "production.jsonl", 6)
    out = simulate(repo, "--env", "production", "--timeline", str(production))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("rollout simulate checkout@production (rollouts/checkout.yaml): "
                               "4 steps (0%, 5%, 25%, 100%) over timeline ")
    assert lines[2].startswith("2026-01-15T12:00:00Z  start ")
    doc = json.loads(simulate(repo, "--env", "production", "--timeline", str(production),
                              "--format", "json").stdout)
    assert doc["environment"] == "production" and doc["started_at"] == iso(T0)


@pytest.mark.parametrize(("args", "message"), [
    (["--env", "prod"], "rollout simulate: error: --env 'prod': not a declared environment "
     "(declared: staging, production)"),
    (["--timeline", "stagin={tl}"], "rollout simulate: error: --timeline stagin={tl}: "
     "'stagin' is not a declared environment (declared: staging, production); did you mean "
     "staging?"),
    (["--timeline", "{tl}", "--timeline", "{tl}"],
     "rollout simulate: error: --timeline: two files for every environment"),
])
def test_bad_inputs_are_one_line_exit_2(repo: Path, tmp_path: Path, args: list[str],
                                        message: str) -> None:
    tl = str(timeline(tmp_path / "t.jsonl", 1))
    out = simulate(repo, *[a.format(tl=tl) for a in args])
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.splitlines() == [message.format(tl=tl)]


def test_without_environments_env_is_a_usage_error(repo: Path, tmp_path: Path) -> None:
    (repo / "pyproject.toml").write_text(CONFIG.split("\n[tool.rollout.environments")[0])
    (repo / "rollouts" / "checkout.yaml").write_text(PLAN.split("promote_after")[0])
    tl = str(timeline(tmp_path / "t.jsonl", 1))
    out = simulate(repo, "--env", "staging", "--timeline", tl)
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1
    assert "declares no environments" in out.stderr
    out = simulate(repo, "--timeline", tl, "--timeline", tl)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "rollout simulate: error: --timeline: one file in a repository without environments"]
