"""Never overwrite people's work, ignore leaked hook variables, survive kill -9, race safely."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.reconcile import crashpoints
from tests.conftest import PROJECT, cli_env, git
from tests.runner.helpers import (
    STATE,
    advance,
    at,
    is_clean,
    rollout,
    state,
    subjects,
    write_flag,
    write_metrics,
)


def test_uncommitted_changes_under_rollouts_stop_the_run(example_repo: Path) -> None:
    write_metrics(example_repo)
    plan = example_repo / "rollouts/phase_4_deployment.yaml"
    edited = plan.read_text() + "# work in progress\n"
    plan.write_text(edited)
    head = git(example_repo, "rev-parse", "HEAD")
    out = advance(example_repo, 0)
    assert out.returncode == 1
    assert "uncommitted changes" in out.stderr and "rollouts/phase_4_deployment.yaml" in out.stderr
    assert plan.read_text() == edited and git(example_repo, "rev-parse", "HEAD") == head
    (example_repo / "flags/new_flag.yaml").write_text("key: new_flag\n")  # untracked too
    plan.write_text(edited.replace("# work in progress\n", ""))
    out = advance(example_repo, 0)
    assert out.returncode == 1 and "flags/new_flag.yaml" in out.stderr


def test_leaked_git_dir_and_index_from_a_hook_are_ignored(example_repo: Path,
                                                         tmp_path: Path) -> None:
    write_metrics(example_repo)
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    env = {"GIT_DIR": str(other / ".git"), "GIT_INDEX_FILE": str(tmp_path / "stray-index"),
           "GIT_WORK_TREE": str(other)}
    out = subprocess.run([sys.executable, "-m", "runner", "advance", "--now", at(0)],
                         cwd=example_repo, env={**cli_env(), **env}, text=True,
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert subjects(example_repo)[0] == "rollout(phase_4_deployment): start at 0%"
    assert is_clean(example_repo)
    assert not (tmp_path / "stray-index").exists()
    assert git(other, "log", "--oneline", check=False) == ""


def _start(repo: Path, minutes: float, sleep_at: str) -> subprocess.Popen[str]:
    env = cli_env({crashpoints.VARIABLE: f"{sleep_at}:30"})
    return subprocess.Popen([sys.executable, "-m", "runner", "advance", "--now", at(minutes)],
                            cwd=repo, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _kill_when_sleeping(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "test hook: sleeping" in line, (line, proc.stderr.read() if proc.stderr else "")
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_kill_9_at_each_critical_point_then_a_clean_run_converges(example_repo: Path) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    for point in crashpoints.POINTS:
        before = state(example_repo)["current_percentage"]
        minute = {0: 5, 5: 10, 10: 15, 25: 20}[before]
        _kill_when_sleeping(_start(example_repo, minute, point))
        git(example_repo, "fsck", "--no-progress")  # the repository is valid
        out = advance(example_repo, minute)
        assert out.returncode == 0, (point, out.stderr)
        after = state(example_repo)
        # exactly one step, whether the killed run's commit landed or not
        assert after["current_percentage"] == {0: 5, 5: 10, 10: 25, 25: 50}[before], point
        assert is_clean(example_repo), git(example_repo, "status", "--porcelain")
        heads = subjects(example_repo)
        assert len(heads) == len(set(heads)), heads  # no transition committed twice
        assert git(example_repo, "show", "HEAD:" + STATE) == (example_repo / STATE).read_text().strip()


def test_kill_9_at_random_moments(example_repo: Path) -> None:
    write_metrics(example_repo)
    rng = random.Random(7)
    minute = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "runner", "advance", "--now", at(minute)],
                                cwd=example_repo, env=cli_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.6))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        git(example_repo, "fsck", "--no-progress")
        out = advance(example_repo, minute)
        assert out.returncode == 0, out.stderr
        assert is_clean(example_repo)
        assert rollout(example_repo, "validate").returncode == 0
        minute += 5
    # whatever was killed where, four runs five minutes apart moved four steps from the start
    assert state(example_repo)["current_percentage"] == 25


def test_push_publishes_and_ten_racing_runners_move_each_rollout_one_step(
        example_repo: Path, bare_remote: Path, tmp_path: Path) -> None:
    plan = (example_repo / "rollouts/phase_4_deployment.yaml").read_text()
    second = plan.replace("flag: phase_4_deployment", "flag: checkout_redesign")
    write_flag(example_repo, "checkout_redesign")
    (example_repo / "rollouts/checkout_redesign.yaml").write_text(second)
    git(example_repo, "add", "flags", "rollouts")
    git(example_repo, "commit", "-q", "-m", "plan for checkout_redesign")
    git(example_repo, "push", "-q", "origin", "main")
    write_metrics(example_repo)
    out = advance(example_repo, 0, "--push")
    assert out.returncode == 0, out.stderr
    assert git(bare_remote, "rev-parse", "main") == git(example_repo, "rev-parse", "HEAD")
    clones = []
    for i in range(10):
        c = tmp_path / f"clone{i}"
        git(tmp_path, "clone", "-q", str(bare_remote), str(c))
        write_metrics(c)
        clones.append(c)
    procs = [subprocess.Popen([sys.executable, "-m", "runner", "advance", "--now", at(5),
                               "--push"], cwd=c, env=cli_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in clones]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    assert all(rc == 0 for _, _, rc in results), results
    log = git(bare_remote, "log", "--format=%s", "main").splitlines()
    assert log[:2] == ["rollout(phase_4_deployment): 0% → 5%", "rollout(checkout_redesign): 0% → 5%"] \
        or log[:2] == ["rollout(checkout_redesign): 0% → 5%", "rollout(phase_4_deployment): 0% → 5%"]
    assert len(log) == 4 + 2  # initial, plan, two starts, two advances: nothing duplicated
    # every clone converges on the remote's state with one more run
    for c in clones[:3]:
        assert advance(c, 5, "--push").returncode == 0
        assert state(c)["current_percentage"] == 5
    assert len(git(bare_remote, "log", "--format=%s", "main").splitlines()) == 6


def test_local_human_commits_not_on_the_remote_stop_a_push_run(example_repo: Path,
                                                               bare_remote: Path) -> None:
    (example_repo / "flags/otel_enabled.yaml").write_text(
        (example_repo / "flags/otel_enabled.yaml").read_text() + "# note\n")
    git(example_repo, "commit", "-q", "-am", "local edit")
    out = advance(example_repo, 0, "--push")
    assert out.returncode == 1 and "not on origin/main" in out.stderr


def test_the_project_itself_is_untouched() -> None:
    assert not (PROJECT / STATE).exists()


def test_a_person_rollback_with_push_reaches_the_remote(example_repo: Path,
                                                        bare_remote: Path) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0, "--push").returncode == 0
    out = rollout(example_repo, "rollback", "phase_4_deployment", "--push", "--reason", "pager",
                  "--now", at(1), env={"ROLLOUT_REQUESTED_BY": "oncall"})
    assert out.returncode == 0, out.stderr
    assert git(bare_remote, "log", "-1", "--format=%s", "main") == (
        "rollout(phase_4_deployment): rollback 0% → 0%")
    assert git(bare_remote, "log", "-1", "--format=%(trailers:key=Rollout-Requested-By,valueonly)",
               "main") == "oncall"


def test_two_runs_in_one_clone_take_turns(example_repo: Path) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    procs = [subprocess.Popen([sys.executable, "-m", "runner", "advance", "--now", at(5)],
                              cwd=example_repo, env=cli_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    outs = [(*p.communicate(timeout=60), p.returncode) for p in procs]
    assert all(rc == 0 for _, _, rc in outs), outs
    assert state(example_repo)["current_percentage"] == 5  # one step, not three
    assert subjects(example_repo)[:2] == ["rollout(phase_4_deployment): 0% → 5%",
                                          "rollout(phase_4_deployment): start at 0%"]
    assert is_clean(example_repo)


def test_a_shallow_clone_that_hides_who_changed_a_state_stops(example_repo: Path,
                                                              bare_remote: Path,
                                                              tmp_path: Path) -> None:
    write_metrics(example_repo)
    for minute in (0, 5):
        assert advance(example_repo, minute, "--push").returncode == 0
    (example_repo / "flags/otel_enabled.yaml").write_text(
        (example_repo / "flags/otel_enabled.yaml").read_text() + "# later change\n")
    git(example_repo, "commit", "-qam", "unrelated later change")
    git(example_repo, "push", "-q", "origin", "main")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{bare_remote}", str(shallow))
    write_metrics(shallow)
    out = advance(shallow, 10)
    assert out.returncode == 1 and "fetch-depth: 0" in out.stderr


def test_a_gitops_folder_inside_a_bigger_repository(tmp_path: Path, example_repo: Path) -> None:
    mono = tmp_path / "mono"
    (mono / "services").mkdir(parents=True)
    (mono / "services" / "README").write_text("other code\n")
    gitops = mono / "deploy" / "flags-repo"
    gitops.parent.mkdir()
    for part in ("flags", "rollouts", "schemas", "pyproject.toml"):
        src = example_repo / part
        gitops.mkdir(exist_ok=True)
        subprocess.run(["cp", "-r", str(src), str(gitops / part)], check=True)
    git(mono, "init", "-q", "-b", "main")
    git(mono, "add", "-A")
    git(mono, "commit", "-q", "-m", "monorepo")
    write_metrics(gitops)
    for minute in (0, 5):
        out = advance(gitops, minute)
        assert out.returncode == 0, out.stderr
    assert state(gitops)["current_percentage"] == 5
    assert git(mono, "show", "--format=", "--name-only", "HEAD") == (
        "deploy/flags-repo/rollouts/phase_4_deployment.state.json")
    git(mono, "revert", "--no-edit", "HEAD")
    assert advance(gitops, 10).returncode == 0
    assert state(gitops)["phase"] == "paused"
    assert git(mono, "status", "--porcelain") == "?? deploy/flags-repo/logs/"


def test_push_refuses_a_branch_other_than_the_checked_out_one(example_repo: Path,
                                                              bare_remote: Path) -> None:
    git(example_repo, "checkout", "-q", "-b", "feature")
    out = advance(example_repo, 0, "--push", "--branch", "main")
    assert out.returncode == 1 and "checked out branch is feature" in out.stderr


def test_git_sees_no_hook_variable_but_the_identity_and_the_way_to_the_remote(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.git import git_env

    leaked = ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_PREFIX", "GIT_EDITOR",
              "GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY", "GIT_TRACE")
    passed = ("GIT_AUTHOR_NAME", "GIT_COMMITTER_EMAIL", "GIT_SSH_COMMAND", "GIT_ASKPASS",
              "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0",
              "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL")
    for name in (*leaked, *passed):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("LC_ALL", "fr_FR.UTF-8")
    env = git_env()
    assert not set(leaked) & set(env)
    assert all(env[name] == "x" for name in passed)
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["LC_ALL"] == "C"


def test_a_git_error_names_the_command_and_carries_gits_message(tmp_path: Path) -> None:
    from runner.git import GitError, run

    with pytest.raises(GitError) as caught:
        run(tmp_path, "-c", "core.quotePath=false", "log", "-1")
    assert caught.value.command == ("-c", "core.quotePath=false", "log", "-1")
    assert "not a git repository" in caught.value.message
    assert str(caught.value).startswith("git log: fatal: not a git repository")
