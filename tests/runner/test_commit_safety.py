"""A runner commit touches only state files: quoted paths, refused identities, the built
commits checked before the branch moves; a detached HEAD and a stale index.lock are clear
errors, and a failure after the branch moved says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runner.git import Git, GitError
from runner.load import check_repository
from runner.reconcile import commit as protocol
from runner.reconcile import crashpoints
from runner.reconcile.commit import CommitSpec, FileChange, check_identity, commit
from tests.conftest import cli_env, git
from tests.runner.helpers import (
    STATE,
    advance,
    at,
    is_clean,
    rollout,
    state,
    subjects,
    write_metrics,
)

CONTROLS = [chr(c) for c in (*range(1, 0x20), 0x7F)]
KEYWORDS = ("commit refs/heads/main", "M 100644 inline pyproject.toml", "D pyproject.toml",
            "from HEAD~1", "data 5", "mark :1", "reset refs/heads/main", "done", "checkpoint",
            "deleteall", "author x <y> 0 +0000", "R a b", "C a b", "N inline :1", "ls \"x\"",
            "feature done", "progress x", "get-mark :1", "cat-blob HEAD")
NASTY = ["\"quoted\"", "back\\slash", " lead", "trail ", "é", "a b", *CONTROLS,
         *(f"x\n{k}\n" for k in KEYWORDS)]


def tree(repo: Path, rev: str = "HEAD") -> set[str]:
    out = subprocess.run(["git", "ls-tree", "-r", "-z", "--name-only", rev], cwd=repo,
                         capture_output=True, check=True).stdout.decode()  # CR kept
    return {p for p in out.split("\0") if p}


def test_every_path_reaches_fast_import_quoted(example_repo: Path) -> None:
    g = Git.open(example_repo)
    before = tree(example_repo)
    paths = [f"rollouts/{n}.state.json" for n in NASTY]
    specs = [CommitSpec(f"commit {i}\n", (FileChange(p, b"{}\n"),)) for i, p in enumerate(paths)]
    shas = commit(g, specs, ("bot", "bot@example.com"), when=1_700_000_000)
    assert len(shas) == len(paths)
    assert tree(example_repo) == before | set(paths)  # nothing else added or removed
    for sha, p in zip(shas, paths, strict=True):
        out = subprocess.run(["git", "diff-tree", "-r", "-z", "--name-only", "--no-commit-id",
                              sha], cwd=example_repo, capture_output=True).stdout.decode()
        assert out.split("\0")[:-1] == [p]
    deletes = [CommitSpec("rm\n", tuple(FileChange(p, None) for p in paths))]
    commit(g, deletes, ("bot", "bot@example.com"), when=1_700_000_001)
    assert tree(example_repo) == before


@pytest.mark.parametrize("bad", ["<", ">", "\n", *CONTROLS, "\x85"])
def test_identities_that_git_could_misread_are_refused(bad: str) -> None:
    assert check_identity(f"a{bad}b", "the author name") is not None
    assert check_identity("Zoë Bot [bot]", "the author name") is None


def test_commit_refuses_a_bad_identity_before_writing(example_repo: Path) -> None:
    head = git(example_repo, "rev-parse", "HEAD")
    with pytest.raises(GitError, match="author email"):
        commit(Git.open(example_repo), [CommitSpec("x\n", (FileChange(STATE, b"{}\n"),))],
               ("bot", "b@x>\ncommitter evil <e> 0 +0000"))
    assert git(example_repo, "rev-parse", "HEAD") == head


def test_bad_identities_stop_the_run_naming_where_they_are_set(example_repo: Path) -> None:
    write_metrics(example_repo)
    head = git(example_repo, "rev-parse", "HEAD")
    for var, value in (("ROLLOUT_AUTHOR_NAME", "bot\nM 100644 inline x"),
                       ("ROLLOUT_AUTHOR_EMAIL", "a>b"), ("ROLLOUT_AUTHOR_NAME", "a\x1fb")):
        out = advance(example_repo, 0, env={var: value})
        assert out.returncode == 1, out.stderr
        assert f"${var}" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    pyproject = example_repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        "[tool.rollout]", '[tool.rollout]\nauthor_name = "bot <evil@x>"', 1))
    git(example_repo, "commit", "-q", "-am", "a bad author")
    head = git(example_repo, "rev-parse", "HEAD")
    out = advance(example_repo, 0)
    assert out.returncode == 1
    assert "[tool.rollout] author_name in pyproject.toml" in out.stderr
    assert git(example_repo, "rev-parse", "HEAD") == head and is_clean(example_repo)


def test_unsafe_plan_and_flag_file_names_are_problems(example_repo: Path) -> None:
    plan = (example_repo / "rollouts/phase_4_deployment.yaml").read_text()
    for i, name in enumerate(NASTY[:12] + NASTY[-3:] + ["-dash", "_under"]):
        if name in ("é",):
            continue
        try:
            (example_repo / "rollouts" / f"{name}.yaml").write_text(plan)
            (example_repo / "flags" / f"{name}.yaml").write_text("key: x\n")
        except OSError:
            continue
        found = check_repository(example_repo).problems
        assert any("file name not allowed" in p.message for p in found), name
        assert all("\n" not in str(p) for p in found)
        (example_repo / "rollouts" / f"{name}.yaml").unlink()
        (example_repo / "flags" / f"{name}.yaml").unlink()
        assert i >= 0
    # a non-ASCII name is fine
    (example_repo / "rollouts/é_plan.yaml").write_text(plan.replace(
        "flag: phase_4_deployment", "flag: orchestration_enabled"))
    assert not [p for p in check_repository(example_repo).problems
                if "file name" in p.message]


def test_a_plan_name_with_fast_import_commands_writes_nothing(example_repo: Path) -> None:
    plan = (example_repo / "rollouts/phase_4_deployment.yaml").read_text()
    evil = "x\nD pyproject.toml\nM 100644 inline pyproject.toml\ndata 3\nabc\n"
    (example_repo / "rollouts" / f"{evil}.yaml").write_text(plan.replace(
        "flag: phase_4_deployment", "flag: orchestration_enabled"))
    git(example_repo, "add", "-A")
    git(example_repo, "commit", "-q", "-m", "an evil plan name")
    write_metrics(example_repo)
    head = git(example_repo, "rev-parse", "HEAD")
    assert rollout(example_repo, "validate").returncode == 1
    out = advance(example_repo, 0)
    assert out.returncode == 1 and "file name not allowed" in out.stderr
    assert git(example_repo, "rev-parse", "HEAD") == head


def test_commits_that_are_not_the_ones_asked_never_move_the_branch(
        example_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    g = Git.open(example_repo)
    head = git(example_repo, "rev-parse", "HEAD")
    # as if a path had escaped its quoting: the bytes land in another file
    monkeypatch.setattr(protocol, "quote_path", lambda p: b"flags/phase_4_deployment.yaml")
    with pytest.raises(GitError, match="refused to move the branch"):
        commit(g, [CommitSpec("x\n", (FileChange(STATE, b"{}\n"),))], ("bot", "b@x"))
    assert git(example_repo, "rev-parse", "HEAD") == head
    assert not (g.git_dir / protocol.JOURNAL).exists()
    assert git(example_repo, "rev-parse", "--verify", "-q", protocol.WORK_REF,
               check=False) == ""
    assert is_clean(example_repo)
    # two files in one commit where one was asked, or a file that is no state file
    monkeypatch.undo()
    with pytest.raises(GitError, match="state files only"):
        commit(g, [CommitSpec("x\n", (FileChange("pyproject.toml", b""),))], ("bot", "b@x"))


def test_detached_head_without_push_is_refused(example_repo: Path) -> None:
    write_metrics(example_repo)
    git(example_repo, "checkout", "-q", "--detach")
    head = git(example_repo, "rev-parse", "HEAD")
    out = advance(example_repo, 0)
    assert out.returncode == 1 and "HEAD is detached" in out.stderr
    assert git(example_repo, "rev-parse", "HEAD") == head
    assert advance(example_repo, 0, "--dry-run").returncode == 0  # a dry run writes nothing
    out = rollout(example_repo, "pause", "phase_4_deployment", "--now", at(0))
    assert out.returncode == 1 and "HEAD is detached" in out.stderr


def test_stale_index_lock_stops_before_anything_is_written(example_repo: Path) -> None:
    write_metrics(example_repo)
    lock = example_repo / ".git" / "index.lock"
    lock.write_text("")
    head = git(example_repo, "rev-parse", "HEAD")
    out = advance(example_repo, 0)
    assert out.returncode == 1
    assert "index.lock exists" in out.stderr and "nothing was written" in out.stderr
    assert git(example_repo, "rev-parse", "HEAD") == head
    lock.unlink()
    assert advance(example_repo, 0).returncode == 0


def test_index_lock_appearing_after_the_branch_moved_says_the_commit_was_made(
        example_repo: Path) -> None:
    write_metrics(example_repo)
    lock = example_repo / ".git" / "index.lock"
    proc = subprocess.Popen([sys.executable, "-m", "runner", "advance", "--now", at(0)],
                            cwd=example_repo, env=cli_env({crashpoints.VARIABLE: "after-ref:2"}),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert "test hook: sleeping" in proc.stdout.readline()
    lock.write_text("")  # e.g. a git process killed while the run slept
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "committed 1 commit(s)" in err and "next run finishes" in err, err
    assert "nothing written" not in err
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): start at 0%"
    lock.unlink()
    out = advance(example_repo, 0)
    assert out.returncode == 0, out.stderr
    assert "finished an interrupted run" in out.stderr
    assert is_clean(example_repo) and state(example_repo)["current_percentage"] == 0
