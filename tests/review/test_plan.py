"""``rollout plan`` on real git repositories with real diffs between revisions."""

from __future__ import annotations

import json
import re
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tests.review.helpers import commit, state_json, write
from tests.review.mermaid_gantt import gantt_tasks

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


NOW = "2026-11-27T05:00:00Z"

NEW_FLAG = """\
key: checkout_v2
description: New checkout flow
owner: payments-team
risk: high
default_variant: off
"""

NEW_PLAN = """\
flag: checkout_v2
strategy: safe
wait: 10m
gates:
  error_rate: 0.5
  request_count: 50
"""


def plan_json(repo: Path, *args: str) -> tuple[int, dict]:
    out = run_cli(["plan", "--format", "json", "--now", NOW, *args], cwd=repo)
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)


def kinds(report: dict) -> set[tuple[str, str]]:
    return {(r["kind"], r["flag"]) for r in report["risks"]}


def test_new_flag_with_safe_plan_shows_steps_and_mermaid_timeline(example_repo: Path) -> None:
    write(example_repo, "flags/checkout_v2.yaml", NEW_FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml", NEW_PLAN)
    out = run_cli(["plan", "--now", NOW], cwd=example_repo)
    assert out.returncode == 0, out.stderr
    md = out.stdout
    assert md.startswith("<!-- rollout-plan -->\n")
    assert "| `checkout_v2` | high | added, with a rollout plan | — | 0% |" in md
    assert "▶️ Starts" in md and "`checkout_v2`" in md
    chart = md.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert chart.startswith("gantt\n")
    # the tasks Mermaid's gantt parser keeps (a "5% :..." line would be read as a comment)
    tasks = gantt_tasks(chart)
    assert {t["section"] for t in tasks} == {"checkout_v2"}
    # the safe strategy: six holds of 10 minutes, then 100 % reached 60 minutes after the merge
    assert [t["name"] for t in tasks] == ["at 0%", "at 5%", "at 10%", "at 25%", "at 50%", "at 75%",
                                          "100% reached"]
    assert (tasks[0]["start"], tasks[0]["end"]) == (datetime(2026, 11, 27, 5), datetime(2026, 11, 27, 5, 10))
    assert all(a["end"] == b["start"] for a, b in pairwise(tasks))
    assert tasks[-1]["milestone"] and tasks[-1]["start"] == datetime(2026, 11, 27, 6, 0)
    assert "| `error_rate <= 0.5` `request_count >= 50` |" in md
    # a high-risk flag with a plan is not called out as "without a plan"
    assert "high_risk_without_plan" not in json.dumps(plan_json(example_repo)[1]["risks"])


def test_high_risk_flag_changed_without_plan_is_called_out(example_repo: Path) -> None:
    write(example_repo, "flags/security_hardening_enabled.yaml",
          (example_repo / "flags/security_hardening_enabled.yaml").read_text()
          .replace("risk: low", "risk: high").replace("default_variant: on", "default_variant: off")
          + "percentage: 40\n")
    code, report = plan_json(example_repo)
    assert code == 0
    assert ("high_risk_without_plan", "security_hardening_enabled") in kinds(report)
    changed = {c["key"]: c for c in report["flags"]["changed"]}["security_hardening_enabled"]
    fields = {c["field"]: (c["before"], c["after"]) for c in changed["changes"]}
    assert fields["risk"] == ("low", "high")
    assert fields["percentage"] == (None, 40)
    assert (changed["effective_before"], changed["effective_after"]) == (100, 40)


def test_a_percentage_of_a_rollout_variant_that_is_the_default_serves_everyone(
        example_repo: Path) -> None:
    # security_hardening_enabled serves `on`, its default and rollout variant, to everyone; a
    # percentage splits the rollout variant off the default, the same variant: still everyone
    # (the plan said 40 % here, while the artifact and `rollout eval` served `on` to all)
    path = example_repo / "flags/security_hardening_enabled.yaml"
    write(example_repo, "flags/security_hardening_enabled.yaml", path.read_text() + "percentage: 40\n")
    code, report = plan_json(example_repo)
    assert code == 0
    changed = {c["key"]: c for c in report["flags"]["changed"]}["security_hardening_enabled"]
    assert (changed["effective_before"], changed["effective_after"]) == (100, 100)
    for user in ("u1", "u2", "u3", "u4", "u5", "u6"):
        out = run_cli(["eval", "security_hardening_enabled", "--key", user, "--format", "json"],
                      cwd=example_repo)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["variant"] == "on"


def test_instant_on_high_risk_flag_is_called_out(example_repo: Path) -> None:
    write(example_repo, "flags/checkout_v2.yaml", NEW_FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml",
          "flag: checkout_v2\nstrategy: instant\naccept_risk: true\ngates:\n  error_rate: 1\n")
    code, report = plan_json(example_repo)
    assert code == 0
    assert ("instant_on_high_risk", "checkout_v2") in kinds(report)
    steps = report["rollouts"]["started"][0]["timeline"]["steps"]
    assert [(s["percentage"], s["wait"]) for s in steps] == [(0, "1m"), (100, "0s")]


def test_removing_a_required_flag_is_called_out_and_fails(example_repo: Path) -> None:
    (example_repo / "flags/phase_4_deployment.yaml").unlink()
    (example_repo / "rollouts/phase_4_deployment.yaml").unlink()
    code, report = plan_json(example_repo)
    assert code == 1  # the head no longer validates: the requiring flags dangle
    assert any("requires unknown flag 'phase_4_deployment'" in p["message"]
               for p in report["problems"]["head"])
    removed = report["flags"]["removed"][0]
    assert removed["key"] == "phase_4_deployment"
    assert removed["required_by"] == ["aatc_system_enabled", "llm_integration_enabled"]
    assert ("removed_but_required", "phase_4_deployment") in kinds(report)
    assert [r["flag"] for r in report["rollouts"]["stopped"]] == ["phase_4_deployment"]
    md = run_cli(["plan", "--now", NOW], cwd=example_repo).stdout
    assert "> [!CAUTION]" in md and "requires unknown flag" in md


def test_prerequisite_on_a_flag_that_is_off(example_repo: Path) -> None:
    write(example_repo, "flags/beta_banner.yaml",
          "key: beta_banner\ndescription: Banner\nowner: web\nrisk: low\nenabled: false\n")
    write(example_repo, "flags/beta_search.yaml",
          "key: beta_search\ndescription: Search\nowner: web\nrisk: low\npercentage: 50\n"
          "requires: [beta_banner]\n")
    code, report = plan_json(example_repo)
    assert code == 0
    assert ("prerequisite_off", "beta_search") in kinds(report)
    # a prerequisite that is on is no risk
    write(example_repo, "flags/beta_banner.yaml",
          "key: beta_banner\ndescription: Banner\nowner: web\nrisk: low\nenabled: true\n"
          "percentage: 10\n")
    assert ("prerequisite_off", "beta_search") not in kinds(plan_json(example_repo)[1])
    # requiring a variant nobody gets: beta_banner serves `on` to 100 %, never `off`
    write(example_repo, "flags/beta_banner.yaml",
          "key: beta_banner\ndescription: Banner\nowner: web\nrisk: low\npercentage: 100\n")
    write(example_repo, "flags/beta_search.yaml",
          "key: beta_search\ndescription: Search\nowner: web\nrisk: low\npercentage: 50\n"
          "requires: [{flag: beta_banner, variant: 'off'}]\n")
    assert ("prerequisite_off", "beta_search") in kinds(plan_json(example_repo)[1])


def test_between_revisions_reads_rollout_state_percentages(example_repo: Path) -> None:
    base = git(example_repo, "rev-parse", "HEAD")
    write(example_repo, "rollouts/phase_4_deployment.state.json",
          state_json("phase_4_deployment", 10, 2))
    mid = commit(example_repo, "runner: 10%")
    write(example_repo, "rollouts/phase_4_deployment.state.json",
          state_json("phase_4_deployment", 25, 3))
    head = commit(example_repo, "runner: 25%")
    code, report = plan_json(example_repo, "--base", mid, "--head", head)
    assert code == 0
    assert report["base"]["sha"] == mid and report["head"]["sha"] == head
    (flag,) = report["flags"]["changed"]
    assert (flag["key"], flag["effective_before"], flag["effective_after"]) == (
        "phase_4_deployment", 10, 25)
    assert flag["changes"] == []
    code, report = plan_json(example_repo, "--base", base, "--head", head)
    assert report["flags"]["changed"][0]["effective_before"] == 0


def test_plan_edit_is_a_changed_rollout_field_by_field(example_repo: Path) -> None:
    path = example_repo / "rollouts/phase_4_deployment.yaml"
    path.write_text(path.read_text().replace("wait: 5m", "wait: 15m")
                    .replace("error_rate: 1.0", "error_rate: 0.5"))
    _, report = plan_json(example_repo)
    (changed,) = report["rollouts"]["changed"]
    fields = {c["field"]: (c["before"], c["after"]) for c in changed["changes"]}
    assert fields == {"wait": ("5m", "15m"), "gates.error_rate": ("<= 1", "<= 0.5")}
    assert changed["timeline"]["total"] == "1h30m"


def test_default_base_is_the_merge_base_with_the_default_branch(example_repo: Path) -> None:
    git(example_repo, "checkout", "-q", "-b", "feature")
    write(example_repo, "flags/checkout_v2.yaml", NEW_FLAG.replace("risk: high", "risk: low"))
    commit(example_repo, "add checkout_v2 on a branch")
    git(example_repo, "checkout", "-q", "main")
    write(example_repo, "flags/other_flag.yaml",
          "key: other_flag\ndescription: x\nowner: y\nrisk: low\n")
    commit(example_repo, "main moves on")
    git(example_repo, "checkout", "-q", "feature")
    _, report = plan_json(example_repo)
    # only the branch's own change: main's later commit is not reported as a removal
    assert [f["key"] for f in report["flags"]["added"]] == ["checkout_v2"]
    assert report["flags"]["removed"] == []


def test_user_text_cannot_break_the_markdown(example_repo: Path) -> None:
    path = example_repo / "flags/otel_enabled.yaml"
    path.write_text(path.read_text().replace(
        "OpenTelemetry tracing. Always on.", "'x | y [link](http://evil) <img src=x> @octocat ``'"))
    md = run_cli(["plan", "--now", NOW], cwd=example_repo).stdout
    row = next(line for line in md.splitlines() if line.startswith("| `description`"))
    # three cells exactly: the | of the description is escaped, so it cannot open a fourth
    assert len(re.findall(r"(?<!\\)\|", row)) == 4
    # the whole value is one code span (a fence longer than its own backticks): inert text
    assert row.endswith("| ``` x \\| y [link](http://evil) <img src=x> @octocat `` ``` |")


def test_usage_errors(example_repo: Path, tmp_path: Path) -> None:
    out = run_cli(["plan", "--base", "no-such-rev"], cwd=example_repo)
    assert out.returncode == 2 and "no-such-rev" in out.stderr
    plain = tmp_path / "plain"
    plain.mkdir()
    out = run_cli(["plan"], cwd=plain)
    assert out.returncode == 2 and "not a git repository" in out.stderr


def test_a_revision_git_cannot_read_is_one_line_and_a_usage_error(example_repo: Path) -> None:
    # the base's tree lists a file whose object is gone (a damaged clone): ls-tree still
    # works, git archive fails. Once a TypeError (GitError built with one argument) that
    # the command printed as "the change cannot be shown"; now git's own words, exit 2.
    write(example_repo, "flags/checkout_v2.yaml", NEW_FLAG)
    base = commit(example_repo, "a new flag")
    blob = git(example_repo, "rev-parse", "HEAD:flags/checkout_v2.yaml")
    (example_repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # a new blob: loose
    out = run_cli(["plan", "--base", base], cwd=example_repo)
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"rollout plan: error: cannot read {base}: git archive: "), line
    assert blob in line
    assert "TypeError" not in line and "cannot be shown" not in line and out.stdout == ""


def test_timeline_of_a_rollout_in_progress_starts_from_its_current_step(
        example_repo: Path) -> None:
    write(example_repo, "rollouts/phase_4_deployment.state.json",
          state_json("phase_4_deployment", 25, 3, started="2026-11-27T04:50:00Z"))
    commit(example_repo, "runner at 25%")
    path = example_repo / "rollouts/phase_4_deployment.yaml"
    path.write_text(path.read_text().replace("wait: 5m", "wait: 10m"))
    _, report = plan_json(example_repo)
    (changed,) = report["rollouts"]["changed"]
    assert changed["state"]["current_percentage"] == 25
    timeline = changed["timeline"]
    assert timeline["basis"] == "from the current step's start"
    # the remaining steps only: 25 (since 04:50), 50, 75, then 100 at 05:20
    assert [(s["percentage"], s["start"]) for s in timeline["steps"]] == [
        (25, "2026-11-27T04:50:00Z"), (50, "2026-11-27T05:00:00Z"),
        (75, "2026-11-27T05:10:00Z"), (100, "2026-11-27T05:20:00Z")]


def test_kill_switch_and_an_invalid_base(example_repo: Path) -> None:
    # the base does not validate (a broken flag was merged); the fix is still reviewable
    write(example_repo, "flags/broken.yaml", "key: broken\nrisk: extreme\n")
    broken = commit(example_repo, "broken flag")
    (example_repo / "flags/broken.yaml").unlink()
    pyproject = example_repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        'rollouts_dir = "rollouts"', 'rollouts_dir = "rollouts"\nemergency_shutdown = true'))
    code, report = plan_json(example_repo, "--base", broken)
    assert code == 0
    assert any(p["file"] == "flags/broken.yaml" for p in report["problems"]["base"])
    assert report["problems"]["head"] == []
    assert ("kill_switch", "*") in kinds(report)
    # with the kill switch on, everything serves 0 %
    changed = {c["key"]: c for c in report["flags"]["changed"]}
    assert (changed["otel_enabled"]["effective_before"],
            changed["otel_enabled"]["effective_after"]) == (100, 0)


