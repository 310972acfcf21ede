"""Publishing (runner.reconcile.publish): `rollout advance --publish TARGET` and `rollout
publish --to TARGET` put the native artifact and the flagd export in a folder or on a branch
of its own history, with real git; `--publish PATH.json` still writes the artifact alone."""

from __future__ import annotations

import gzip
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli_env, git, run_cli
from tests.runner.helpers import advance, at, rollout, write_metrics

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


def test_publish_writes_the_artifact_when_it_changed_and_a_revert_reaches_it(
        example_repo: Path, tmp_path: Path) -> None:
    write_metrics(example_repo)
    artifact = tmp_path / "published" / "flags.json"
    artifact.parent.mkdir()
    out = advance(example_repo, 0, "--publish", str(artifact))
    assert out.returncode == 0, out.stderr
    assert f"published {artifact}" in out.stdout
    first = artifact.read_bytes()
    assert git(example_repo, "rev-parse", "HEAD") in first.decode()
    out = advance(example_repo, 0, "--publish", str(artifact))  # nothing changed
    assert out.returncode == 0 and f"{artifact} unchanged" in out.stdout
    assert advance(example_repo, 5, "--publish", str(artifact)).returncode == 0
    assert _percentage(artifact) == 5  # the new step reached the artifact
    git(example_repo, "revert", "--no-edit", "HEAD")
    out = advance(example_repo, 6, "--publish", str(artifact))
    assert out.returncode == 0, out.stderr
    assert _percentage(artifact) == 0  # the revert reached it within one run


def _percentage(artifact: Path) -> float:
    return json.loads(artifact.read_text())["flags"]["phase_4_deployment"]["rollout"]["percentage"]


def test_publish_leaves_the_artifact_alone_when_only_the_commit_changed(
        example_repo: Path, tmp_path: Path) -> None:
    """Applications reload a rewritten file: a commit that changes nothing they serve (here
    an unrelated commit) must not rewrite it, even though the artifact names its commit."""
    write_metrics(example_repo)
    artifact = tmp_path / "flags.json"
    assert advance(example_repo, 0, "--publish", str(artifact)).returncode == 0
    first_commit = git(example_repo, "rev-parse", "HEAD")
    before = artifact.stat()
    (example_repo / "NOTES.md").write_text("unrelated\n")
    git(example_repo, "add", "NOTES.md")
    git(example_repo, "commit", "-qm", "unrelated change")
    out = advance(example_repo, 1, "--publish", str(artifact))
    assert out.returncode == 0, out.stderr
    assert f"{artifact} unchanged" in out.stdout
    after = artifact.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert json.loads(artifact.read_text())["source_commit"] == first_commit
    # a damaged file that still claims the right digest is not "the same": it is rewritten
    doc = json.loads(artifact.read_text())
    doc["flags"]["phase_4_deployment"]["enabled"] = False
    artifact.write_text(json.dumps(doc))
    out = advance(example_repo, 2, "--publish", str(artifact))
    assert f"published {artifact}" in out.stdout, out.stdout + out.stderr
    assert json.loads(artifact.read_text())["flags"]["phase_4_deployment"]["enabled"] is True
    # a real change is published, stamped with the commit that made it
    assert advance(example_repo, 5, "--publish", str(artifact)).returncode == 0
    doc = json.loads(artifact.read_text())
    assert doc["source_commit"] == git(example_repo, "rev-parse", "HEAD")
    assert doc["flags"]["phase_4_deployment"]["rollout"]["percentage"] == 5


# --- targets: a folder and a branch of its own history -------------------------------------

PUBLISHED = ("flags.flagd.json", "flags.json")
#: a folder target also holds each file's gzip copy, for static servers that serve it
IN_FOLDER = ("flags.flagd.json", "flags.flagd.json.gz", "flags.json", "flags.json.gz")


def _served_percentage(doc: dict[str, Any]) -> float:
    return doc["flags"]["phase_4_deployment"]["rollout"]["percentage"]


def _branch_log(repo: Path, branch: str = "rollout-published") -> list[str]:
    return git(repo, "log", "--format=%H", branch).splitlines()


def _source(repo: Path, rev: str) -> str:
    return git(repo, "log", "-1", "--format=%(trailers:key=Rollout-Source-Commit,valueonly)",
               rev).strip()


