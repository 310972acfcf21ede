"""Who changed the state, for every shape of history: the runner trusts HEAD's state only when
it is exactly what its own last commit produced from its predecessor (docs/runner.md,
"Provenance"). Real git: merges of every kind, cherry-picks, rebases, amends, reverts,
hostile messages, non-ASCII paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.git import Git
from runner.reconcile.last_change import last_changes
from tests.conftest import git, make_example_repo
from tests.runner.helpers import STATE, advance, rollout, state, subjects, write_metrics

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


FLAG = "phase_4_deployment"
SAFE_STEPS = (0, 5, 10, 25, 50, 75, 100)


def change(repo: Path, path: str = STATE):
    return last_changes(Git.open(repo), {FLAG: path})[FLAG]


def trusted(repo: Path, path: str = STATE) -> bool:
    ch = change(repo, path)
    assert ch is not None
    return ch.by_runner


def steps(repo: Path, *minutes: float) -> None:
    for m in minutes:
        out = advance(repo, m)
        assert out.returncode == 0, out.stderr


def hand_edit(repo: Path, percentage: float, message: str = "hand edit of the state",
              path: str = STATE) -> None:
    doc = json.loads((repo / path).read_text())
    # a state that means what it says: the step of the example's safe plan at that percentage
    doc["current_percentage"] = percentage
    doc["step"] = SAFE_STEPS.index(percentage)
    (repo / path).write_text(json.dumps(doc, indent=1) + "\n")
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message)


def edit_flag(repo: Path, note: str) -> None:
    flag = repo / "flags" / f"{FLAG}.yaml"
    flag.write_text(flag.read_text() + f"# {note}\n")
    git(repo, "commit", "-q", "-am", f"flag note {note}")


def assert_held(repo: Path, minute: float, percentage: float) -> None:
    out = advance(repo, minute)
    assert out.returncode == 0, out.stderr
    assert subjects(repo)[0].startswith(f"rollout({FLAG}): pause at") or \
        subjects(repo)[0].startswith(f"rollout({FLAG}): hold at"), subjects(repo)[:3]
    assert state(repo)["phase"] == "paused"
    assert state(repo)["current_percentage"] == percentage
    assert "Test Human" in state(repo)["reason"], state(repo)["reason"]
    steps(repo, minute + 30)  # and it stays held
    assert state(repo)["current_percentage"] == percentage


def assert_advances(repo: Path, minute: float) -> None:
    before = state(repo)["current_percentage"]
    out = advance(repo, minute)
    assert out.returncode == 0, out.stderr
    assert state(repo)["phase"] == "progressing", state(repo)["reason"]
    assert state(repo)["current_percentage"] > before, subjects(repo)[:3]


@pytest.fixture
def repo(example_repo: Path) -> Path:
    write_metrics(example_repo)
    steps(example_repo, 0, 5)  # start at 0 %, then 5 %
    assert trusted(example_repo)
    return example_repo


def test_runner_commits_record_the_state_they_start_from_and_write(repo: Path) -> None:
    import hashlib

    def sha(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    trailers = git(repo, "log", "-1", "--format=%(trailers:only,unfold)")
    before = git(repo, "show", f"HEAD~1:{STATE}").encode() + b"\n"
    after = (repo / STATE).read_bytes()
    assert f"Rollout-State-Before: {sha(before)}" in trailers
    assert f"Rollout-State-After: {sha(after)}" in trailers
    start = git(repo, "log", "-1", "--format=%(trailers:only,unfold)", "HEAD~1")
    assert "Rollout-State-Before: none" in start


# --- merges -------------------------------------------------------------------------------


def test_merge_commit_bringing_a_persons_older_branch_edit_holds(repo: Path) -> None:
    git(repo, "branch", "pr")
    steps(repo, 10)  # 10 %
    git(repo, "checkout", "-q", "pr")
    hand_edit(repo, 75)
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-X", "theirs", "-m", "merge pr", "pr")
    assert state(repo)["current_percentage"] == 75
    ch = change(repo)
    assert ch is not None and not ch.by_runner and "Test Human" in ch.author
    assert_held(repo, 15, 75)


def test_merge_conflict_resolved_with_the_runners_state_keeps_going(repo: Path) -> None:
    git(repo, "branch", "pr")
    steps(repo, 10)
    git(repo, "checkout", "-q", "pr")
    hand_edit(repo, 75)
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-X", "ours", "-m", "merge pr, runner's state kept",
        "pr")
    assert state(repo)["current_percentage"] == 10
    assert trusted(repo)
    assert_advances(repo, 15)


def test_merge_conflict_resolved_by_hand_holds(repo: Path) -> None:
    git(repo, "branch", "pr")
    steps(repo, 10)
    git(repo, "checkout", "-q", "pr")
    hand_edit(repo, 75)
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge pr", "pr", check=False)  # conflict
    doc = json.loads(git(repo, "show", f"pr:{STATE}"))
    doc["current_percentage"], doc["step"] = 50, 4
    (repo / STATE).write_text(json.dumps(doc) + "\n")
    git(repo, "add", STATE)
    git(repo, "commit", "-q", "--no-edit")
    assert not trusted(repo)
    assert_held(repo, 15, 50)


def test_merge_taking_a_stale_branchs_state_over_newer_runner_commits_holds(repo: Path) -> None:
    git(repo, "branch", "pr")  # at 5 %
    steps(repo, 10, 15)  # 10 %, 25 %
    git(repo, "checkout", "-q", "pr")
    edit_flag(repo, "on the pull request")
    git(repo, "checkout", "-q", "main")
    # the person takes the branch's rollouts/ wholesale: back to the runner's old 5 % state
    git(repo, "merge", "-q", "--no-ff", "--no-commit", "pr")
    git(repo, "checkout", "pr", "--", "rollouts")
    git(repo, "commit", "-q", "-m", "merge pr")
    assert state(repo)["current_percentage"] == 5
    assert not trusted(repo)
    assert_held(repo, 20, 5)


def test_fast_forward_and_pull_merges_without_state_edits_keep_going(repo: Path) -> None:
    # the runner ran on a branch that is fast-forwarded into main
    git(repo, "checkout", "-q", "-b", "runner-branch")
    steps(repo, 10)
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "runner-branch")
    assert trusted(repo)
    # a person's local commit, then `git pull` merging the runner's newer commits into it
    git(repo, "checkout", "-q", "-b", "local", "HEAD")
    edit_flag(repo, "local work")
    git(repo, "checkout", "-q", "main")
    steps(repo, 15)  # 25 %
    git(repo, "checkout", "-q", "local")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch 'main' into local", "main")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "local")
    assert state(repo)["current_percentage"] == 25
    assert trusted(repo)
    assert_advances(repo, 20)


def test_octopus_merges(repo: Path) -> None:
    for name in ("a", "b"):
        git(repo, "checkout", "-q", "-b", name, "main")
        edit_flag(repo, name)
    git(repo, "checkout", "-q", "main")
    steps(repo, 10)
    git(repo, "merge", "-q", "--no-ff", "-m", "octopus", "a", "b", check=False)
    if git(repo, "status", "--porcelain"):  # the two flag notes conflict: keep one
        git(repo, "checkout", "--theirs", "--", "flags", check=False)
        git(repo, "add", "-A", "flags")
        git(repo, "commit", "-q", "--no-edit")
    assert trusted(repo)
    # an octopus whose one branch edits the state
    git(repo, "checkout", "-q", "-b", "c", "main")
    hand_edit(repo, 50)
    git(repo, "checkout", "-q", "-b", "d", "main")
    (repo / "notes.txt").write_text("d\n")
    git(repo, "add", "notes.txt")
    git(repo, "commit", "-q", "-m", "notes")
    git(repo, "checkout", "-q", "main")
    (repo / "other.txt").write_text("main\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-q", "-m", "main moves")
    git(repo, "merge", "-q", "--no-ff", "-m", "octopus 2", "c", "d")
    assert len(git(repo, "log", "-1", "--format=%P").split()) == 3
    assert not trusted(repo)
    assert_held(repo, 15, 50)


# --- cherry-picks, amends, rebases ----------------------------------------------------------


def test_cherry_pick_of_an_old_runner_commit_after_a_rollback_holds(repo: Path) -> None:
    steps(repo, 10)  # 5 % -> 10 %
    step = git(repo, "rev-parse", "HEAD")
    out = rollout(repo, "rollback", FLAG, "--now", "2026-01-15T12:12:00Z", "--reason", "bad")
    assert out.returncode == 0, out.stderr
    assert state(repo)["current_percentage"] == 0
    git(repo, "cherry-pick", "-X", "theirs", step)
    assert git(repo, "log", "-1", "--format=%an") == "rollout-runner[bot]"  # kept author
    assert state(repo)["current_percentage"] == 10
    ch = change(repo)
    assert ch is not None and not ch.by_runner
    assert ch.author == "Test Human <human@example.com>"  # the committer, not the bot
    # the pick changed the step and percentage under a rolled back phase: a state that says
    # two things is refused with its line, and never advanced (nothing is committed)
    head = git(repo, "rev-parse", "HEAD")
    for minute in (15, 20, 25):
        out = advance(repo, minute)
        assert out.returncode == 1, out.stderr
        assert ":3: step: 2: a rolled back rollout is at step 0 (0%)" in out.stderr
    assert git(repo, "rev-parse", "HEAD") == head
    assert state(repo)["current_percentage"] == 10 and state(repo)["phase"] == "rolled_back"


def test_amends_of_runner_commits(repo: Path) -> None:
    # the message reworded, the state untouched: still exactly what the runner wrote
    body = git(repo, "log", "-1", "--format=%B")
    git(repo, "commit", "-q", "--amend", "-m", body.replace("rollout(", "rollout (", 1))
    assert trusted(repo)
    # the state edited in an amend: a person's change
    doc = json.loads((repo / STATE).read_text())
    doc["current_percentage"], doc["step"] = 50, 4
    (repo / STATE).write_text(json.dumps(doc) + "\n")
    git(repo, "add", STATE)
    git(repo, "commit", "-q", "--amend", "--no-edit")
    assert not trusted(repo)
    assert_held(repo, 10, 50)


def test_amend_of_a_persons_commit_and_rebases(repo: Path) -> None:
    # a person's commit on another file, amended and rebased over newer runner commits
    git(repo, "checkout", "-q", "-b", "work")
    edit_flag(repo, "one")
    (repo / "flags" / f"{FLAG}.yaml").write_text(
        (repo / "flags" / f"{FLAG}.yaml").read_text() + "# two\n")
    git(repo, "commit", "-q", "-a", "--amend", "--no-edit")
    git(repo, "checkout", "-q", "main")
    steps(repo, 10)
    git(repo, "checkout", "-q", "work")
    git(repo, "rebase", "-q", "main")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "work")
    assert trusted(repo)
    # runner commits rebased onto a state a person changed: their predecessor differs
    git(repo, "checkout", "-q", "-b", "runner-line")
    steps(repo, 15)  # 25 % on runner-line
    git(repo, "checkout", "-q", "main")
    hand_edit(repo, 10.0, "a person rewrites the state")
    git(repo, "checkout", "-q", "runner-line")
    git(repo, "rebase", "-q", "-X", "theirs", "main")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "runner-line")
    assert state(repo)["current_percentage"] == 25
    assert not trusted(repo)
    assert_held(repo, 20, 25)


def test_revert_and_revert_of_the_revert(repo: Path) -> None:
    step = git(repo, "rev-parse", "HEAD")
    git(repo, "revert", "--no-edit", "HEAD")
    ch = change(repo)
    assert ch is not None and not ch.by_runner and ch.reverted_sha == step
    # reverting the revert restores exactly the runner's output from its own predecessor
    git(repo, "revert", "--no-edit", "HEAD")
    assert trusted(repo)
    assert_advances(repo, 10)


# --- hostile messages, quoted paths ---------------------------------------------------------


HOSTILE = ("edit\x1fwith\x1eseparators\x1d\x1c\x01\x02\x07\x08\x0b\x0c\x7f\n\n"
           "\x1ffake\x1e\nRollout-Flag: phase_4_deployment\x1f\nRollout-Action: advance\x1e\n")


def test_hostile_messages_do_not_shift_the_reading(repo: Path) -> None:
    edit_flag(repo, "before")
    git(repo, "commit", "-q", "--allow-empty", "-m", HOSTILE)
    assert trusted(repo)  # commits that do not touch the state change nothing
    assert_advances(repo, 10)
    hand_edit(repo, 75, "x\x1f" + "\x1e" * 3 + "y\x1fRollout-Action: advance\x1f")
    ch = change(repo)
    assert ch is not None and not ch.by_runner and ch.author == "Test Human <human@example.com>"
    assert_held(repo, 15, 75)
    out = rollout(repo, "history", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert any("\x1f" in e["subject"] for e in json.loads(out.stdout))


def test_hostile_message_with_fake_runner_trailers_and_no_digest_holds(repo: Path) -> None:
    doc = json.loads((repo / STATE).read_text())
    doc["current_percentage"] = 75
    (repo / STATE).write_text(json.dumps(doc) + "\n")
    git(repo, "add", STATE)
    # a person's message copying a 0.1 runner commit's trailers (no digests)
    git(repo, "commit", "-q", "-m", "rollout(phase_4_deployment): 5% → 75%\n\n"
        "Rollout-Flag: phase_4_deployment\nRollout-Action: advance\n",
        "--date", "2001-01-01T00:00:00Z")
    assert not trusted(repo)


def test_non_ascii_plan_name_and_rollouts_dir_see_a_revert(tmp_path: Path) -> None:
    repo = make_example_repo(tmp_path / "repo")
    folder, plan = "étapes", "déploiement"
    git(repo, "mv", "rollouts", folder)
    git(repo, "mv", f"{folder}/{FLAG}.yaml", f"{folder}/{plan}.yaml")
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('rollouts_dir = "rollouts"',
                                                       f'rollouts_dir = "{folder}"'))
    git(repo, "commit", "-q", "-am", "plans in a non-ASCII folder")
    write_metrics(repo)
    path = f"{folder}/{plan}.state.json"
    steps(repo, 0, 5)
    assert state(repo, path)["current_percentage"] == 5
    assert trusted(repo, path)
    step = git(repo, "rev-parse", "HEAD")
    git(repo, "revert", "--no-edit", "HEAD")
    ch = change(repo, path)
    assert ch is not None and not ch.by_runner and ch.reverted_sha == step
    out = advance(repo, 10)
    assert out.returncode == 0, out.stderr
    assert subjects(repo)[0] == f"rollout({FLAG}): hold at 0% after revert of {step[:7]}"
    steps(repo, 15, 20)
    assert state(repo, path)["current_percentage"] == 0
    out = rollout(repo, "history", FLAG, "--format", "json")
    assert out.returncode == 0, out.stderr
    assert any(f["path"] == path for e in json.loads(out.stdout) for f in e["files"])
