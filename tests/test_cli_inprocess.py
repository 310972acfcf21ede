"""The in-process CLI runner (tests/conftest.py ``run_cli_inprocess``) gives what a real
``rollout`` process gives: exit code, stdout and stderr, for the paths tests rely on
(help and version, usage errors, bytes written to ``sys.stdout.buffer``, each format)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli
from tests.runner.helpers import at, write_metrics

CASES = [["--version"], ["--help"], [], ["advance", "--help"], ["nosuch"], ["validate"],
         ["advance", "--now", "garbage"], ["build"], ["build", "--format", "flagd"],
         ["status"], ["status", "--format", "json"], ["status", "nosuchflag"],
         ["history", "phase_4_deployment"], ["history", "phase_4_deployment", "--format", "json"],
         ["plan"], ["incident", "phase_4_deployment"]]


def test_the_inprocess_runner_gives_what_a_process_gives(example_repo: Path) -> None:
    write_metrics(example_repo)
    for minute in (0, 6):
        ran = run_cli(["advance", "--now", at(minute)], cwd=example_repo, inprocess=True)
        assert ran.returncode == 0, ran.stderr
    for args in CASES:
        process = run_cli(args, cwd=example_repo, inprocess=False)
        inside = run_cli(args, cwd=example_repo, inprocess=True)
        assert (inside.returncode, inside.stdout, inside.stderr) == (
            process.returncode, process.stdout, process.stderr), args
