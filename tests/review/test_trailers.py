"""Subjects and trailers found in raw messages exactly as git's own %s and %(trailers) find
them: every message is committed to a real repository and git's answer is the expectation."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runner.trailers import split_message
from tests.conftest import cli_env, git

KEYS = ("Rollout-Flag", "Rollout-Action", "Rollout-Gate", "Key", "K2", "Signed-off-by")

MESSAGES = [
    # the runner's own shape (TRAILERS.md)
    "rollout(a): 5% → 10%\n\nerror_rate = 0.4: pass\n\nRollout-Flag: a\nRollout-Action: advance\n"
    "Rollout-Gate: error_rate=0.4 pass (<= 1)\nRollout-Gate: p95=3 pass (<= 5)\n",
    "subject only\n",
    "Rollout-Flag: a\n",  # the subject is never a trailer
    "subject\nwrapped subject\n\nbody\n\nKey: v\n",
    "  subject with blanks  \n\nbody\n\nKey : v  \n continued\nK2: w\n",
    "subject\n\nbody\n\nKey: v\n  folded\n\tand again\nK2:   \n",
    "subject\n\nbody\n\nSigned-off-by: A <a@example.com>\nprose\nmore prose\n",
    "subject\n\nbody\n\nSigned-off-by: A <a@example.com>\nprose\nprose\nprose\nprose\n",
    "subject\n\nbody\n\nKey: v\n# a comment line\nK2: w\n",
    "subject\n\nKey: v\nnot a trailer\n",
    "subject\n\nbody\n \t\nKey: v\n",
    "subject\n\nKey: v\n\n# trailing comment\n\n",
    "subject\n\n(cherry picked from commit 0123abc)\nKey: v\nprose\nprose\n",
    "subject\n\n:no key: v\n- no: key\nKey: a: b\n",
    "Revert \"rollout(a): 5% → 10%\"\n\nThis reverts commit 0123456789abcdef0123456789abcdef01234567.\n",
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trailers")
    git(root, "init", "-q")
    return root


@pytest.mark.parametrize("message", MESSAGES)
def test_subject_and_trailers_match_git(repo: Path, message: str) -> None:
    subprocess.run(["git", "commit", "-q", "--allow-empty", "--cleanup=verbatim", "-F", "-"],
                   cwd=repo, env=cli_env(), input=message.encode(), check=True)
    keys = ",".join(f"key={k}" for k in KEYS)
    out = subprocess.run(
        ["git", "log", "-1", f"--format=%s%x1f%(trailers:{keys},unfold,separator=%x1d)%x1f%B"],
        cwd=repo, env=cli_env(), capture_output=True, text=True, check=True).stdout
    subject, trailers, raw = out.split("\x1f")
    expected = [tuple(t.split(": ", 1)) for t in trailers.split("\x1d")] if trailers else []

    got_subject, body_start, got = split_message(raw)
    assert got_subject == subject
    assert [t for t in got if t[0] in KEYS] == expected
    if message.startswith("Revert"):
        assert raw.index("This reverts commit") >= body_start > 0
