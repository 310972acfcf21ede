"""``rollout --help`` and each command's ``--help``: what a user reads before anything else."""

from __future__ import annotations

import re
from pathlib import Path

from runner.cli.main import COMMANDS
from tests.conftest import run_cli


def test_help_lists_every_command_with_a_summary_and_the_exit_codes(tmp_path: Path) -> None:
    out = run_cli(["--help"], cwd=tmp_path)
    assert out.returncode == 0
    for name in COMMANDS:
        assert re.search(rf"^ {{4}}{name} +\S", out.stdout, re.M), name
    assert "3 internal error" in " ".join(out.stdout.split())


def test_every_command_help_documents_its_exit_codes(tmp_path: Path) -> None:
    for name in COMMANDS:
        out = run_cli([name, "--help"], cwd=tmp_path)
        assert out.returncode == 0, name
        text = " ".join(out.stdout.split())
        # what follows the first "exit" in the description names the codes 1, 2 and 3
        codes = re.split(r"\bexit\b", text, maxsplit=1, flags=re.I)
        assert len(codes) == 2, name
        for code in ("1", "2", "3"):
            assert re.search(rf"\b{code}\b", codes[1]), (name, code)
        assert re.search(r"\b3\b[^.]*internal", text), name
