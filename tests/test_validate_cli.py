"""``rollout validate``: formats, paths as pre-commit passes them, --repo, usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, run_cli

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


BAD_FLAG = """\
key: new_flag
description: A flag made for a test.
owner: test-team
risk: low
percentage: 150
"""


def test_valid_repository_in_every_format(example_repo: Path) -> None:
    text = run_cli(["validate"], cwd=example_repo)
    # the text format ends with a one-line summary; json and github print only what they did
    assert (text.returncode, text.stdout, text.stderr) == (0, "✓ 9 flags, 1 plan valid\n", "")
    as_json = run_cli(["validate", "--format", "json"], cwd=example_repo)
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == {"valid": True, "problems": []}
    github = run_cli(["validate", "--format", "github"], cwd=example_repo)
    assert (github.returncode, github.stdout) == (0, "")


def test_every_problem_is_reported_together(example_repo: Path) -> None:
    (example_repo / "flags" / "new_flag.yaml").write_text(BAD_FLAG + "requires: [ghost]\n")
    (example_repo / "rollouts" / "other.yaml").write_text("flag: other\nstrategy: safe\nwait: soon\n")
    out = run_cli(["validate"], cwd=example_repo)
    assert out.returncode == 1
    assert out.stdout.splitlines() == [
        "flags/new_flag.yaml:5:1: percentage: 150 is greater than the maximum of 100",
        "rollouts/other.yaml:3:1: wait: 'soon' is not a duration such as 300s, 5m, 1h30m or 2d",
        "✗ 2 problems in 10 flags, 2 plans",
    ]
    assert out.stderr == ""


def test_schema_and_semantic_problems_of_one_file_come_together(example_repo: Path) -> None:
    (example_repo / "flags" / "new_flag.yaml").write_text(BAD_FLAG.replace("new_flag", "old_flag"))
    out = run_cli(["validate"], cwd=example_repo)
    assert out.returncode == 1
    assert out.stdout.splitlines() == [
        "flags/new_flag.yaml:1:1: key: 'old_flag' differs from the file name 'new_flag' "
        "(rename the file to old_flag.yaml or change the key)",
        "flags/new_flag.yaml:5:1: percentage: 150 is greater than the maximum of 100",
        "✗ 2 problems in 10 flags, 1 plan",
    ]


def test_a_broken_prerequisite_is_not_also_reported_as_missing(example_repo: Path) -> None:
    # llm_integration_enabled requires phase_4_deployment: the broken file is the one problem
    p4 = example_repo / "flags" / "phase_4_deployment.yaml"
    p4.write_text(p4.read_text().replace("risk: high", "risk: huge"))
    out = run_cli(["validate"], cwd=example_repo)
    assert out.returncode == 1
    assert out.stdout.splitlines() == [
        "flags/phase_4_deployment.yaml:5:1: risk: 'huge' is not one of low, medium, high",
        "✗ 1 problem in 9 flags, 1 plan"]


def test_json_format(example_repo: Path) -> None:
    (example_repo / "flags" / "new_flag.yaml").write_text(BAD_FLAG)
    out = run_cli(["validate", "--format", "json"], cwd=example_repo)
    assert out.returncode == 1
    assert json.loads(out.stdout) == {"valid": False, "problems": [{
        "file": "flags/new_flag.yaml", "line": 5, "column": 1, "field": "percentage",
        "message": "150 is greater than the maximum of 100"}]}


def test_github_format_prints_annotations(example_repo: Path) -> None:
    (example_repo / "flags" / "new_flag.yaml").write_text(BAD_FLAG)
    out = run_cli(["validate", "--format", "github"], cwd=example_repo)
    assert out.returncode == 1
    assert out.stdout == (
        "::error file=flags/new_flag.yaml,line=5,col=1,title=percentage::"
        "flags/new_flag.yaml:5:1: percentage: 150 is greater than the maximum of 100\n")


def test_paths_limit_the_report_to_those_files(example_repo: Path) -> None:
    (example_repo / "flags" / "new_flag.yaml").write_text(BAD_FLAG)
    other = example_repo / "flags" / "otel_enabled.yaml"
    other.write_text(other.read_text().replace("risk: low", "risk: tiny"))
    out = run_cli(["validate", "flags/new_flag.yaml"], cwd=example_repo)
    assert out.returncode == 1
    assert [ln.split(":")[0] for ln in out.stdout.splitlines()] == [
        "flags/new_flag.yaml", "✗ 1 problem in 1 file"]
    clean = run_cli(["validate", "flags/orchestration_enabled.yaml"], cwd=example_repo)
    assert (clean.returncode, clean.stdout) == (0, "✓ 1 file valid\n")


def test_paths_still_check_references_across_the_repository(example_repo: Path) -> None:
    # pre-commit passes only the changed file; the cycle it closes is found from
    # aatc_system_enabled (which requires phase_4_deployment) and reported
    p4 = example_repo / "flags" / "phase_4_deployment.yaml"
    p4.write_text(p4.read_text() + "requires: [aatc_system_enabled]\n")
    out = run_cli(["validate", "flags/phase_4_deployment.yaml"], cwd=example_repo)
    assert out.returncode == 1
    assert "dependency cycle: aatc_system_enabled -> phase_4_deployment -> aatc_system_enabled" \
        in out.stdout
    # a second plan, passed alone, is reported against the first plan as well
    (example_repo / "rollouts" / "p4_fast.yaml").write_text("flag: phase_4_deployment\nstrategy: fast\n")
    out = run_cli(["validate", "rollouts/p4_fast.yaml"], cwd=example_repo)
    assert "rollouts/p4_fast.yaml:1:1: flag: 'phase_4_deployment' also has the rollout plan " \
        "rollouts/phase_4_deployment.yaml; one plan per flag" in out.stdout.splitlines()


def test_deleting_a_required_flag_is_caught_from_the_flag_that_requires_it(example_repo: Path) -> None:
    git(example_repo, "rm", "-q", "flags/phase_4_deployment.yaml")
    out = run_cli(["validate", "rollouts/phase_4_deployment.yaml"], cwd=example_repo)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert "rollouts/phase_4_deployment.yaml:4:1: flag: no flag 'phase_4_deployment' in the flags " \
        "folder" in lines
    assert any(ln.startswith("flags/llm_integration_enabled.yaml:") and
               "requires unknown flag 'phase_4_deployment'" in ln for ln in lines)


def test_repo_option_and_paths_relative_to_it(example_repo: Path, tmp_path: Path) -> None:
    (example_repo / "flags" / "new_flag.yaml").write_text(BAD_FLAG)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = run_cli(["validate", "--repo", str(example_repo)], cwd=elsewhere)
    assert out.returncode == 1
    assert out.stdout.startswith("flags/new_flag.yaml:5:1: percentage:")
    out = run_cli(["validate", "--repo", str(example_repo), "flags/otel_enabled.yaml"], cwd=elsewhere)
    assert (out.returncode, out.stdout) == (0, "✓ 1 file valid\n")


def test_folder_as_path(example_repo: Path) -> None:
    (example_repo / "flags" / "new_flag.yaml").write_text(BAD_FLAG)
    assert run_cli(["validate", "flags"], cwd=example_repo).returncode == 1
    assert run_cli(["validate", "rollouts"], cwd=example_repo).returncode == 0
    assert run_cli(["validate", "."], cwd=example_repo).returncode == 1
    (example_repo / "empty").mkdir()
    assert run_cli(["validate", "empty"], cwd=example_repo).returncode == 0


def test_yaml_11_words_stay_strings(example_repo: Path) -> None:
    (example_repo / "flags" / "mode.yaml").write_text(
        "key: mode\ndescription: A string flag.\nowner: me\nrisk: low\n"
        "variants:\n  off: 'no'\n  on: yes\n  y: n\ndefault_variant: off\nrollout_variant: on\n"
        "targeting:\n  rules:\n    - attribute: country\n      in: [NO, 'on']\n      variant: y\n")
    assert run_cli(["validate"], cwd=example_repo).returncode == 0
    from runner.load import load_repository

    flag = load_repository(example_repo).flags["mode"]
    assert dict(flag.variants) == {"off": "no", "on": "yes", "y": "n"}
    assert flag.targeting.rules[0].values == ("NO", "on")


def test_usage_errors_exit_2(example_repo: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    cases = [
        (["validate", "--format", "xml"], "invalid choice: 'xml'"),
        (["validate", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["validate", "flags/nope.yaml"], "flags/nope.yaml: no such file"),
        (["validate", "--repo", str(tmp_path / "missing")], "no such folder"),
        (["validate", str(tmp_path)], "not inside the repository"),
        (["validate", "--repo", str(tmp_path / "empty")], "not a Rollout Runner repository"),
    ]
    for args, words in cases:
        out = run_cli(args, cwd=example_repo)
        assert out.returncode == 2, (args, out.stderr)
        assert words in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr
        assert out.stdout == ""


def test_documented_examples_are_valid(example_repo: Path) -> None:
    import re
    import tomllib

    from tests.conftest import PROJECT

    doc = (PROJECT / "docs" / "validation.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    flag = next(b for b in blocks if "\nkey: checkout_redesign" in b)
    plan = next(b for b in blocks if "\nflag: phase_4_deployment" in b)
    (example_repo / "flags" / "checkout_redesign.yaml").write_text(flag)
    (example_repo / "flags" / "payments_v2.yaml").write_text(
        "key: payments_v2\ndescription: Payments.\nowner: payments\nrisk: low\n")
    (example_repo / "rollouts" / "phase_4_deployment.yaml").write_text(plan)
    out = run_cli(["validate"], cwd=example_repo)
    assert (out.returncode, out.stdout) == (0, "✓ 11 flags, 1 plan valid\n")
    config = tomllib.loads(re.findall(r"```toml\n(.*?)```", doc, re.S)[0])
    from runner.load.schema_errors import schema_findings

    assert schema_findings(config["tool"]["rollout"], "config") == []


#: A value of the wrong type for every key of [tool.rollout], and of its metrics table.
WRONG_CONFIG = [
    ('flags_dir = 5', "tool.rollout.flags_dir", "5 is an integer, expected string"),
    ('rollouts_dir = ["rollouts"]', "tool.rollout.rollouts_dir", "['rollouts'] is an array, expected string"),
    ('author_name = {first = "x"}', "tool.rollout.author_name", "is an object, expected string"),
    ('author_email = 1979-05-27', "tool.rollout.author_email", "expected string"),
    ('emergency_shutdown = "yes"', "tool.rollout.emergency_shutdown", "'yes' is a string, expected boolean"),
    ('metrics = 5', "tool.rollout.metrics", "5 is an integer, expected object"),
    ('metrics = {type = 5}', "tool.rollout.metrics.type", "5 is not one of file, prometheus, command"),
    ('metrics = {type = "file", path = 5}', "tool.rollout.metrics.path", "5 is an integer, expected string"),
    ('metrics = {type = "prometheus", url = "http://x", queries = 5}', "tool.rollout.metrics.queries",
     "5 is an integer, expected object"),
    ('metrics = {type = "prometheus", url = "http://x", timeout = inf}', "tool.rollout.metrics.timeout",
     "inf: not a finite number"),
    ('metrics = {type = "command", command = ["x"], timeout = 99999999999999999999}',
     "tool.rollout.metrics.timeout", "out of range (integers are 64-bit"),
]


def test_every_tool_rollout_key_of_a_wrong_type_is_a_problem(example_repo: Path) -> None:
    # tomllib hands over any type; each is one line naming the key, never exit 3
    for line, field, words in WRONG_CONFIG:
        (example_repo / "pyproject.toml").write_text(f'[tool.rollout]\n{line}\n')
        out = run_cli(["validate", "--format", "json"], cwd=example_repo)
        assert out.returncode == 1, (line, out.stderr)
        problems = json.loads(out.stdout)["problems"]
        assert [p for p in problems if p["file"] == "pyproject.toml" and p["field"] == field
                and words in p["message"]], (line, problems)
    for text, field in (("tool = 5\n", "tool"), ("tool = [1]\n", "tool"),
                        ("[tool]\nrollout = 5\n", "tool.rollout"),
                        ('tool.rollout = "x"\n', "tool.rollout")):
        (example_repo / "pyproject.toml").write_text(text)
        for args in (["validate"], ["advance", "--dry-run"], ["status"], ["history"]):
            out = run_cli(args, cwd=example_repo)
            assert out.returncode in (0, 1), (text, args, out.stderr)  # history reads no config
            assert "Traceback" not in out.stderr and "internal error" not in out.stderr
        out = run_cli(["validate"], cwd=example_repo)
        assert out.stdout.startswith(f"pyproject.toml:{text.count(chr(10))}:1: {field}: "), out.stdout


def test_a_huge_echoed_value_stays_one_short_line(example_repo: Path) -> None:
    # a 900 KB value of the wrong type, a key of 100,000 characters:
    # each problem is one line of at most a few hundred characters
    huge = "[" + ", ".join(["'" + "v" * 60 + "'"] * 14_000) + "]"
    (example_repo / "flags" / "new_flag.yaml").write_text(
        f"key: new_flag\ndescription: {huge}\nowner: a\nrisk: low\n? {'k' * 100_000}\n: 1\n")
    out = run_cli(["validate"], cwd=example_repo)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert len(lines) == 3, lines  # the description, the unknown key, the summary
    assert lines.pop() == "✗ 2 problems in 10 flags, 1 plan"
    assert all(len(line) < 600 for line in lines), [len(line) for line in lines]
    assert lines[0].startswith("flags/new_flag.yaml:2:1: description: ['vvvvvvvvv")
    assert lines[0].endswith("is an array, expected string")
    assert lines[1].startswith("flags/new_flag.yaml:5:3: kkkkk")
    assert "…" in lines[1]


def test_a_rate_that_looks_like_a_fraction_is_a_warning_not_a_problem(example_repo: Path) -> None:
    plan = example_repo / "rollouts" / "phase_4_deployment.yaml"
    text = plan.read_text()
    line = text.splitlines().index("  error_rate: 1.0          # percent") + 1
    plan.write_text(text.replace("error_rate: 1.0 ", "error_rate: 0.01")
                    + "compare:\n  error_rate: {max_increase: 0.005}\n")
    out = run_cli(["validate"], cwd=example_repo)
    assert out.returncode == 0, out.stdout
    assert out.stdout.splitlines() == [
        f"rollouts/phase_4_deployment.yaml:{line}:3: warning: gates.error_rate: 0.01 means "
        "0.01 % (gates are in percent: 1 means 1 %); if you meant 1 %, write 1",
        f"rollouts/phase_4_deployment.yaml:{text.count(chr(10)) + 2}:16: warning: "
        "compare.error_rate.max_increase: 0.005 means 0.005 percentage points; if you meant "
        "0.5 points, write 0.5",
        "✓ 9 flags, 1 plan valid, 2 warnings",
    ]
    github = run_cli(["validate", "--format", "github"], cwd=example_repo)
    assert github.returncode == 0
    assert github.stdout.startswith(
        f"::warning file=rollouts/phase_4_deployment.yaml,line={line},col=3,"
        "title=gates.error_rate::")
    as_json = run_cli(["validate", "--format", "json"], cwd=example_repo)
    assert json.loads(as_json.stdout) == {"valid": True, "problems": []}
    # a strict gate of 0.5 % is no fraction: nothing to say
    plan.write_text(text.replace("error_rate: 1.0 ", "error_rate: 0.5 "))
    assert run_cli(["validate"], cwd=example_repo).stdout == "✓ 9 flags, 1 plan valid\n"


def test_the_summary_counts_problems_flags_and_plans(example_repo: Path) -> None:
    (example_repo / "flags" / "new_flag.yaml").write_text(BAD_FLAG.replace("risk: low", "risk: hihg"))
    out = run_cli(["validate"], cwd=example_repo)
    assert out.returncode == 1
    assert out.stdout.splitlines() == [
        "flags/new_flag.yaml:4:1: risk: 'hihg' is not one of low, medium, high; did you mean high?",
        "flags/new_flag.yaml:5:1: percentage: 150 is greater than the maximum of 100",
        "✗ 2 problems in 10 flags, 1 plan",
    ]
    plan = example_repo / "rollouts" / "phase_4_deployment.yaml"
    plan.write_text(plan.read_text().replace("flag: phase_4_deployment", "flag: phase_4_deploymnet"))
    out = run_cli(["validate", "rollouts/phase_4_deployment.yaml"], cwd=example_repo)
    assert out.stdout.splitlines() == [
        "rollouts/phase_4_deployment.yaml:4:1: flag: no flag 'phase_4_deploymnet' in the flags "
        "folder; did you mean phase_4_deployment?",
        "✗ 1 problem in 1 file",
    ]


def test_the_summary_without_check_marks_for_a_console_that_cannot_print_them() -> None:
    from runner.load.problems import Problem
    from runner.review.validate_text import summary

    p = Problem("flags/a.yaml", 1, 1, "risk", "bad")
    assert summary([], [], 1, 0) == "✓ 1 flag, 0 plans valid"
    assert summary([p], [p], 2, 1, ascii_only=True) == "FAILED: 1 problem in 2 flags, 1 plan, 1 warning"
    assert summary([], [], 9, 2, files=3, ascii_only=True) == "OK: 3 files valid"
