"""The bad-input corpus (tests/bad_inputs/cases.py) through a real ``rollout validate``.

Each case: exit 1, one line naming the file, line and field with the message, no traceback,
and nothing written (the files and ``git status`` are what the case left them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from pathlib import Path

import pytest

from tests.bad_inputs.cases import CASES, Case
from tests.conftest import git, run_cli

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example repository, committed once; each case works on a copy of it."""
    from tests.conftest import make_example_repo

    root = make_example_repo(tmp_path_factory.mktemp("template") / "repo", "example flags")
    out = run_cli(["validate"], cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr  # the cases start from a valid repository
    return root


def snapshot(root: Path) -> tuple[dict[str, bytes], str]:
    files = {p.relative_to(root).as_posix(): p.read_bytes()
             for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.parts}
    return files, git(root, "status", "--porcelain", "--untracked-files=all")


def apply(case: Case, root: Path) -> None:
    for rel, content in case.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    for rel, kind, target in case.special:
        path = root / rel
        path.unlink(missing_ok=True)
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "symlink":
            path.symlink_to(target)
        elif kind == "socket":
            sock = socket.socket(socket.AF_UNIX)
            here = os.getcwd()
            # bound by its relative name: a socket's path is limited to 107 bytes, which a
            # deep temporary folder (a parallel test worker's) can exceed
            os.chdir(path.parent)
            try:  # the entry stays when the socket is closed
                sock.bind(path.name)
            finally:
                sock.close()
                os.chdir(here)
        else:
            raise ValueError(kind)
    for rel, old, new in case.edit:
        path = root / rel
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{rel} no longer holds {old!r}: update the case"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")


def expected_line(case: Case, root: Path) -> int:
    if not case.line_of:
        return case.line
    lines = (root / case.file).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if case.line_of in line)


def test_corpus_is_large_and_names_are_unique() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_reported(case: Case, template: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(template, root, symlinks=True)
    apply(case, root)
    line = expected_line(case, root)
    before = snapshot(root)

    out = run_cli(["validate", "--format", "json"], cwd=root)

    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    report = json.loads(out.stdout)
    assert report["valid"] is False
    matching = [p for p in report["problems"] if p["file"] == case.file and case.words in p["message"]]
    assert matching, f"no problem in {case.file} saying {case.words!r}: {report['problems']}"
    problem = matching[0]
    assert (problem["line"], problem["field"]) == (line, case.field), problem
    assert snapshot(root) == before  # nothing written, nothing staged


#: The text format is one code path for every problem: a sample of the corpus keeps it honest
#: without running every case twice.
TEXT_SAMPLE = CASES[::7]


@pytest.mark.parametrize("case", TEXT_SAMPLE, ids=[c.name for c in TEXT_SAMPLE])
def test_bad_input_in_text_format(case: Case, template: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(template, root, symlinks=True)
    apply(case, root)
    line = expected_line(case, root)
    out = run_cli(["validate"], cwd=root)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    # file:line:column: field: message, one line each
    prefix = f"{case.file}:{line}:"
    hits = [ln for ln in out.stdout.splitlines() if ln.startswith(prefix) and case.words in ln]
    assert hits, out.stdout
    if case.field:
        assert f": {case.field}: " in hits[0]
    assert re.fullmatch(r"✗ \d+ problems? in \d+ flags?, \d+ plans?", out.stdout.splitlines()[-1])
