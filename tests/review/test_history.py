"""``rollout history`` on real repositories: runner-style commits (TRAILERS.md), real reverts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tests.review.helpers import commit, runner_commit

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


FLAG = "phase_4_deployment"
GATES = ("error_rate=0.42 pass (<= 1)", "p95_latency_ms=310 pass (<= 500)",
         "request_count=1200 pass (>= 100)")


def history(repo: Path, *args: str) -> list[dict]:
    out = run_cli(["history", *args, "--format", "json"], cwd=repo)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def rollout(repo: Path) -> dict[str, str]:
    """start, two advances and an automatic rollback, dated an hour apart."""
    shas = {
        "start": runner_commit(repo, FLAG, "start", 0, 0, 0, gates=GATES,
                               date="2026-11-20T10:00:00Z"),
        "5": runner_commit(repo, FLAG, "advance", 0, 5, 1, gates=GATES, date="2026-11-20T11:00:00Z"),
        "10": runner_commit(repo, FLAG, "advance", 5, 10, 2, gates=GATES,
                            date="2026-11-20T12:00:00Z"),
    }
    shas["rollback"] = runner_commit(
        repo, FLAG, "rollback", 10, 0, 0, phase="rolled_back",
        gates=("error_rate=3.2 fail (<= 1)", "p95_latency_ms=320 pass (<= 500)"),
        date="2026-11-20T13:00:00Z")
    return shas


def test_runner_commits_with_actions_percentages_and_gate_evidence(example_repo: Path) -> None:
    shas = rollout(example_repo)
    entries = history(example_repo, FLAG)
    by_sha = {e["sha"]: e for e in entries}
    assert [by_sha[shas[k]]["action"] for k in ("start", "5", "10", "rollback")] == [
        "start", "advance", "advance", "rollback"]
    # newest first, as git log
    assert [e["sha"] for e in entries[:4]] == [shas["rollback"], shas["10"], shas["5"], shas["start"]]
    advance = by_sha[shas["10"]]
    assert (advance["from"], advance["to"], advance["phase"]) == (5, 10, "progressing")
    assert advance["gates"] == list(GATES)
    assert advance["author"] == "rollout-runner[bot]"
    assert advance["time"].startswith("2026-11-20T12:00:00")
    rollback = by_sha[shas["rollback"]]
    assert (rollback["from"], rollback["to"], rollback["phase"]) == (10, 0, "rolled_back")
    assert rollback["gates"][0] == "error_rate=3.2 fail (<= 1)"
    # the initial commit added the flag file by hand: it is part of the flag's trail
    assert entries[-1]["action"] == "add" and not entries[-1]["runner"]


def test_git_revert_is_linked_both_ways_with_percentages(example_repo: Path) -> None:
    shas = rollout(example_repo)
    git(example_repo, "revert", "--no-edit", shas["rollback"])
    revert = git(example_repo, "rev-parse", "HEAD")
    held = runner_commit(
        example_repo, FLAG, "hold", 10, 10, 2, phase="paused",
        subject=f"rollout({FLAG}): hold at 10% after revert of {shas['rollback'][:7]}",
        extra=(f"Rollout-Reverted-Commit: {shas['rollback']}",
               "Rollout-Reverted-By: Test Human <human@example.com>"))
    entries = {e["sha"]: e for e in history(example_repo, FLAG)}
    r = entries[revert]
    assert r["action"] == "revert" and r["author"] == "Test Human"
    assert r["reverts"] == shas["rollback"]
    assert (r["from"], r["to"]) == (0, 10)  # the revert undid the rollback's 10 -> 0
    assert entries[shas["rollback"]]["reverted_by"] == [revert]
    h = entries[held]
    assert h["action"] == "hold" and h["held_after_revert_of"] == shas["rollback"]
    assert h["reconciles"] == revert
    text = run_cli(["history", FLAG], cwd=example_repo).stdout
    assert f"reverted by {revert[:7]}" in text
    assert f"reverts {shas['rollback'][:7]}" in text
    assert f"holds after revert by Test Human <human@example.com> ({revert[:7]}) of " \
           f"{shas['rollback'][:7]}" in text


def test_human_flag_edits_show_static_percentages(example_repo: Path) -> None:
    path = example_repo / "flags/llm_integration_enabled.yaml"
    path.write_text(path.read_text().replace("percentage: 100", "percentage: 30"))
    edit = commit(example_repo, "llm at 30%")
    git(example_repo, "revert", "--no-edit", edit)
    revert = git(example_repo, "rev-parse", "HEAD")
    entries = {e["sha"]: e for e in history(example_repo, "llm_integration_enabled")}
    assert (entries[edit]["action"], entries[edit]["from"], entries[edit]["to"]) == (
        "flag-edit", 100, 30)
    assert entries[edit]["reverted_by"] == [revert]
    assert (entries[revert]["from"], entries[revert]["to"]) == (30, 100)


def test_only_the_flags_own_commits_and_since(example_repo: Path) -> None:
    rollout(example_repo)
    path = example_repo / "flags/otel_enabled.yaml"
    path.write_text(path.read_text().replace("Always on.", "Always on, everywhere."))
    other = commit(example_repo, "otel wording")
    # a plan file whose name is not the flag's still belongs to the flag
    plan = example_repo / "rollouts/phase_4_deployment.yaml"
    (example_repo / "rollouts/p4.yaml").write_text(plan.read_text())
    plan.unlink()
    moved = commit(example_repo, "rename the plan")
    shas = [e["sha"] for e in history(example_repo, FLAG)]
    assert other not in shas and moved in shas
    all_shas = [e["sha"] for e in history(example_repo)]
    assert other in all_shas and moved in all_shas
    since = history(example_repo, FLAG, "--since", "2026-11-20T11:30:00Z")
    assert [e["action"] for e in since if e["runner"]] == ["rollback", "advance"]


def test_unknown_flag_has_no_history(example_repo: Path) -> None:
    out = run_cli(["history", "no_such_flag"], cwd=example_repo)
    assert out.returncode == 1 and "no_such_flag" in out.stderr and out.stdout == ""


def test_history_of_real_runner_commits_and_a_revert(example_repo: Path) -> None:
    """The runner itself (`rollout advance` on file metrics), then a person's git revert."""
    metrics = example_repo / "logs/metrics.json"
    metrics.parent.mkdir()

    def advance(minute: int, error_rate: float) -> int:
        metrics.write_text(json.dumps({"error_rate": error_rate, "p95_latency_ms": 120,
                                       "request_count": 500}))
        out = run_cli(["advance", "--now", f"2026-01-15T12:{minute:02d}:00Z"], cwd=example_repo)
        assert out.returncode in (0, 4), out.stderr
        return out.returncode

    for minute in (0, 5, 10):
        assert advance(minute, 0.2) == 0
    assert advance(12, 2.5) == 4  # the gate fails: an automatic rollback commit
    rollback = git(example_repo, "rev-parse", "HEAD")
    git(example_repo, "revert", "--no-edit", rollback)
    revert = git(example_repo, "rev-parse", "HEAD")
    assert advance(15, 0.2) == 0  # the runner holds after the person's revert
    hold = git(example_repo, "rev-parse", "HEAD")

    entries = history(example_repo, FLAG)
    runner = [(e["action"], e["from"], e["to"]) for e in entries if e["runner"]][::-1]
    assert runner == [("start", 0, 0), ("advance", 0, 5), ("advance", 5, 10),
                      ("rollback", 10, 0), ("hold", 10, 10)]
    by_sha = {e["sha"]: e for e in entries}
    assert by_sha[rollback]["reverted_by"] == [revert]
    assert any("error_rate=2.5 fail" in g for g in by_sha[rollback]["gates"])
    assert (by_sha[revert]["from"], by_sha[revert]["to"]) == (0, 10)
    assert by_sha[hold]["held_after_revert_of"] == rollback
    assert by_sha[hold]["reconciles"] == revert


