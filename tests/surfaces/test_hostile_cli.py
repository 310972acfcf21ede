"""The CLI surfaces against hostile input, through real ``rollout`` processes and real git.

One class each: a write target that is not a regular file; a time option that does not
parse; repository content the checks let through; input-derived text that would print as
more than one line (or as a GitHub workflow command). Every case: a non-zero exit that is
not 3 (no internal error), one line naming the option or file, nothing written.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from runner.cli.common import safe_markdown
from runner.files import NotRegularFile, read_regular, target_problem, write_atomic
from runner.safetext import safe_line
from tests.conftest import git, run_cli
from tests.runner.helpers import STATE, advance, at, write_metrics

#: What GitHub Actions reads as a workflow command, and what a terminal runs as an escape.
COMMAND_LINE = re.compile(r"^\s*(::|##\[)", re.MULTILINE)
HOSTILE = "x\n::error title=pwned::owned\r\x1b[31mred\x1b[0m\u2028::warning::y\x01z\x7f"


def _not_regular_targets(tmp_path: Path) -> dict[str, Path]:
    """Never /dev/null: a writer that replaced the target would replace it for everyone."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "folder").mkdir()
    (tmp_path / "zero-link").symlink_to("/dev/zero")
    (tmp_path / "full-link").symlink_to("/dev/full")
    (tmp_path / "fifo-link").symlink_to(fifo)
    return {"a FIFO": fifo, "/dev/zero": Path("/dev/zero"), "/dev/full": Path("/dev/full"),
            "a symlink to /dev/zero": tmp_path / "zero-link",
            "a symlink to /dev/full": tmp_path / "full-link",
            "a symlink to a FIFO": tmp_path / "fifo-link", "a folder": tmp_path / "folder"}


def _one_error_line(stderr: str, *words: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    for w in words:
        assert w in lines[0], (w, stderr)


# --- 1. write targets that are not regular files ------------------------------------------


def test_the_atomic_writer_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    for what, path in _not_regular_targets(tmp_path).items():
        assert target_problem(path) is not None, what
        with pytest.raises(NotRegularFile, match="not a regular file"):
            write_atomic(path, b"data")
        with pytest.raises(NotRegularFile):
            read_regular(path, 10)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rollout-tmp-")]
    assert stat_kind(tmp_path / "fifo") == "fifo"
    regular = tmp_path / "file"
    assert target_problem(regular) is None and write_atomic(regular, b"abc") is True
    assert write_atomic(regular, b"abc") is False  # the same bytes: not rewritten
    assert read_regular(regular, 1) == b"ab"  # at most limit + 1 bytes
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "missing")  # a dangling symlink is a new file
    assert target_problem(link) is None


def stat_kind(path: Path) -> str:
    import stat

    return "fifo" if stat.S_ISFIFO(path.lstat().st_mode) else "other"


def test_build_out_at_a_non_regular_target_is_a_usage_error(example_repo: Path,
                                                            tmp_path: Path) -> None:
    for what, target in _not_regular_targets(tmp_path).items():
        out = run_cli(["build", "--out", str(target)], cwd=example_repo, timeout=60)
        assert out.returncode == 2, (what, out.stdout, out.stderr)
        _one_error_line(out.stderr, "--out", str(target), "not a regular file")
        assert out.stdout == ""
    out = run_cli(["build", "--out", ""], cwd=example_repo)  # argparse makes it "."
    assert out.returncode == 2 and "is a folder" in out.stderr


def test_advance_publish_at_a_non_regular_target_stops_before_the_run(
        example_repo: Path, tmp_path: Path) -> None:
    write_metrics(example_repo)
    head = git(example_repo, "rev-parse", "HEAD")
    for what, target in _not_regular_targets(tmp_path).items():
        # a bare folder is a folder target (flags.json and flags.flagd.json in it); as the
        # file of `file:PATH`, or holding a flags.json that is a FIFO, it is refused
        if what == "a folder":
            (target / "flags.json").symlink_to(tmp_path / "fifo")
            cases = [f"file:{target}", str(target)]
        else:
            cases = [str(target)]
        for value in cases:
            out = advance(example_repo, 0, "--publish", value)
            assert out.returncode == 2, (what, out.stdout, out.stderr)
            _one_error_line(out.stderr, "--publish", "not a regular file")
            assert git(example_repo, "rev-parse", "HEAD") == head, what  # nothing committed
            assert not (example_repo / STATE).exists()


