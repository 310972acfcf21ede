"""Publications only move forward (issue 17): every publication carries its source commit
and generation, ``publish`` never replaces a publication whose source commit is not an
ancestor of its own (a newer one in place: a warning, exit 0; a diverged history: exit 1),
and the targets that would write into the repository itself are refused up front."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli_env, git, run_cli
from tests.runner.helpers import advance, write_metrics

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess

PLAIN = {"GITHUB_ACTIONS": ""}
ACTIONS = {"GITHUB_ACTIONS": "true"}


def _doc(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _pct(doc: dict[str, Any]) -> float:
    return doc["flags"]["phase_4_deployment"]["rollout"]["percentage"]


def _two_commits(repo: Path, tmp_path: Path) -> tuple[str, str, Path]:
    """``repo`` at a newer commit (5 %), and a worktree at its ancestor (0 %), sharing the
    object store: (older, newer, the worktree)."""
    write_metrics(repo)
    assert advance(repo, 0).returncode == 0
    older = git(repo, "rev-parse", "HEAD")
    assert advance(repo, 5).returncode == 0
    newer = git(repo, "rev-parse", "HEAD")
    assert older != newer
    old_tree = tmp_path / "old"
    git(repo, "worktree", "add", "-q", "--detach", str(old_tree), older)
    return older, newer, old_tree


def test_a_publication_carries_its_generation_and_build_none(
        example_repo: Path, tmp_path: Path) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    out = run_cli(["publish", "--to", f"dir:{tmp_path / 'pub'}", "branch:rollout-published"],
                  cwd=example_repo)
    assert out.returncode == 0, out.stderr
    head = git(example_repo, "rev-parse", "HEAD")
    gen = int(git(example_repo, "rev-list", "--count", "--first-parent", head))
    native, flagd = _doc(tmp_path / "pub/flags.json"), _doc(tmp_path / "pub/flags.flagd.json")
    assert (native["source_commit"], native["generation"]) == (head, gen)
    assert (flagd["metadata"]["sourceCommit"], flagd["metadata"]["generation"]) == (head, gen)
    on_branch = json.loads(git(example_repo, "show", "rollout-published:flags.json"))
    assert on_branch["generation"] == gen
    # the digest covers what is served, not the stamp
    from runner.evaluate.artifact import content_digest, document_content
    assert native["digest"] == content_digest(document_content(native))
    # rollout build: no generation
    built = run_cli(["build"], cwd=example_repo)
    assert built.returncode == 0 and "generation" not in built.stdout
    built = run_cli(["build", "--format", "flagd"], cwd=example_repo)
    assert built.returncode == 0 and "generation" not in built.stdout
    # a commit that changes nothing served keeps the file, its commit and its generation
    (example_repo / "NOTES.md").write_text("unrelated\n")
    git(example_repo, "add", "NOTES.md")
    git(example_repo, "commit", "-qm", "unrelated")
    before = (tmp_path / "pub/flags.json").read_bytes()
    out = run_cli(["publish", "--to", f"dir:{tmp_path / 'pub'}"], cwd=example_repo)
    assert out.returncode == 0 and "unchanged" in out.stdout, out.stdout + out.stderr
    assert (tmp_path / "pub/flags.json").read_bytes() == before


@pytest.mark.parametrize("kind", ["dir", "file", "branch"])
def test_an_older_commit_never_replaces_a_newer_publication(
        example_repo: Path, tmp_path: Path, kind: str) -> None:
    older, newer, old_tree = _two_commits(example_repo, tmp_path)
    target = {"dir": f"dir:{tmp_path / 'pub'}", "file": f"file:{tmp_path / 'one.json'}",
              "branch": "branch:rollout-published"}[kind]

    def served() -> bytes:
        if kind == "branch":
            return git(example_repo, "show", "rollout-published:flags.json").encode()
        path = tmp_path / ("pub/flags.json" if kind == "dir" else "one.json")
        return path.read_bytes()

    out = run_cli(["publish", "--to", target], cwd=example_repo)
    assert out.returncode == 0 and "published" in out.stdout, out.stdout + out.stderr
    before = served()
    tip = git(example_repo, "rev-parse", "rollout-published") if kind == "branch" else None
    for env, prefix in ((PLAIN, "warning: "), (ACTIONS, "::warning title=not published::")):
        out = run_cli(["publish", "--to", target], cwd=old_tree, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
        assert not any(line.startswith("published") for line in out.stdout.splitlines())
        (line,) = out.stdout.splitlines()
        assert line.startswith(prefix) and "a newer publication is in place" in line, line
        assert newer[:12] in line and older[:12] in line
        assert served() == before  # nothing written
    if tip is not None:
        assert git(example_repo, "rev-parse", "rollout-published") == tip
    # the newer commit publishing again: unchanged, no warning
    out = run_cli(["publish", "--to", target], cwd=example_repo, env=PLAIN)
    assert out.returncode == 0 and "unchanged" in out.stdout and "warning" not in out.stdout


def test_a_diverged_history_is_an_error_and_nothing_is_written(
        example_repo: Path, tmp_path: Path) -> None:
    older, _newer, old_tree = _two_commits(example_repo, tmp_path)
    # a commit on the older one that the newer one does not have: neither is an ancestor
    flag = old_tree / "flags/otel_enabled.yaml"
    flag.write_text(flag.read_text().replace("enabled: true", "enabled: false"))
    git(old_tree, "commit", "-qam", "a side history")
    side = git(old_tree, "rev-parse", "HEAD")
    targets = [f"dir:{tmp_path / 'pub'}", "branch:rollout-published"]
    assert run_cli(["publish", "--to", *targets], cwd=example_repo).returncode == 0
    before = (tmp_path / "pub/flags.json").read_bytes()
    tip = git(example_repo, "rev-parse", "rollout-published")
    out = run_cli(["publish", "--to", *targets], cwd=old_tree, env=PLAIN)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.count("the histories diverged") == 2, out.stderr
    assert side[:12] in out.stderr and "published" not in out.stdout
    assert (tmp_path / "pub/flags.json").read_bytes() == before
    assert git(example_repo, "rev-parse", "rollout-published") == tip
    assert older  # the worktree started there


def test_a_publication_without_a_generation_is_replaced_as_before(
        example_repo: Path, tmp_path: Path) -> None:
    """Hand-written files, ``rollout build`` output, a 0.2 publication: no generation, no
    order to keep; the first publication with one replaces them."""
    pub = tmp_path / "pub"
    pub.mkdir()
    built = run_cli(["build", "--source-commit", "f" * 40], cwd=example_repo)
    assert built.returncode == 0, built.stderr
    doc = json.loads(built.stdout)
    doc["flags"]["phase_4_deployment"]["enabled"] = False
    (pub / "flags.json").write_text(json.dumps(doc))
    (pub / "flags.flagd.json").write_text("{}")
    out = run_cli(["publish", "--to", f"dir:{pub}"], cwd=example_repo)
    assert out.returncode == 0 and f"published dir:{pub}" in out.stdout, out.stdout + out.stderr
    assert _doc(pub / "flags.json")["generation"] == 1


def test_an_unknown_commit_in_place_is_fetched_before_it_is_judged(
        example_repo: Path, bare_remote: Path, tmp_path: Path) -> None:
    """A stale clone does not hold the commit the publication in place was made at: it is
    fetched from the remote; a commit nobody can give is never overwritten."""
    write_metrics(example_repo)
    stale = tmp_path / "stale"
    git(tmp_path, "clone", "-q", str(bare_remote), str(stale))
    assert advance(example_repo, 0, "--push").returncode == 0
    pub = tmp_path / "pub"
    assert run_cli(["publish", "--to", f"dir:{pub}"], cwd=example_repo).returncode == 0
    newer = git(example_repo, "rev-parse", "HEAD")
    assert git(stale, "cat-file", "-e", newer, check=False) == ""
    assert subprocess.run(["git", "cat-file", "-e", newer], cwd=stale).returncode != 0
    out = run_cli(["publish", "--to", f"dir:{pub}"], cwd=stale, env=PLAIN)
    assert out.returncode == 0 and out.stdout.startswith("warning: "), out.stdout + out.stderr
    # a commit in place that no remote gives: an error, nothing written
    doc = _doc(pub / "flags.json")
    doc["source_commit"] = "e" * 40
    (pub / "flags.json").write_text(json.dumps(doc))
    before = (pub / "flags.json").read_bytes()
    out = run_cli(["publish", "--to", f"dir:{pub}"], cwd=example_repo, env=PLAIN)
    assert out.returncode == 1 and "cannot tell whether it is newer" in out.stderr, out.stderr
    assert (pub / "flags.json").read_bytes() == before


def test_twenty_racing_publishers_from_two_commits_leave_the_newer_pair(
        example_repo: Path, tmp_path: Path) -> None:
    """The issue's race, as real processes: 10 publishers at the older commit and 10 at the
    newer one, all at once, to one folder. The newer pair always ends in place, whole."""
    older, newer, old_tree = _two_commits(example_repo, tmp_path)
    for round_ in range(2):
        pub = tmp_path / f"pub{round_}"
        if round_:  # the second round starts from the older pair in place
            assert run_cli(["publish", "--to", f"dir:{pub}"], cwd=old_tree).returncode == 0
        procs = [subprocess.Popen(
            [sys.executable, "-m", "runner", "publish", "--to", f"dir:{pub}"],
            cwd=old_tree if i % 2 else example_repo, env=cli_env(PLAIN), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(20)]
        results = [(*p.communicate(timeout=180), p.returncode) for p in procs]
        assert all(rc == 0 for _, _, rc in results), results
        native, flagd = _doc(pub / "flags.json"), _doc(pub / "flags.flagd.json")
        assert native["source_commit"] == newer == flagd["metadata"]["sourceCommit"], results
        assert native["generation"] == flagd["metadata"]["generation"]
        assert _pct(native) == 5
        assert sorted(os.listdir(pub)) == ["flags.flagd.json", "flags.flagd.json.gz",
                                           "flags.json", "flags.json.gz"]  # no temporary
        # every older publisher either came first or was told a newer one is in place
        for (stdout, _, _), i in zip(results, range(20), strict=True):
            if i % 2:
                assert stdout.startswith(("published", "warning: ", f"dir:{pub} unchanged")), stdout
    assert older


# --- targets that would write into the repository itself -----------------------------------


def test_targets_inside_the_repository_are_refused_before_anything_is_done(
        example_repo: Path, tmp_path: Path) -> None:
    (example_repo / "public").mkdir()
    (example_repo / "public" / "flags.json").write_text("{}\n")
    git(example_repo, "add", "public/flags.json")
    git(example_repo, "commit", "-qm", "a tracked artifact")
    link = tmp_path / "into-git"
    link.symlink_to(example_repo / ".git")
    head = git(example_repo, "rev-parse", "HEAD")
    cases = {
        "dir:.git/hooks": "inside a .git folder",
        ".git/flags.json": "inside a .git folder",
        f"dir:{link}": "inside a .git folder",
        "dir:flags": "flags folder",
        "dir:rollouts/published": "rollouts folder",
        "file:rollouts/flags.json": "rollouts folder",
        "file:pyproject.toml": "tracks",
        "file:public/flags.json": "tracks",
        "dir:public": "tracks",
    }
    for target, why in cases.items():
        for command in (["publish", "--to", target],
                        ["advance", "--now", "2026-01-15T12:00:00Z", "--publish", target]):
            out = run_cli(command, cwd=example_repo)
            assert out.returncode == 2, (target, out.stdout, out.stderr)
            assert why in out.stderr, (target, out.stderr)
    assert git(example_repo, "rev-parse", "HEAD") == head  # advance did not run
    assert git(example_repo, "status", "--porcelain") == ""
    # an untracked folder in the working tree is a folder like any other
    out = run_cli(["publish", "--to", "dir:site"], cwd=example_repo)
    assert out.returncode == 0, out.stderr


def test_targets_that_differ_only_in_case_or_hold_a_tracked_signature_are_refused(
        example_repo: Path) -> None:
    """Where case does not count (macOS, Windows: GitHub's runners among them) ``.GIT`` is
    ``.git``, ``Flags`` the flags folder, ``MAIN`` the checked-out branch; and the signature
    file a signed publication writes beside the others is a file too."""
    (example_repo / "keep").mkdir()
    (example_repo / "keep" / "flags.sig").write_text("a tracked file\n")
    (example_repo / "keep" / "a.json.sig").write_text("a tracked file\n")
    git(example_repo, "add", "keep")
    git(example_repo, "commit", "-qm", "tracked files named like signatures")
    branch = git(example_repo, "symbolic-ref", "--short", "HEAD")
    refs = git(example_repo, "for-each-ref")
    cases = {
        "dir:.GIT/hooks": "inside a .git folder",
        "file:.Git/flags.json": "inside a .git folder",
        "dir:FLAGS": "flags folder",
        "file:Rollouts/flags.json": "rollouts folder",
        "file:PYPROJECT.toml": "tracks",
        "dir:keep": "keep/flags.sig is a file the repository tracks",
        "file:keep/a.json": "keep/a.json.sig is a file the repository tracks",
        "file:keep/flags.json": "keep/flags.sig is a file the repository tracks",
        f"branch:{branch.upper()}": "checked out here",
    }
    for target, why in cases.items():
        out = run_cli(["publish", "--to", target], cwd=example_repo)
        assert out.returncode == 2, (target, out.stdout, out.stderr)
        assert why in out.stderr, (target, out.stderr)
    assert git(example_repo, "status", "--porcelain", "--ignored") == ""
    assert git(example_repo, "for-each-ref") == refs


@pytest.mark.parametrize("name", ["HEAD", "@", "origin/main", "refs/heads/x", "main..x",
                                  "-x", "x.lock", "@{-1}", "HEAD/x"])
def test_branch_names_are_checked_as_git_does(example_repo: Path, name: str) -> None:
    git(example_repo, "remote", "add", "origin", "/nonexistent")
    refs = git(example_repo, "for-each-ref")
    out = run_cli(["publish", "--to", f"branch:{name}"], cwd=example_repo)
    assert out.returncode == 2, out.stdout + out.stderr
    assert git(example_repo, "for-each-ref") == refs


def test_a_remote_s_name_is_refused_whatever_the_remote_is_called(example_repo: Path) -> None:
    git(example_repo, "remote", "add", "upstream", "/nonexistent")
    out = run_cli(["publish", "--to", "branch:upstream/flags"], cwd=example_repo)
    assert out.returncode == 2 and "remote upstream" in out.stderr
    out = run_cli(["publish", "--to", "branch:flags/published"], cwd=example_repo)
    assert out.returncode == 0, out.stderr