def test_rendering_while_reading_equals_rendering_at_the_end(example_repo: Path) -> None:
    """The CLI renders runner commits as git streams them; a revert found later (which
    adds ``reverted by`` to an already rendered commit) and a hold must still show."""
    from runner.review.audit import (
        format_json,
        format_text,
        history,
        render_json_entry,
        render_text_entry,
    )

    shas = rollout(example_repo)
    git(example_repo, "revert", "--no-edit", shas["rollback"])
    runner_commit(example_repo, FLAG, "hold", 10, 10, 2, phase="paused",
                  extra=(f"Rollout-Reverted-Commit: {shas['rollback']}",
                         "Rollout-Reverted-By: Test Human <human@example.com>"))
    for flag in (None, FLAG):
        plain = history(example_repo, flag)
        assert format_text(history(example_repo, flag, render=render_text_entry)) == \
            format_text(plain)
        ahead = format_json(history(example_repo, flag, render=render_json_entry))
        assert ahead == format_json(plain)
        assert json.loads(ahead) == [e.as_dict() for e in plain]
        assert "reverted by " in format_text(plain) and "holds after revert" in format_text(plain)


def test_json_lines_are_json_dumps_of_each_entry_across_pieces() -> None:
    """The template writer against json.dumps itself, with awkward strings and numbers,
    over more entries than one written piece holds."""
    from runner.review.audit import Entry, format_json, format_text, json_pieces

    entries = []
    for i in range(2001):
        e = Entry(f"{i:040x}", "2026-11-20T10:00:00+00:00", 'Zoë "Q" \\ <x>', "z@example.com",
                  f"rollout(f): {i}% → tab\there\x01", [f"f{i}"], "advance",
                  before=float(i), after=i + 0.5, gates=["g=1 pass (<= 1)"],
                  reason=None if i % 2 else "why\nnot", runner=bool(i % 3),
                  raw=[(f":100644 100644 {'a' * 40} {'b' * 40} M",
                       f"rollouts/f{i}.state.json")])
        entries.append(e)
    entries[5].after = float("nan")
    entries[6].before = float("inf")
    out = format_json(entries)
    assert out == "[\n" + ",\n".join(json.dumps(e.as_dict()) for e in entries) + "\n]\n"
    assert len(list(json_pieces(entries))) > 2
    assert format_json([]) == "[]\n" and format_text([]) == ""
    assert format_text(entries).count("\n    rollout(f): ") == 2001


