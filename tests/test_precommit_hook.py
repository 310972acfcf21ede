"""The published pre-commit hook, run by pre-commit itself as another repository would use it.

``pre-commit try-repo`` clones this checkout (with its uncommitted changes), builds the hook's
virtualenv and pip-installs the project into it from the package index, then runs the hook on
a temporary git repository. Building the environment takes a few seconds to a minute,
depending on the index; it is built once for this module.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_PARTS, PROJECT, cli_env, git

BAD_FLAG = "key: new_flag\ndescription: A flag.\nowner: test-team\nrisk: low\npercentage: 150\n"


def try_repo(repo: Path, home: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pre-commit", "try-repo", str(PROJECT), "rollout-validate", "--files", *files],
        cwd=repo, env=cli_env({"PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}),
        text=True, capture_output=True, timeout=600, check=False,
    )


@pytest.fixture(scope="module")
def hook_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def gitops_repo(tmp_path: Path) -> Path:
    root = tmp_path / "gitops"
    root.mkdir()
    for part in EXAMPLE_PARTS:
        src = PROJECT / part
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, root / part)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "flags")
    return root


def test_hook_manifest_publishes_rollout_validate() -> None:
    from runner.load.yamlsafe import load_text

    hooks = load_text((PROJECT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "rollout-validate")
    assert hook["entry"] == "rollout validate" and hook["language"] == "python"
    assert hook["pass_filenames"] is True


def test_hook_fails_on_a_bad_flag_with_file_and_line(gitops_repo: Path, hook_home: Path) -> None:
    bad = gitops_repo / "flags" / "new_flag.yaml"
    bad.write_text(BAD_FLAG)
    git(gitops_repo, "add", "flags/new_flag.yaml")
    out = try_repo(gitops_repo, hook_home, "flags/new_flag.yaml")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "rollout validate" in out.stdout and "Failed" in out.stdout
    assert "flags/new_flag.yaml:5:1: percentage: 150 is greater than the maximum of 100" in out.stdout

    # fixed, the same hook passes; files outside flags/ and rollouts/ are not its business
    bad.write_text(BAD_FLAG.replace("150", "15"))
    (gitops_repo / "notes.yaml").write_text("not: [a flag\n")
    git(gitops_repo, "add", "-A")
    out = try_repo(gitops_repo, hook_home, "flags/new_flag.yaml", "notes.yaml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Passed" in out.stdout


def test_hook_reports_a_reference_broken_elsewhere(gitops_repo: Path, hook_home: Path) -> None:
    # only the plan changes, but it is a second plan for a flag that has one
    (gitops_repo / "rollouts" / "p4_fast.yaml").write_text("flag: phase_4_deployment\nstrategy: fast\n")
    git(gitops_repo, "add", "-A")
    out = try_repo(gitops_repo, hook_home, "rollouts/p4_fast.yaml")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "rollouts/p4_fast.yaml:1:1: flag: 'phase_4_deployment' also has the rollout plan" in out.stdout