def test_changing_the_bucketing_scheme_is_a_risk_call_out(example_repo: Path) -> None:
    pyproject = example_repo / "pyproject.toml"
    text = pyproject.read_text()
    assert "bucketing" not in text  # the default, flagd-v2
    pyproject.write_text(text.replace('rollouts_dir = "rollouts"',
                                      'rollouts_dir = "rollouts"\nbucketing = "flagd-v3"'))
    code, report = plan_json(example_repo)
    assert code == 0, report
    risk = next(r for r in report["risks"] if r["kind"] == "bucketing_changed")
    assert risk["level"] == "high" and risk["flag"] == "*"
    assert "from flagd-v2 to flagd-v3" in risk["message"]
    assert "reshuffles every split" in risk["message"]
    md = run_cli(["plan", "--now", NOW], cwd=example_repo)
    assert "reshuffles every split" in md.stdout
    # the same scheme spelled out is no change
    commit(example_repo, "bucket with flagd-v3")
    _, report = plan_json(example_repo, "--base", "HEAD")
    assert all(r["kind"] != "bucketing_changed" for r in report["risks"])


def test_a_large_change_still_fits_one_pull_request_comment(example_repo: Path) -> None:
    # GitHub refuses a comment body over 65,536 characters: a change adding 120 rollouts
    # is cut short by whole rollouts and rows, never mid-table or mid-chart
    for i in range(120):
        write(example_repo, f"flags/bulk_{i:03}.yaml", NEW_FLAG.replace("checkout_v2", f"bulk_{i:03}"))
        write(example_repo, f"rollouts/bulk_{i:03}.yaml", NEW_PLAN.replace("checkout_v2", f"bulk_{i:03}"))
    out = run_cli(["plan", "--now", NOW], cwd=example_repo)
    assert out.returncode == 0, out.stderr
    md = out.stdout
    assert len(md) <= 65_536
    assert md.startswith("<!-- rollout-plan -->\n") and md.count("```") % 2 == 0
    charts = [c.split("```", 1)[0] for c in md.split("```mermaid\n")[1:]]
    assert 0 < len(charts) < 120
    for chart in charts:
        assert len(gantt_tasks(chart)) == 7
    # every added flag is still named, in the table; those without a chart get one line each
    for i in range(120):
        assert f"| `bulk_{i:03}` | high | added, with a rollout plan |" in md
    assert md.count("- ▶️ Starts: `bulk_") == 120 - len(charts)
    # the JSON is never cut
    assert len(plan_json(example_repo)[1]["rollouts"]["started"]) == 120