def test_a_folder_target_holds_both_files_written_atomically_only_when_they_change(
        example_repo: Path, tmp_path: Path) -> None:
    from runner.evaluate.flagd import BUNDLED_SCHEMAS, flagd_problems

    write_metrics(example_repo)
    public = tmp_path / "public"  # new, no .json suffix: a folder target
    out = advance(example_repo, 0, "--publish", str(public))
    assert out.returncode == 0, out.stderr
    assert f"published dir:{public}: flags.json, flags.flagd.json" in out.stdout
    assert sorted(p.name for p in public.iterdir()) == sorted(IN_FOLDER)  # no temporary left
    for name in PUBLISHED:  # each copy is the file, gzip'd
        assert gzip.decompress((public / f"{name}.gz").read_bytes()) == (public / name).read_bytes()
    head = git(example_repo, "rev-parse", "HEAD")
    native = json.loads((public / "flags.json").read_text())
    flagd = json.loads((public / "flags.flagd.json").read_text())
    assert native["source_commit"] == head == flagd["metadata"]["sourceCommit"]
    assert flagd["metadata"]["version"] == native["digest"]
    assert flagd_problems(flagd, BUNDLED_SCHEMAS) == []
    for name in PUBLISHED:
        assert stat.S_IMODE((public / name).stat().st_mode) == 0o644
    (public / "flags.json").chmod(0o600)  # a web server must always be able to read them
    before = {n: (public / n).stat() for n in PUBLISHED}
    # a run that only waits, then an unrelated commit: nothing served changed, nothing written
    out = advance(example_repo, 1, "--publish", f"dir:{public}")
    assert out.returncode == 0 and f"dir:{public} unchanged" in out.stdout, out.stdout
    (example_repo / "NOTES.md").write_text("unrelated\n")
    git(example_repo, "add", "NOTES.md")
    git(example_repo, "commit", "-qm", "unrelated change")
    assert f"dir:{public} unchanged" in advance(example_repo, 2, "--publish", str(public)).stdout
    for n in PUBLISHED:
        after = (public / n).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before[n].st_ino, before[n].st_mtime_ns)
    # a step: both replaced (new inodes: renamed over, never written in place), mode 0644
    out = advance(example_repo, 5, "--publish", str(public))
    assert f"published dir:{public}" in out.stdout, out.stdout + out.stderr
    for n in PUBLISHED:
        assert (public / n).stat().st_ino != before[n].st_ino
        assert stat.S_IMODE((public / n).stat().st_mode) == 0o644
    assert _served_percentage(json.loads((public / "flags.json").read_text())) == 5
    flagd = json.loads((public / "flags.flagd.json").read_text())
    assert flagd["metadata"]["sourceCommit"] == git(example_repo, "rev-parse", "HEAD")
    # a damaged flagd file alone is replaced alone: the native one keeps its bytes
    native_before = (public / "flags.json").stat()
    (public / "flags.flagd.json").write_text("{}")
    out = run_cli(["publish", "--to", f"dir:{public}"], cwd=example_repo)
    assert out.returncode == 0 and "flags.flagd.json" in out.stdout, out.stdout + out.stderr
    assert (public / "flags.json").stat().st_ino == native_before.st_ino
    assert json.loads((public / "flags.flagd.json").read_text())["flags"]