def test_eval_file_at_a_non_regular_file_is_a_usage_error(example_repo: Path,
                                                          tmp_path: Path) -> None:
    for what, target in _not_regular_targets(tmp_path).items():
        out = run_cli(["eval", "phase_4_deployment", "--file", str(target)], cwd=example_repo,
                      timeout=60)
        assert out.returncode == 2, (what, out.stderr)
        _one_error_line(out.stderr, "--file", "not a regular file")


# --- 2. options that parse a time ---------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["history", "--since", "garbage"], ["history", "--since", ""],
    ["history", "--since", "5 garbage"], ["history", "--since", "1e9"],
    ["history", "--since", "9999-01-01"], ["history", "--since", "2026-13-01"],
    ["history", "--since", "3 fortnights ago"], ["history", "--since", "x" * 100_000],
    ["status", "--now", "garbage"], ["status", "--now", ""], ["status", "--now", "9999-01-01"],
    ["plan", "--now", "garbage"], ["plan", "--now", ""], ["plan", "--now", "0001-01-01"],
    ["advance", "--now", "yesterday"], ["pause", "phase_4_deployment", "--now", "soon"],
])
def test_a_time_option_that_does_not_parse_is_a_usage_error(example_repo: Path,
                                                            args: list[str]) -> None:
    head = git(example_repo, "rev-parse", "HEAD")
    out = run_cli(args, cwd=example_repo)
    assert out.returncode == 2, (args, out.stdout, out.stderr)
    option = next(a for a in args if a.startswith("--"))
    _one_error_line(out.stderr, option)
    assert len(out.stderr) < 1200  # the value is echoed, capped
    assert out.stdout == ""
    assert git(example_repo, "rev-parse", "HEAD") == head


@pytest.mark.parametrize("since", ["2 weeks ago", "2.weeks.ago", "3d", "12h", "yesterday",
                                   "1 month ago", "2 years ago", "2026-01-01",
                                   "2026-01-01T10:00:00Z", "1900-01-01"])
def test_history_since_accepts_dates_and_times_ago(example_repo: Path, since: str) -> None:
    out = run_cli(["history", "--since", since, "--format", "json"], cwd=example_repo)
    assert out.returncode == 0, (since, out.stderr)
    assert isinstance(json.loads(out.stdout), list)


# --- 3. repository content the checks let through -----------------------------------------


@pytest.mark.parametrize("edit", [
    {"step": 1.0}, {"step": 42}, {"step": -1}, {"current_percentage": 1e308},
    {"last_gates": [{"name": "error_rate", "verdict": "pass", "value": 1e308,
                     "threshold": HOSTILE}]},
    {"reason": HOSTILE * 1000},
], ids=["step-1.0", "step-42", "step-minus-1", "huge-percentage", "hostile-gate",
        "hostile-reason"])
def test_surfaces_never_fail_internally_on_a_state_file(example_repo: Path,
                                                        edit: dict[str, object]) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    path = example_repo / STATE
    path.write_text(json.dumps({**json.loads(path.read_text()), **edit}, indent=2))
    git(example_repo, "commit", "-qam", "hand edit of the state")
    before = git(example_repo, "status", "--porcelain")
    for args in (["status"], ["status", "--format", "json"], ["status", "--format", "markdown"],
                 ["status", "phase_4_deployment"], ["history"], ["history", "phase_4_deployment"],
                 ["eval", "phase_4_deployment", "--key", "u1"], ["plan", "--base", "HEAD~1"],
                 ["build"]):
        out = run_cli(args, cwd=example_repo)
        assert out.returncode in (0, 1), (args, edit, out.stdout[-500:], out.stderr)
        assert "Traceback" not in out.stderr and "internal error" not in out.stderr, args
        if out.returncode == 1:  # said why: on stderr, or in plan's comment
            assert out.stderr.strip() or "state.json" in out.stdout, args
        if args[0] != "plan":  # a Markdown comment is many lines; none a command
            assert not COMMAND_LINE.search(out.stdout + out.stderr), (args, out.stdout)
        assert "\x1b" not in out.stdout + out.stderr, args
    if edit.get("step") == 1.0:  # validation names the file, the line and the field
        out = run_cli(["status"], cwd=example_repo)
        assert out.returncode == 1
        _one_error_line(out.stderr, "rollouts/phase_4_deployment.state.json:", "step: 1.0",
                        "expected an integer")
    assert git(example_repo, "status", "--porcelain") == before