def test_plan_reads_a_revision_from_the_folders_its_own_config_names(tmp_path: Path) -> None:
    """A repository with its own flags_dir: the base revision is read from that folder, so a
    flag already there is unchanged, not reported as added."""
    repo = tmp_path / "custom"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, "pyproject.toml", '[tool.rollout]\nflags_dir = "config/flags"\n'
          'rollouts_dir = "config/rollouts"\n')
    write(repo, "config/flags/checkout_v2.yaml", NEW_FLAG)
    write(repo, "config/rollouts/.keep", "")
    commit(repo, "base")
    code, report = plan_json(repo, "--base", "HEAD")
    assert code == 0
    assert report["flags"]["added"] == []
    assert report["problems"] == {"base": [], "head": []}


def test_comparison_gates_are_shown_and_loosening_them_is_a_risk(example_repo: Path) -> None:
    path = example_repo / "rollouts/phase_4_deployment.yaml"
    path.write_text(path.read_text() + "compare:\n  error_rate: {max_increase: 0.5}\n"
                    "  confidence: 0.95\n")
    _, report = plan_json(example_repo)
    (changed,) = report["rollouts"]["changed"]
    fields = {c["field"]: (c["before"], c["after"]) for c in changed["changes"]}
    assert fields["compare.error_rate.max_increase"] == (None, 0.5)
    assert "error_rate at most +0.5 pp; confidence 95 %" in changed["compare"]
    assert ("compare_loosened", "phase_4_deployment") not in kinds(report)  # added: stricter
    md = run_cli(["plan", "--now", NOW], cwd=example_repo).stdout
    assert "Comparison gates: treatment vs control: error\\_rate at most \\+0.5 pp" in md
    commit(example_repo, "compare the cohorts")

    path.write_text(path.read_text().replace("max_increase: 0.5", "max_increase: 2")
                    .replace("confidence: 0.95", "confidence: 0.8"))
    _, report = plan_json(example_repo)
    (risk,) = [r for r in report["risks"] if r["kind"] == "compare_loosened"]
    assert risk["level"] == "high"  # phase_4_deployment is a high-risk flag
    assert "compare.error_rate.max_increase 0.5 → 2 pp" in risk["message"]
    assert "compare.confidence 0.95 → 0.8" in risk["message"]