def test_outside_a_repository_is_a_usage_error(tmp_path: Path) -> None:
    out = run_cli(["history"], cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == "rollout history: error: .: not a git repository"
    assert out.stdout == ""


def test_git_output_read_through_memory_file_and_through_pipe_alike(
        example_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux reads git's output from an in-memory file; other systems from a pipe: the same
    text either way, and git's own error either way."""
    import os

    from runner import git as gateway

    rollout(example_repo)
    args = ["log", "--raw", "--format=%H%n%B"]

    def read(*extra: str) -> str:
        return "".join(gateway.stream(example_repo, [*args, *extra], chunk=512))

    via_memfd = read()
    with pytest.raises(gateway.GitError, match="unknown revision"):
        read("no-such-rev")
    monkeypatch.delattr(os, "memfd_create")
    assert read() == via_memfd == git(example_repo, *args) + "\n"
    with pytest.raises(gateway.GitError, match="unknown revision"):
        read("no-such-rev")


def test_current_runs_stop_at_the_runs_start_and_at_the_limit(example_repo: Path) -> None:
    from runner.review.audit import current_runs

    def at(minute: int) -> str:
        return f"2026-01-15T12:{minute:02d}:00Z"

    steps = [("start", 0, 0, 0, "progressing"), ("advance", 0, 5, 1, "progressing"),
             ("rollback", 5, 0, 0, "rolled_back"), ("retry", 0, 0, 0, "progressing"),
             ("observe", 0, 0, 9, "progressing"), ("advance", 0, 5, 1, "progressing"),
             ("advance", 5, 10, 2, "progressing")]
    for i, (action, before, after, step, phase) in enumerate(steps):
        runner_commit(example_repo, "phase_4_deployment", action, before, after, step, phase,
                      date=at(i))
        runner_commit(example_repo, "other_flag", "advance", 0, i, i, date=at(i))
    runs = {"phase_4_deployment": ("phase_4_deployment", at(3)),
            "other_flag": ("other_flag", at(0))}
    found = current_runs(example_repo, runs)
    # the run since the retry, oldest first; the observe commit (counters only) left out
    assert [(e.action, e.after) for e in found["phase_4_deployment"]] == [
        ("retry", 0), ("advance", 5), ("advance", 10)]
    assert len(found["other_flag"]) == 7  # no start in sight: everything since the bound
    limited = current_runs(example_repo, runs, limit=2)
    assert [e.after for e in limited["phase_4_deployment"]] == [5, 10]
    assert current_runs(example_repo, {}) == {}


def test_text_lines_are_counted_from_what_is_printed_compare_lines_included(
        example_repo: Path) -> None:
    """The text format's safety check once counted an entry's lines apart from the renderer
    and left out the Rollout-Compare lines: every entry with one was rendered again through
    a view that did not make compare lines safe, so a control character a person put in a
    Rollout-Compare trailer reached the terminal raw."""
    runner_commit(example_repo, FLAG, "pause", 5, 5, 1,
                  extra=("Rollout-Compare: error_rate \x1b]0;owned\x07 treatment: fail",))
    out = run_cli(["history", FLAG], cwd=example_repo)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout
    assert "    compare: error_rate \\x1b]0;owned\\x07 treatment: fail" in out.stdout


def test_a_commit_of_many_flag_files_has_no_single_before_and_after(example_repo: Path) -> None:
    """A hand edit of one flag (its .yaml and a stray .yml alike) reads its static
    percentages; a commit of several flags (an import of 300 files) has none, and each of its
    flags lists it."""
    flags = example_repo / "flags"
    for i in range(300):
        (flags / f"imported_{i:03d}.yaml").write_text(
            f"key: imported_{i:03d}\ndescription: imported\nowner: t\nrisk: low\n"
            f"default_variant: off\npercentage: {i % 100}\n")
    imported = commit(example_repo, "import 300 flags")
    (flags / "imported_007.yaml").write_text(
        "key: imported_007\ndescription: imported\nowner: t\nrisk: low\n"
        "default_variant: off\npercentage: 50\n")
    edited = commit(example_repo, "imported_007 to 50%")
    entries = {e["sha"]: e for e in history(example_repo)}
    bulk = entries[imported]
    assert (bulk["from"], bulk["to"], bulk["action"]) == (None, None, "flag-add")
    assert len(bulk["flags"]) == 300
    edit = entries[edited]
    assert (edit["from"], edit["to"], edit["flags"]) == (7, 50, ["imported_007"])
    assert [e["sha"] for e in history(example_repo, "imported_042")] == [imported]
    one = entries[git(example_repo, "rev-list", "--max-parents=0", "HEAD")]
    assert one["from"] is None  # the first commit: several flags too