def test_the_branch_target_has_its_own_history_one_commit_per_served_change(
        example_repo: Path, tmp_path: Path) -> None:
    write_metrics(example_repo)
    status_before = git(example_repo, "status", "--porcelain", "--untracked-files=all")
    out = advance(example_repo, 0, "--publish", "branch:rollout-published")
    assert out.returncode == 0, out.stderr
    assert "published branch:rollout-published at " in out.stdout
    first_source = git(example_repo, "rev-parse", "HEAD")
    # built without the working tree or index: still on main, nothing new on disk or staged
    assert git(example_repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(example_repo, "status", "--porcelain", "--untracked-files=all") == status_before
    assert not (example_repo / "flags.json").exists()
    for minutes in (1, 2):  # waiting: nothing served changed, no commit
        out = advance(example_repo, minutes, "--publish", "branch:rollout-published")
        assert "branch:rollout-published unchanged" in out.stdout, out.stdout
    assert advance(example_repo, 5, "--publish", "branch:rollout-published").returncode == 0
    log = _branch_log(example_repo)
    assert len(log) == 2  # start at 0 %, then 5 %
    root = log[-1]
    assert git(example_repo, "log", "-1", "--format=%P", root) == ""  # an orphan root
    assert git(example_repo, "merge-base", "main", "rollout-published", check=False) == ""
    for sha in log:
        files = git(example_repo, "ls-tree", "-r", "--name-only", sha).splitlines()
        assert sorted(files) == sorted(PUBLISHED)  # only the published files
    assert _source(example_repo, root) == first_source
    assert _source(example_repo, log[0]) == git(example_repo, "rev-parse", "main")
    assert "Flags changed: phase_4_deployment." in git(example_repo, "log", "-1",
                                                         "--format=%B", log[0])
    native = json.loads(git(example_repo, "show", "rollout-published:flags.json"))
    assert _served_percentage(native) == 5
    # the published branch is the runner's own: an existing branch of people's work is not
    git(example_repo, "branch", "people-work", "main")
    out = run_cli(["publish", "--to", "branch:people-work"], cwd=example_repo)
    assert out.returncode == 1 and "not a publication branch" in out.stderr, out.stderr
    assert git(example_repo, "rev-parse", "people-work") == git(example_repo, "rev-parse", "main")
    # `rollout publish` alone: nothing changed, nothing committed
    out = run_cli(["publish", "--to", "branch:rollout-published"], cwd=example_repo)
    assert out.returncode == 0 and "unchanged" in out.stdout, out.stdout + out.stderr
    assert len(_branch_log(example_repo)) == 2


def test_the_branch_is_pushed_and_a_revert_reaches_it_in_one_run(
        example_repo: Path, bare_remote: Path) -> None:
    write_metrics(example_repo)
    for minutes in (0, 5):
        out = advance(example_repo, minutes, "--push", "--publish", "branch:rollout-published")
        assert out.returncode == 0, out.stderr
        assert "(pushed)" in out.stdout
    assert len(_branch_log(bare_remote)) == 2
    assert git(bare_remote, "merge-base", "main", "rollout-published", check=False) == ""
    assert _source(bare_remote, "rollout-published") == git(bare_remote, "rev-parse", "main")
    # a person reverts the step on the remote; the next run publishes the revert
    git(example_repo, "revert", "--no-edit", "HEAD")
    git(example_repo, "push", "-q", "origin", "main")
    out = advance(example_repo, 6, "--push", "--publish", "branch:rollout-published")
    assert out.returncode == 0, out.stderr
    native = json.loads(git(bare_remote, "show", "rollout-published:flags.json"))
    assert _served_percentage(native) == 0
    assert len(_branch_log(bare_remote)) == 3


def test_two_racing_runners_publish_once(example_repo: Path, bare_remote: Path,
                                         tmp_path: Path) -> None:
    clones = []
    for i in range(2):
        c = tmp_path / f"clone{i}"
        git(tmp_path, "clone", "-q", str(bare_remote), str(c))
        write_metrics(c)
        clones.append(c)
    procs = [subprocess.Popen([sys.executable, "-m", "runner", "advance", "--now", at(0),
                               "--push", "--publish", "branch:rollout-published"],
                              cwd=c, env=cli_env(), text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for c in clones]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    assert all(rc == 0 for _, _, rc in results), results
    assert len(_branch_log(bare_remote)) == 1, results  # one served change, one commit
    assert _source(bare_remote, "rollout-published") == git(bare_remote, "rev-parse", "main")


def test_a_rejected_push_is_fetched_and_rebuilt_only_when_the_content_differs(
        example_repo: Path, bare_remote: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A racing runner pushes between this publication's fetch and its push: with other
    content, this one is rebuilt on top of it; with the same, there is nothing left to do."""
    from runner.git import Git
    from runner.load import load_repository
    from runner.reconcile.publish import Target, publish

    write_metrics(example_repo)
    assert advance(example_repo, 0, "--push").returncode == 0
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(bare_remote), str(other))
    real_push = Git.push_commit
    raced: list[str] = []

    def racing_push(self: Git, remote: str, commit: str, branch: str,
                    expect: str | None) -> tuple[bool, str]:
        if not raced:  # the other runner publishes first
            raced.append(commit)
            out = run_cli(["publish", "--push", "--to", "branch:rollout-published"], cwd=other)
            assert out.returncode == 0, out.stderr
        return real_push(self, remote, commit, branch, expect)

    monkeypatch.setattr(Git, "push_commit", racing_push)
    head = git(example_repo, "rev-parse", "HEAD")
    # the same content: the racing run's commit is the publication
    (o,) = publish(example_repo, load_repository(example_repo),
                   [Target("branch", "rollout-published")], source_commit=head,
                   author=("Runner", "runner@example.com"), push=True)
    assert o.ok and o.raced and not o.changed, o
    assert any("rejected" in n for n in o.notes)
    assert len(_branch_log(bare_remote)) == 1
    # other content: the racer publishes its own change (pushed, so an ancestor of this
    # run's next step), this run's step is rebuilt on the racer's commit (each serves what
    # its source commit holds)
    raced.clear()
    flag = other / "flags/otel_enabled.yaml"
    flag.write_text(flag.read_text().replace("enabled: true", "enabled: false"))
    git(other, "commit", "-qam", "otel off, in the other clone")
    git(other, "push", "-q", "origin", "main")
    assert advance(example_repo, 5, "--push").returncode == 0
    assert git(example_repo, "merge-base", "--is-ancestor", git(other, "rev-parse", "HEAD"),
               "HEAD") == ""
    (o,) = publish(example_repo, load_repository(example_repo),
                   [Target("branch", "rollout-published")],
                   source_commit=git(example_repo, "rev-parse", "HEAD"),
                   author=("Runner", "runner@example.com"), push=True)
    assert o.ok and o.pushed and o.changed, o
    log = _branch_log(bare_remote)
    assert len(log) == 3 and git(bare_remote, "log", "-1", "--format=%P", log[0]) == log[1]
    assert _source(bare_remote, log[1]) == git(other, "rev-parse", "HEAD")
    assert _source(bare_remote, log[0]) == git(example_repo, "rev-parse", "HEAD")


def _refuse_published_branch(remote: Path) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nwhile read old new ref; do\n"
                    "  [ \"$ref\" = refs/heads/rollout-published ] && "
                    "{ echo 'protected branch' >&2; exit 1; }\ndone\nexit 0\n")
    hook.chmod(0o755)


def test_a_failed_publish_after_a_rollback_exits_5_with_an_error_naming_the_flag(
        example_repo: Path, bare_remote: Path) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0, "--push", "--publish", "branch:rollout-published"
                   ).returncode == 0
    _refuse_published_branch(bare_remote)
    # without a rollback: exit 1 and a clear message, the run's commits pushed all the same
    out = advance(example_repo, 5, "--push", "--publish", "branch:rollout-published")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "not published" in out.stderr and "protected branch" in out.stderr
    assert "::" not in out.stdout
    assert git(bare_remote, "rev-parse", "main") == git(example_repo, "rev-parse", "HEAD")
    # a rollback that does not reach the published branch: the loudest failure there is
    write_metrics(example_repo, p95_latency_ms=900.0)
    out = advance(example_repo, 6, "--push", "--publish", "branch:rollout-published")
    assert out.returncode == 5, out.stdout + out.stderr
    commands = [line for line in out.stdout.splitlines() if line.startswith("::")]
    assert len(commands) == 1, out.stdout
    assert commands[0].startswith("::error title=rollback not published::phase_4_deployment")
    assert "ROLLED BACK: phase_4_deployment" in out.stdout
    assert "ROLLBACK NOT PUBLISHED: phase_4_deployment" in out.stdout
    assert git(bare_remote, "log", "-1", "--format=%s", "main").startswith(
        "rollout(phase_4_deployment): rollback")
    # a person's rollback from the command line likewise
    assert rollout(example_repo, "retry", "phase_4_deployment", "--push",
                   "--now", at(7)).returncode == 0
    out = rollout(example_repo, "rollback", "phase_4_deployment", "--push", "--now", at(8),
                  "--publish", "branch:rollout-published")
    assert out.returncode == 5, out.stdout + out.stderr
    assert out.stdout.count("::error title=rollback not published::") == 1


def test_the_publish_command_publishes_to_several_targets_at_once(
        example_repo: Path, tmp_path: Path) -> None:
    out = run_cli(["publish", "--to", f"dir:{tmp_path / 'a'}", "branch:rollout-published",
                   "--to", str(tmp_path / "legacy.json")], cwd=example_repo)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(IN_FOLDER)
    assert (tmp_path / "legacy.json").is_file() and f"published {tmp_path / 'legacy.json'}" \
        in out.stdout
    assert len(_branch_log(example_repo)) == 1
    out = run_cli(["publish", "--to", f"dir:{tmp_path / 'a'}"], cwd=example_repo)
    assert out.returncode == 0 and "unchanged" in out.stdout
    out = run_cli(["publish"], cwd=example_repo)
    assert out.returncode == 2


def test_a_flagd_export_flagd_would_refuse_is_never_published(
        example_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import runner.evaluate.flagd as flagd
    from runner.load import load_repository
    from runner.reconcile.publish import Target, publish

    monkeypatch.setattr(flagd, "flagd_problems", lambda doc, schemas: ["flags: broken"])
    public = tmp_path / "public"
    (o,) = publish(example_repo, load_repository(example_repo), [Target("dir", str(public))],
                   source_commit="0" * 40, author=("Runner", "runner@example.com"))
    assert o.error is not None and "flagd's schema (flags: broken)" in o.error
    assert not public.exists()


def test_the_branch_target_in_a_sha256_repository(tmp_path: Path) -> None:
    from tests.conftest import make_example_repo

    repo = make_example_repo(tmp_path / "repo", init_args=["--object-format=sha256"])
    out = run_cli(["publish", "--to", "branch:rollout-published"], cwd=repo)
    assert out.returncode == 0, out.stderr
    (sha,) = _branch_log(repo)
    assert len(sha) == 64 and _source(repo, sha) == git(repo, "rev-parse", "HEAD")
    out = run_cli(["publish", "--to", "branch:rollout-published"], cwd=repo)
    assert out.returncode == 0 and "unchanged" in out.stdout