def test_loosening_the_gates_of_a_high_risk_flag_is_a_risk(example_repo: Path) -> None:
    path = example_repo / "rollouts/phase_4_deployment.yaml"
    text = path.read_text()
    path.write_text(text.replace("error_rate: 1.0 ", "error_rate: 2   ")
                    .replace("  p95_latency_ms: 500\n", "")
                    .replace("request_count: 100 ", "request_count: 50  "))
    _, report = plan_json(example_repo)
    (risk,) = [r for r in report["risks"] if r["kind"] == "gates_loosened"]
    assert (risk["level"], risk["flag"]) == ("high", "phase_4_deployment")
    assert risk["message"] == (
        "the gates of high-risk flag phase_4_deployment guard less: gates.error_rate <= 1 → <= 2; "
        "gates.p95_latency_ms (<= 500) is removed; gates.request_count >= 100 → >= 50")
    assert report["summary"]["risks"] == len(report["risks"]) >= 1
    md = run_cli(["plan", "--now", NOW], cwd=example_repo).stdout
    assert ("🔴 **high** · `phase_4_deployment` · the gates of high-risk flag phase\\_4\\_deployment "
            "guard less: gates.error\\_rate \\<= 1 → \\<= 2") in md

    # tighter gates, a step's own stricter gate: no risk
    path.write_text(text.replace("error_rate: 1.0 ", "error_rate: 0.5 ")
                    .replace("wait: 5m\n", "wait: 5m\nsteps:\n  - 0\n  - {percentage: 5, gates: "
                             "{error_rate: 0.2, request_count: 100}}\n  - 10\n  - 25\n  - 50\n"
                             "  - 75\n  - 100\n"))
    _, report = plan_json(example_repo)
    assert ("gates_loosened", "phase_4_deployment") not in kinds(report)
    commit(example_repo, "stricter")

    # a step's own gate loosened, a gate made dry run, the comparison's sample lowered
    path.write_text(path.read_text().replace("error_rate: 0.2,", "error_rate: 0.8,")
                    .replace("p95_latency_ms: 500", "p95_latency_ms: {max: 500, dry_run: true}"))
    _, report = plan_json(example_repo)
    (risk,) = [r for r in report["risks"] if r["kind"] == "gates_loosened"]
    assert risk["message"] == (
        "the gates of high-risk flag phase_4_deployment guard less: gates.p95_latency_ms (<= 500) "
        "becomes dry run (never blocks); steps[1].gates.error_rate <= 0.2 → <= 0.8")


