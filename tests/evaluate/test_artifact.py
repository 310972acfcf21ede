"""The resolved artifact and ``rollout build``: deterministic, atomic, never half-written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.evaluate import render_artifact, write_atomic
from runner.load import load_repository
from tests.conftest import git, run_cli
from tests.evaluate.conftest import RepoWriter

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


def test_same_repository_same_bytes_and_a_digest_of_the_content(example_repo: Path) -> None:
    a = render_artifact(load_repository(example_repo), source_commit="c1")
    b = render_artifact(load_repository(example_repo), source_commit="c1")
    assert a == b
    doc = json.loads(a)
    assert doc["source_commit"] == "c1" and doc["digest"].startswith("sha256:")
    # the digest is of the flags, not of the commit they came from
    assert json.loads(render_artifact(load_repository(example_repo), source_commit="c2"))[
        "digest"] == doc["digest"]
    p4 = doc["flags"]["phase_4_deployment"]
    assert p4["rollout"] == {"plan": "phase_4_deployment", "phase": "pending", "step": 0,
                             "percentage": 0}
    assert p4["split"] == [] and p4["targeting"]["users"] == ["canary-user-1", "canary-user-2"]
    assert doc["flags"]["llm_integration_enabled"]["requires"] == [
        {"flag": "phase_4_deployment", "variant": "on"}]


def test_rollout_state_percentage_is_in_the_artifact(make_repo: Callable[..., RepoWriter]) -> None:
    w = make_repo().flag("rolled", risk="high")
    w.plan("rolled").state("rolled", 25, step=3)
    doc = json.loads(render_artifact(w.load(), source_commit=None))
    flag = doc["flags"]["rolled"]
    assert flag["split"] == [{"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}]
    assert flag["rollout"] == {"plan": "rolled", "phase": "progressing", "step": 3,
                               "percentage": 25}


def test_write_atomic_writes_only_changes_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "out" / "flags.json"
    assert write_atomic(path, b'{"a": 1}\n') is True
    first = path.stat()
    assert write_atomic(path, b'{"a": 1}\n') is False
    assert path.stat().st_mtime_ns == first.st_mtime_ns and path.stat().st_ino == first.st_ino
    assert write_atomic(path, b'{"a": 2}\n') is True
    assert path.read_bytes() == b'{"a": 2}\n'
    assert path.stat().st_ino != first.st_ino  # replaced by rename, never rewritten in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["flags.json"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_build_command_writes_atomically_and_reports_unchanged(example_repo: Path,
                                                               tmp_path: Path) -> None:
    out_path = tmp_path / "flags.resolved.json"
    out = run_cli(["build", "--out", str(out_path)], cwd=example_repo)
    assert out.returncode == 0, out.stderr
    assert out.stderr.startswith(f"wrote {out_path} (sha256:")
    doc = json.loads(out_path.read_text())
    assert doc["source_commit"] == git(example_repo, "rev-parse", "HEAD")
    out = run_cli(["build", "--out", str(out_path)], cwd=example_repo)
    assert out.stderr.startswith(f"unchanged {out_path}")
    # standard output without --out: the same bytes
    out = run_cli(["build"], cwd=example_repo)
    assert out.stdout.encode() == out_path.read_bytes()


def test_build_refuses_an_invalid_repository_and_writes_nothing(example_repo: Path,
                                                                 tmp_path: Path) -> None:
    flag = example_repo / "flags" / "otel_enabled.yaml"
    flag.write_text(flag.read_text() + "percentage: 250\n")
    out_path = tmp_path / "flags.json"
    out = run_cli(["build", "--out", str(out_path)], cwd=example_repo)
    assert out.returncode == 1
    assert "flags/otel_enabled.yaml:" in out.stderr and "percentage" in out.stderr
    assert "nothing written" in out.stderr
    assert not out_path.exists()


def test_build_usage_errors(example_repo: Path, tmp_path: Path) -> None:
    out = run_cli(["build", "--out", str(tmp_path)], cwd=example_repo)
    assert out.returncode == 2 and "is a folder" in out.stderr
    out = run_cli(["build", "--format", "flagd", "--flagd-schemas", str(tmp_path / "none")],
                  cwd=example_repo)
    assert out.returncode == 2 and "flags.json not found" in out.stderr
    assert "Traceback" not in out.stderr


def test_build_to_a_path_that_cannot_be_written_says_so(example_repo: Path,
                                                        tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    out = run_cli(["build", "--out", str(blocker / "flags.json")], cwd=example_repo)
    assert out.returncode == 1, out.stderr
    assert f"rollout build: cannot write {blocker / 'flags.json'}: Not a directory" in out.stderr
    assert "internal error" not in out.stderr and "Traceback" not in out.stderr
    assert blocker.read_text() == "not a folder\n"


def test_flagd_build_of_the_example_repository_validates(example_repo: Path,
                                                         tmp_path: Path) -> None:
    out_path = tmp_path / "flagd.json"
    # validated against the schemas shipped in the package, with no option or variable
    out = run_cli(["build", "--format", "flagd", "--out", str(out_path)], cwd=example_repo)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out_path.read_text())
    assert set(doc["flags"]) == set(load_repository(example_repo).flags)
    assert doc["metadata"]["sourceCommit"] == git(example_repo, "rev-parse", "HEAD")
