"""Releasing: the version in one place and everywhere the same, the release workflow's shape
(only the publishing job can mint a token, and it runs none of this project's code), and its
tag check run by bash as Actions would."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from runner import REPOSITORY, __version__
from runner.load.yamlsafe import load_text
from tests.conftest import PROJECT, cli_env

RELEASE = PROJECT / ".github/workflows/release.yml"
VERSION = re.compile(r"^## \[(\d+\.\d+\.\d+)\](?: - (.+))?$", re.M)


def release() -> dict[str, Any]:
    doc = load_text(RELEASE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def github_glob(pattern: str) -> re.Pattern[str]:
    """A branch/tag filter as GitHub reads `*` (any characters but `/`) and `**`."""
    out = ""
    for part in re.split(r"(\*\*|\*)", pattern):
        out += {"**": ".*", "*": "[^/]*"}.get(part, re.escape(part))
    return re.compile(out)


def test_the_version_is_the_same_everywhere() -> None:
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    # one place: the metadata reads runner/__init__.py
    assert "version" not in pyproject["project"]
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["hatch"]["version"] == {"path": "runner/__init__.py"}
    # the changelog's newest release is this version
    changelog = (PROJECT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = VERSION.findall(changelog)
    assert releases[0][0] == __version__, releases[0]
    assert ("0.1.0", "2026-11-27") in releases
    for version, date in releases[1:]:  # every earlier release is dated
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date), version
    # a new repository's pre-commit config names this version's tag, the action its major tag
    from runner.onboarding.scaffold import ACTION, TAG, planned_files

    assert f"v{__version__}" == TAG
    assert f"{REPOSITORY}@v{__version__.split('.')[0]}" == ACTION
    files = {p.target.name: p.content.decode() for p in planned_files(Path("/new"))}
    assert f"    rev: {TAG}\n" in files[".pre-commit-config.yaml"]
    assert f"repo: https://github.com/{REPOSITORY}\n" in files[".pre-commit-config.yaml"]
    # the hook manifest's example and the project's URLs say the same
    hooks = (PROJECT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert f"repo: https://github.com/{REPOSITORY}\n" in hooks and f"rev: {TAG}\n" in hooks
    for url in pyproject["project"]["urls"].values():
        assert url.startswith(f"https://github.com/{REPOSITORY}/") or \
            url == f"https://github.com/{REPOSITORY}"


def test_release_runs_on_version_tags_only() -> None:
    doc = release()
    assert list(doc["on"]) == ["push"] and list(doc["on"]["push"]) == ["tags"]
    (pattern,) = doc["on"]["push"]["tags"]
    rule = github_glob(pattern)
    assert rule.fullmatch(f"v{__version__}") and rule.fullmatch("v1.10.0")
    # the major tag moved to each release must not start a release of its own
    assert not rule.fullmatch("v0") and not rule.fullmatch("v1")


def test_only_the_publishing_job_can_mint_a_token_and_it_runs_no_code_of_ours() -> None:
    doc = release()
    assert doc["permissions"] == {}
    jobs = doc["jobs"]
    assert set(jobs) == {"build", "publish"}
    build, publish = jobs["build"], jobs["publish"]
    assert build["permissions"] == {"contents": "read"}
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["needs"] == "build"
    assert publish["environment"]["name"] == "pypi"
    # no checkout, no shell: it downloads what build made and hands it to PyPI's action
    uses = [s["uses"].split("@")[0] for s in publish["steps"]]
    assert uses == ["actions/download-artifact", "pypa/gh-action-pypi-publish"]
    assert not any("run" in s for s in publish["steps"])
    (publisher,) = [s for s in publish["steps"] if "pypi-publish" in s["uses"]]
    assert "with" not in publisher  # trusted publishing: no password, no token input
    (upload,) = [s for s in build["steps"] if "upload-artifact" in s.get("uses", "")]
    (download,) = [s for s in publish["steps"] if "download-artifact" in s["uses"]]
    assert upload["with"]["name"] == download["with"]["name"] == "dist"
    assert upload["with"]["path"] == download["with"]["path"] == "dist/"
    # the build job builds both kinds of distribution
    runs = "\n".join(s.get("run", "") for s in build["steps"])
    assert "python -m build\n" in runs
    checkout = build["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["persist-credentials"] is False


@pytest.fixture
def tag_check(tmp_path: Path) -> Any:
    """The build job's tag check, run by bash in a copy of the files it reads."""
    (step,) = [s for s in release()["jobs"]["build"]["steps"]
               if s.get("name", "").startswith("The tag is this version")]
    assert step["env"] == {"TAG": "${{ github.ref_name }}"}
    (tmp_path / "runner").mkdir()
    shutil.copy(PROJECT / "runner/__init__.py", tmp_path / "runner/__init__.py")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    python = bindir / "python"  # setup-python's `python`
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    script = tmp_path / "check.sh"
    script.write_text(step["run"])

    def run(tag: str, changelog: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "CHANGELOG.md").write_text(changelog)
        env = cli_env({"TAG": tag, "PATH": f"{bindir}:/usr/bin:/bin", "PYTHONPATH": ""})
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    return run


def test_the_tag_must_be_this_version_and_the_changelog_must_date_it(tag_check: Any) -> None:
    dated = f"# Changelog\n\n## [{__version__}] - 2026-12-24\n\n- things\n"
    assert tag_check(f"v{__version__}", dated).returncode == 0
    for tag in ("v9.9.9", __version__, f"v{__version__}rc1", "v0"):
        out = tag_check(tag, dated)
        assert out.returncode == 1 and "::error title=release::tag" in out.stdout, tag
    undated = dated.replace("2026-12-24", "Unreleased")
    out = tag_check(f"v{__version__}", undated)
    assert out.returncode == 1 and "CHANGELOG.md has no dated section" in out.stdout
    # a dot in the version is a dot, not any character
    other = dated.replace(f"[{__version__}]", f"[{__version__.replace('.', 'x')}]")
    assert tag_check(f"v{__version__}", other).returncode == 1
    # a hostile tag name is quoted on the one line of the error
    out = tag_check("v1$(id)\n::warning::x", dated)
    assert out.returncode == 1 and len(out.stdout.splitlines()) == 1