def test_a_lower_comparison_sample_is_a_risk(example_repo: Path) -> None:
    path = example_repo / "rollouts/phase_4_deployment.yaml"
    path.write_text(path.read_text() + "compare:\n  error_rate: {max_increase: 0.5}\n"
                    "  min_requests: 500\n")
    commit(example_repo, "compare the cohorts")
    path.write_text(path.read_text().replace("min_requests: 500", "min_requests: 50"))
    _, report = plan_json(example_repo)
    (risk,) = [r for r in report["risks"] if r["kind"] == "compare_loosened"]
    assert "compare.min_requests 500 → 50" in risk["message"]


def test_a_metrics_url_shows_no_credentials_in_the_plan(example_repo: Path) -> None:
    write(example_repo, "flags/checkout_v2.yaml", NEW_FLAG)
    write(example_repo, "rollouts/checkout_v2.yaml", NEW_PLAN)
    git(example_repo, "add", "-A")
    git(example_repo, "commit", "-qm", "checkout_v2")
    # the change under review: the plan's gates read another source
    write(example_repo, "rollouts/checkout_v2.yaml", NEW_PLAN + (
        "metrics:\n  type: prometheus\n  url: https://reader:hunter2@prom.example/api?token=tok123\n"
        "  queries:\n    error_rate: 'vector(0)'\n    request_count: 'vector(1000)'\n"))
    markdown = run_cli(["plan", "--now", NOW], cwd=example_repo)
    _, report = plan_json(example_repo)
    shown = markdown.stdout + json.dumps(report)
    assert "prom.example" in shown  # the source is shown: where the gates read from
    assert "hunter2" not in shown and "tok123" not in shown and "reader" not in shown
