"""``[tool.rollout.notify]``: what `rollout validate` says of a bad one (file, line, field),
and that a bad target only silences itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.load.config import load_config, load_notify
from runner.model import NotifyConfig, NotifyTarget
from tests.conftest import run_cli

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


BASE = '[tool.rollout]\nflags_dir = "flags"\nrollouts_dir = "rollouts"\n'
GOOD = '''
[tool.rollout.notify]
commit_url = "https://git.example.com/team/flags/-/commit/{sha}"

[tool.rollout.notify.targets.ops-slack]
type = "slack"
url_env = "SLACK_WEBHOOK_URL"
events = ["rollback", "stuck"]

[tool.rollout.notify.targets.pager]
type = "webhook"
url_env = "PAGER_URL"
secret_env = "PAGER_SECRET"
events = ["rollback"]
timeout = "2s"
'''


def repo(tmp_path: Path, text: str) -> Path:
    (tmp_path / "flags").mkdir()
    (tmp_path / "rollouts").mkdir()
    (tmp_path / "pyproject.toml").write_text(BASE + text)
    return tmp_path


def test_a_valid_section_gives_its_targets(tmp_path: Path) -> None:
    config, problems = load_notify(repo(tmp_path, GOOD))
    assert problems == []
    assert config == NotifyConfig(
        targets=(NotifyTarget("ops-slack", "slack", "SLACK_WEBHOOK_URL", ("rollback", "stuck")),
                 NotifyTarget("pager", "webhook", "PAGER_URL", ("rollback",),
                              secret_env="PAGER_SECRET", timeout=2.0)),
        commit_url="https://git.example.com/team/flags/-/commit/{sha}")


BAD = '''
[tool.rollout.notify.targets.typo]
type = "slack"
url_env = "SLACK_URL"
events = ["rollback", "rolback"]

[tool.rollout.notify.targets.nourl]
type = "slack"
events = ["rollback"]

[tool.rollout.notify.targets.unsigned]
type = "webhook"
url_env = "HOOK_URL"
events = ["rollback"]

[tool.rollout.notify.targets.slow]
type = "webhook"
url_env = "HOOK_URL"
secret_env = "HOOK_SECRET"
events = ["pause"]
timeout = "5m"

[tool.rollout.notify.targets.inline]
type = "webhook"
url_env = "https://hooks.example.com/x"
secret_env = "HOOK_SECRET"
events = ["rollback"]

[tool.rollout.notify.targets.fine]
type = "slack"
url_env = "SLACK_URL"
events = ["completed"]
'''


def test_each_bad_target_is_a_problem_at_its_line_and_the_good_one_is_kept(tmp_path: Path) -> None:
    config, problems = load_notify(repo(tmp_path, BAD))
    lines = [str(p) for p in problems]
    assert lines == [
        "pyproject.toml:8:1: tool.rollout.notify.targets.typo.events[1]: 'rolback' is not one "
        "of start, advance, completed, rollback, pause, stuck, hold, resume, retry, halt, unhalt; did you "
        "mean rollback?",
        "pyproject.toml:10:1: tool.rollout.notify.targets.nourl.url_env: required field is missing",
        "pyproject.toml:14:1: tool.rollout.notify.targets.unsigned.secret_env: required for a "
        "webhook: the environment variable holding the key its body is signed with",
        "pyproject.toml:24:1: tool.rollout.notify.targets.slow.timeout: '5m' must be more than 0s "
        "and at most 60s (a run waits for it)",
        "pyproject.toml:28:1: tool.rollout.notify.targets.inline.url_env: "
        "'https://hooks.example.com/x' is not an environment variable name (letters, digits, _)",
    ]
    assert [t.name for t in config.targets] == ["fine"]
    # the rest of [tool.rollout] does not see them: a run is never stopped by them
    assert load_config(tmp_path)[1] == []


def test_a_bad_commit_url_and_an_unknown_field(tmp_path: Path) -> None:
    text = ('\n[tool.rollout.notify]\ncommit_url = "https://git.example.com/commit/"\n'
            'retries = 3\n')
    _, problems = load_notify(repo(tmp_path, text))
    assert [str(p) for p in problems] == [
        "pyproject.toml:7:1: tool.rollout.notify.retries: unknown field (allowed: commit_url, "
        "targets)",
    ]
    (tmp_path / "pyproject.toml").write_text(BASE + text.replace("retries = 3\n", ""))
    config, problems = load_notify(tmp_path)
    assert [str(p) for p in problems] == [
        "pyproject.toml:6:1: tool.rollout.notify.commit_url: 'https://git.example.com/commit/' "
        "is not an http:// or https:// URL holding {sha} (where the commit id goes)"]
    assert config == NotifyConfig()


def test_rollout_validate_reports_them_and_fails(tmp_path: Path) -> None:
    root = repo(tmp_path, BAD)
    out = run_cli(["validate"], cwd=root)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "pyproject.toml:8:1: tool.rollout.notify.targets.typo.events[1]: 'rolback'" in out.stdout
    assert out.stdout.endswith("\n✗ 5 problems in 0 flags, 0 plans\n")
    (root / "pyproject.toml").write_text(BASE + GOOD)
    assert run_cli(["validate"], cwd=root).returncode == 0


def test_a_section_or_targets_that_are_no_table(tmp_path: Path) -> None:
    root = repo(tmp_path, "")
    for text, expected in (
            ("notify = 5\n", "pyproject.toml:4:1: tool.rollout.notify: 5 is an integer, "
                             "expected object"),
            ("[tool.rollout.notify]\ntargets = 5\n", "pyproject.toml:5:1: "
             "tool.rollout.notify.targets: 5 is an integer, expected object")):
        (root / "pyproject.toml").write_text(BASE + text)
        config, problems = load_notify(root)
        assert [str(p) for p in problems] == [expected] and config == NotifyConfig()
        assert load_config(root)[1] == []
