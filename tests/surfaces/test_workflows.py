"""The GitHub Actions workflows and the composite action (action.yml): real zizmor (its
pedantic persona) and check-jsonschema runs, and the rules they must keep (pinned actions,
no pull_request_target, no untrusted input in a shell)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.load.yamlsafe import load_text
from tests.conftest import PROJECT

PROJECT_WORKFLOWS = sorted((PROJECT / ".github/workflows").glob("*.yml"))
INIT_WORKFLOWS = sorted((PROJECT / "runner/templates/init/workflows").glob("*.yml"))
ALL = PROJECT_WORKFLOWS + INIT_WORKFLOWS
ACTION = PROJECT / "action.yml"


def load(path: Path) -> dict[str, Any]:
    doc = load_text(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def test_the_expected_workflows_exist() -> None:
    assert {p.name for p in PROJECT_WORKFLOWS} == {"validate.yml", "advance.yml", "control.yml",
                                                    "ci.yml", "release.yml"}
    assert {p.name for p in INIT_WORKFLOWS} == {"validate.yml", "advance.yml", "control.yml"}


def zizmor(*paths: Path | str) -> subprocess.CompletedProcess[str]:
    """zizmor's pedantic persona (every audit, every level), offline: the audits that ask
    GitHub's API are skipped (no network here)."""
    tool = shutil.which("zizmor")
    assert tool, "zizmor is not installed (pip install zizmor)"
    return subprocess.run([tool, "--offline", "--persona=pedantic", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def test_zizmor_pedantic_offline_finds_nothing_in_the_workflows_and_the_action() -> None:
    out = zizmor(*ALL, ACTION)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No findings" in out.stdout
    # each finding that is ignored is ignored on its line, with the reason beside it or above
    for path in (*ALL, ACTION):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if "zizmor: ignore[" in line:
                said = re.search(r"ignore\[[\w-]+\]\s+\S", line) or lines[i - 1].strip().startswith("#")
                assert said, f"{path.name}:{i + 1}: an ignored finding without its reason"


def test_zizmor_still_finds_what_the_hardening_is_about(tmp_path: Path) -> None:
    """The check can fail: an expression in a script and an unpinned action are findings."""
    bad = tmp_path / "bad.yml"
    bad.write_text((PROJECT / ".github/workflows/control.yml").read_text(encoding="utf-8")
                   .replace('case "$ACTION" in', 'case "${{ inputs.action }}" in')
                   .replace("actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2",
                            "actions/checkout@main"))
    out = zizmor(bad)
    assert out.returncode != 0
    assert "template-injection" in out.stdout and "unpinned-uses" in out.stdout


def check_jsonschema(schema: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("check-jsonschema")
    assert tool, "check-jsonschema is not installed"
    return subprocess.run([tool, "--builtin-schema", schema, *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def test_workflows_validate_against_the_github_schema() -> None:
    out = check_jsonschema("vendor.github-workflows", *ALL)
    assert out.returncode == 0, out.stdout + out.stderr


def test_action_validates_against_the_github_action_schema(tmp_path: Path) -> None:
    out = check_jsonschema("vendor.github-actions", ACTION)
    assert out.returncode == 0, out.stdout + out.stderr
    assert load(ACTION)["runs"]["using"] == "composite"
    # the schema does reject a broken action: the check can fail
    broken = tmp_path / "action.yml"
    broken.write_text(ACTION.read_text(encoding="utf-8").replace("shell: bash\n", "", 1))
    assert check_jsonschema("vendor.github-actions", broken).returncode != 0


def check_uses(text: str) -> None:
    """Every action pinned by a full commit SHA with its version beside it; the one exception
    is this repository's own action.yml (`./`), from the checkout of the commit that runs."""
    assert re.search(r"^\s*(?:- )?uses:", text, re.M), "no uses: line found"
    for line in text.splitlines():
        m = re.match(r"\s*(?:- )?uses:\s*(\S+)", line)  # not in comments
        if m and m[1] == "./":
            assert line.strip().startswith("uses: ./ # zizmor: ignore[self-repository]"), line
        elif m:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", m[1]), line
            assert re.search(r"# v\d+\.\d+\.\d+$", line), f"no version comment: {line}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_actions_pinned_no_target_trigger_no_expressions_in_shell(path: Path) -> None:
    doc = load(path)
    assert "pull_request_target" not in doc["on"]
    check_uses(path.read_text(encoding="utf-8"))
    for step in steps(doc):
        if "run" in step:
            assert "${{" not in step["run"], f"expression inside a shell script: {step['run']}"


def test_the_action_pins_what_it_uses_and_keeps_expressions_out_of_its_scripts() -> None:
    check_uses(ACTION.read_text(encoding="utf-8"))
    assert "./" not in [s.get("uses") for s in load(ACTION)["runs"]["steps"]]
    for step in load(ACTION)["runs"]["steps"]:
        if "run" in step:
            assert "${{" not in step["run"], step["name"]


def test_advance_schedule_concurrency_permissions_and_history() -> None:
    for path in (PROJECT / ".github/workflows/advance.yml",
                 PROJECT / "runner/templates/init/workflows/advance.yml"):
        doc = load(path)
        cron = doc["on"]["schedule"][0]["cron"]
        assert cron == "2-57/5 * * * *"  # every 5 minutes, never on the hour
        assert "workflow_dispatch" in doc["on"] and "push" in doc["on"]
        assert doc["concurrency"]["cancel-in-progress"] is False
        assert doc["permissions"] == {}
        job = doc["jobs"]["advance"]
        assert job["permissions"] == {"contents": "write"}
        checkout = steps(doc)[0]
        assert checkout["with"]["fetch-depth"] == 0
        runs = " ".join(s.get("run", "") for s in steps(doc))
        assert "rollout advance --push" in runs
        assert "rollout status --format markdown >> \"$GITHUB_STEP_SUMMARY\"" in runs
        # the flags are published to a branch applications read, not a workflow artifact
        assert "rollout advance --push --publish branch:rollout-published" in runs
        assert not any(s.get("uses", "").startswith("actions/upload-artifact@")
                       for s in steps(doc))
        assert ("https://raw.githubusercontent.com/${GITHUB_REPOSITORY}/rollout-published"
                in runs)


def test_rollback_issues_come_from_a_job_of_their_own_that_alone_writes_issues() -> None:
    for path in (PROJECT / ".github/workflows/advance.yml",
                 PROJECT / "runner/templates/init/workflows/advance.yml"):
        doc = load(path)
        assert set(doc["jobs"]) == {"advance", "issues"}
        advance, issues = doc["jobs"]["advance"], doc["jobs"]["issues"]
        assert "issues" not in advance["permissions"]
        assert issues["permissions"] == {"contents": "read", "issues": "write"}
        assert issues["needs"] == "advance"
        # it runs when the advance job failed because of a rollback (exit 4), and only then
        assert issues["if"] == "${{ !cancelled() && needs.advance.outputs.rolled_back != '' }}"
        assert advance["outputs"]["rolled_back"] == "${{ steps.advance.outputs.rolled_back }}"
        checkout = issues["steps"][0]
        assert checkout["with"]["persist-credentials"] is False
        assert checkout["with"]["ref"] == "${{ needs.advance.outputs.head }}"
        (run,) = [s for s in issues["steps"] if s.get("name") == "Open or update the issues"]
        assert run["env"]["ROLLED_BACK"] == "${{ needs.advance.outputs.rolled_back }}"
        assert run["run"] == 'rollout issue "$ROLLED_BACK"'


def test_control_passes_inputs_through_env_only() -> None:
    doc = load(PROJECT / ".github/workflows/control.yml")
    inputs = doc["on"]["workflow_dispatch"]["inputs"]
    assert inputs["action"]["options"] == ["pause", "resume", "rollback", "retry", "approve"]
    (apply,) = [s for s in steps(doc) if s.get("name") == "Apply"]
    assert apply["env"]["FLAG"] == "${{ inputs.flag }}"
    assert "$FLAG" in apply["run"] and "inputs." not in apply["run"]


def test_validate_comments_once_by_marker() -> None:
    doc = load(PROJECT / ".github/workflows/validate.yml")
    assert list(doc["on"]) == ["pull_request"]
    (comment,) = [s for s in steps(doc) if "github-script" in s.get("uses", "")]
    script = comment["with"]["script"]
    assert "<!-- rollout-plan -->" in script and "updateComment" in script
    # a plan step that failed (exit 2 or 3: nothing or half a plan written) must not
    # replace the last good comment with an empty one
    (plan,) = [s for s in steps(doc) if s.get("name") == "Plan"]
    assert f"steps.{plan['id']}.outcome == 'success'" in comment["if"]


def test_project_workflows_are_the_scaffolded_ones() -> None:
    """`rollout init` ships the workflows this project runs (it rewrites their install step:
    tests/surfaces/test_init.py); each installs through this repository's action.yml."""
    from runner.onboarding.scaffold import LOCAL_INSTALL

    for template in INIT_WORKFLOWS:
        mine = (PROJECT / ".github/workflows" / template.name).read_text(encoding="utf-8")
        assert mine == template.read_text(encoding="utf-8")
        assert mine.count(LOCAL_INSTALL) >= 1 and "pip install" not in mine
        installs = [s for s in steps(load(template)) if s.get("name") == "Install rollout-runner"]
        assert installs and all(s["uses"] == "./" for s in installs)


def _shim(tmp_path: Path) -> str:
    """`rollout` on PATH as pip installs it: a console script running this checkout."""
    import stat
    import sys

    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    shim = bindir / "rollout"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m runner \"$@\"\n")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return str(bindir)


def test_control_apply_script_runs_and_never_evaluates_its_inputs(
        example_repo: Path, bare_remote: Path, tmp_path: Path) -> None:
    """The Apply step's own script, run by bash with the inputs in env as Actions does."""
    import json
    import os

    from tests.conftest import cli_env, git, run_cli

    (example_repo / "logs").mkdir()
    (example_repo / "logs/metrics.json").write_text(json.dumps(
        {"error_rate": 0.1, "p95_latency_ms": 100, "request_count": 500}))
    assert run_cli(["advance", "--push", "--now", "2026-01-15T12:00:00Z"],
                   cwd=example_repo).returncode == 0
    doc = load(PROJECT / ".github/workflows/control.yml")
    (apply,) = [s for s in steps(doc) if s.get("name") == "Apply"]
    path = f"{_shim(tmp_path)}{os.pathsep}{os.environ['PATH']}"

    def run(flag: str, action: str, reason: str) -> subprocess.CompletedProcess[str]:
        env = cli_env({"PATH": path, "FLAG": flag, "ACTION": action, "REASON": reason,
                       "ROLLOUT_REQUESTED_BY": "octocat"})
        return subprocess.run(["bash", "-e", "-c", apply["run"]], cwd=example_repo, env=env,
                              capture_output=True, text=True, timeout=120)

    out = run("phase_4_deployment", "pause", "")
    assert out.returncode == 0, out.stdout + out.stderr
    pushed = git(bare_remote, "log", "-1", "--format=%s%n%(trailers:key=Rollout-Requested-By,"
                 "valueonly)", "main")
    assert pushed.splitlines() == ["rollout(phase_4_deployment): pause at 0%", "octocat"]
    # hostile inputs stay data: no command substitution, no option injection
    marker = tmp_path / "pwned"
    out = run(f"$(touch {marker})", "resume", f"`touch {marker}`")
    assert out.returncode != 0 and not marker.exists()
    out = run("phase_4_deployment", "rm -rf /", "x")
    assert out.returncode == 2 and "unknown action" in out.stdout
    out = run("--help", "resume", "x")
    assert out.returncode != 0 and "usage" not in out.stdout.lower()
    # a reason that looks like an option is the reason (--reason=VALUE): never a usage error
    for reason in ("-rf /", "--force"):
        out = run("phase_4_deployment", "resume" if reason == "-rf /" else "pause", reason)
        assert out.returncode == 0, out.stdout + out.stderr
        assert git(bare_remote, "log", "-1", "--format=%(trailers:key=Rollout-Reason,valueonly)",
                   "main").endswith(f"({' '.join(reason.split())})")


def test_a_persons_control_request_is_never_a_pending_run_the_scheduler_can_cancel() -> None:
    # GitHub Actions keeps at most one pending run per concurrency group and cancels it when
    # another queues: a control.yml request sharing advance.yml's group, queued behind a
    # running advance, would be cancelled by the next scheduled advance
    for folder in (PROJECT / ".github/workflows", PROJECT / "runner/templates/init/workflows"):
        control, advance = load(folder / "control.yml"), load(folder / "advance.yml")
        groups = [d.get("concurrency", {}).get("group") for d in
                  (control, *control["jobs"].values())]
        assert not any(groups), groups
        assert advance["concurrency"]["group"]


def test_advance_and_status_scripts_publish_to_the_branch_and_print_its_urls(
        example_repo: Path, bare_remote: Path, tmp_path: Path) -> None:
    """advance.yml's Advance and Status steps, run by bash as Actions runs them: the flags
    land on the remote's rollout-published branch and the summary names their raw URLs."""
    import json
    import os

    from tests.conftest import cli_env, git

    (example_repo / "logs").mkdir()
    (example_repo / "logs/metrics.json").write_text(json.dumps(
        {"error_rate": 0.1, "p95_latency_ms": 100, "request_count": 500}))
    doc = load(PROJECT / ".github/workflows/advance.yml")
    by_name = {s.get("name"): s for s in steps(doc)}
    output, summary = tmp_path / "output", tmp_path / "summary.md"
    env = cli_env({"PATH": f"{_shim(tmp_path)}{os.pathsep}{os.environ['PATH']}",
                   "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
                   "GITHUB_REPOSITORY": "octo/flags"})
    for name in ("Advance", "Status"):
        out = subprocess.run(["bash", "-e", "-c", by_name[name]["run"]], cwd=example_repo,
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (name, out.stdout + out.stderr)
    assert "status=0" in output.read_text()
    files = git(bare_remote, "ls-tree", "--name-only", "rollout-published").splitlines()
    assert sorted(files) == ["flags.flagd.json", "flags.json"]
    assert git(bare_remote, "merge-base", "main", "rollout-published", check=False) == ""
    text = summary.read_text()
    base = "https://raw.githubusercontent.com/octo/flags/rollout-published"
    assert f"{base}/flags.json" in text and f"{base}/flags.flagd.json" in text


def test_control_approve_records_the_workflows_actor(
        example_repo: Path, bare_remote: Path, tmp_path: Path) -> None:
    """The Apply step's `approve`: the approver is GITHUB_ACTOR as GitHub sets it, never an
    input, checked against the plan's approvers."""
    import json
    import os

    from tests.conftest import cli_env, git, run_cli

    (example_repo / "rollouts/phase_4_deployment.yaml").write_text(
        "flag: phase_4_deployment\nstrategy: custom\nwait: 5m\napprovers: [octocat]\n"
        "steps: [0, {percentage: 50, approval: true}, 100]\n"
        "gates: {error_rate: 1.0, request_count: 100}\n")
    git(example_repo, "commit", "-q", "-am", "an approval step")
    git(example_repo, "push", "-q", "origin", "main")
    (example_repo / "logs").mkdir()
    (example_repo / "logs/metrics.json").write_text(json.dumps(
        {"error_rate": 0.1, "p95_latency_ms": 100, "request_count": 500}))
    assert run_cli(["advance", "--push", "--now", "2026-01-15T12:00:00Z"],
                   cwd=example_repo).returncode == 0
    doc = load(PROJECT / ".github/workflows/control.yml")
    (apply,) = [s for s in steps(doc) if s.get("name") == "Apply"]
    path = f"{_shim(tmp_path)}{os.pathsep}{os.environ['PATH']}"

    def run(actor: str) -> subprocess.CompletedProcess[str]:
        env = cli_env({"PATH": path, "FLAG": "phase_4_deployment", "ACTION": "approve",
                       "REASON": "", "ROLLOUT_REQUESTED_BY": actor, "GITHUB_ACTIONS": "true",
                       "GITHUB_ACTOR": actor, "GITHUB_TRIGGERING_ACTOR": actor,
                       "GITHUB_RUN_ID": "4242", "GITHUB_WORKFLOW": "control",
                       "GITHUB_REPOSITORY": "octo/flags"})
        return subprocess.run(["bash", "-e", "-c", apply["run"]], cwd=example_repo, env=env,
                              capture_output=True, text=True, timeout=120)

    out = run("mallory")
    assert out.returncode == 1 and "not one of the approvers" in out.stderr
    out = run("octocat")
    assert out.returncode == 0, out.stdout + out.stderr
    pushed = git(bare_remote, "log", "-1", "--format=%s%n%(trailers:key=Rollout-Approved-By,"
                 "valueonly)", "main")
    assert pushed.splitlines() == ["rollout(phase_4_deployment): approve step 2 at 0%",
                                   "octocat"]


def test_the_documented_example_of_the_action_passes_the_same_checks(tmp_path: Path) -> None:
    """docs/workflows.md's full example workflow for another repository: zizmor's pedantic
    persona, GitHub's schema, and it uses inputs and outputs action.yml has."""
    text = (PROJECT / "docs/workflows.md").read_text(encoding="utf-8")
    start = text.index("A full example, the advance workflow")
    block = re.search(r"```yaml\n(.*?)```", text[start:], re.S)
    assert block
    example = tmp_path / "advance.yml"
    example.write_text(block[1])
    out = zizmor(example)
    assert out.returncode == 0 and "No findings" in out.stdout, out.stdout + out.stderr
    assert check_jsonschema("vendor.github-workflows", example).returncode == 0
    action = load(ACTION)
    (step,) = [s for s in steps(load(example)) if s.get("uses", "").startswith("rollout-runner/")]
    assert set(step["with"]) <= set(action["inputs"])
    used = set(re.findall(r"steps\.advance\.outputs\.([\w-]+)", block[1]))
    assert used and used <= set(action["outputs"])