# --- 4. input-derived text is one line ----------------------------------------------------


def test_safe_line() -> None:
    assert safe_line("plain") == "plain"
    out = safe_line(HOSTILE)
    assert "\n" not in out and "\r" not in out and "\x1b" not in out and "\x01" not in out
    assert "\u2028" not in out and "\\x1b[31m" in out and "\\n" in out
    assert safe_line("::error::x") == "\\x3a:error::x"
    assert safe_line("  ##[error]x").startswith("  \\x23")
    long = safe_line("v" * 1_000_000, limit=100)
    assert len(long) == 100 and long.endswith("more)")
    for text in (HOSTILE, "::x", "v" * 1000):
        assert safe_line(safe_line(text)) == safe_line(text)  # idempotent
    md = safe_markdown("ok\n::error::x\n  ##[warning]y\n\x1b[2J")
    assert not COMMAND_LINE.search(md) and "\x1b" not in md and md.count("\n") == 3


def test_a_hostile_reason_and_commit_message_print_as_one_line_each(example_repo: Path) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    out = run_cli(["pause", "phase_4_deployment", "--now", at(1), "--reason", HOSTILE],
                  cwd=example_repo)
    assert out.returncode == 0, out.stderr
    outputs = [out]
    # a person's commit whose message carries line breaks, commands and escapes
    flag = example_repo / "flags" / "otel_enabled.yaml"
    flag.write_text(flag.read_text().replace("description:", "description: edited\n#", 1))
    git(example_repo, "commit", "-qam", HOSTILE)
    for args in (["status"], ["status", "phase_4_deployment"], ["history"],
                 ["history", "otel_enabled"], ["history", "phase_4_deployment"],
                 ["eval", HOSTILE], ["status", HOSTILE], ["history", HOSTILE],
                 ["advance", "--now", at(2)], ["resume", "phase_4_deployment", "--now", at(3)]):
        outputs.append(run_cli(args, cwd=example_repo))
    for o in outputs:
        assert o.returncode in (0, 1), (o.args, o.stderr)
        text = o.stdout + o.stderr
        assert not COMMAND_LINE.search(text), (o.args, text)
        assert "\x1b" not in text and "\x01" not in text and "\r" not in text, o.args
    history = run_cli(["history"], cwd=example_repo).stdout
    assert "::error title=pwned" in history and "\\x1b[31m" in history  # shown, escaped
    # the JSON format keeps the text exactly (JSON escapes it)
    entries = json.loads(run_cli(["history", "--format", "json"], cwd=example_repo).stdout)
    assert any(e["subject"].startswith("x ::error title=pwned") and "\x1b[31m" in e["subject"]
               for e in entries)


def test_a_fifo_among_the_repository_files_never_blocks_a_surface(example_repo: Path) -> None:
    for folder in ("flags", "rollouts"):
        os.mkfifo(example_repo / folder / "trap.yaml")
    for args in (["status"], ["history"], ["history", "phase_4_deployment"],
                 ["eval", "phase_4_deployment"], ["plan", "--base", "HEAD"], ["build"]):
        out = run_cli(args, cwd=example_repo, timeout=60)
        assert out.returncode in (0, 1), (args, out.stderr)
        assert "Traceback" not in out.stderr and "internal error" not in out.stderr
