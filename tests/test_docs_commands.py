"""Every ``rollout …`` command line of the docs' shell blocks runs through the CLI.

The shell blocks (```` ```sh ````, ```` ```console ````, ```` ```bash ````) of README.md and
docs/*.md are read top to bottom; each ``rollout`` command of a block (after ``$ ``, ``&&``,
``|`` or ``;``, continuation lines joined, comments dropped) runs in-process (``run_cli``),
in order, in a fresh copy of the example repository with a bare ``origin`` (so that
``--push`` pushes): each must exit with the code the doc implies (0, or the one in
:data:`EXIT_CODES`). What the docs name that this repository does not hold is replaced by
:data:`SUBSTITUTIONS`; a command that cannot run here is in :data:`NOT_RUN` with the reason.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import PROJECT, git, run_cli

pytestmark = pytest.mark.cli_inprocess

DOCS = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
FENCE = re.compile(r"^([ \t]*)```(\w*)[ \t]*\n(.*?)^\1```", re.M | re.S)
SHELLS = ("sh", "console", "bash", "shell")

#: Words of the docs -> what stands for them in the scratch repository (``{repo}``: its
#: path, ``{tmp}``: a scratch folder beside it).
SUBSTITUTIONS = {
    "search_v2": "phase_4_deployment",  # the docs' example flag; the example repository's
    "/srv/flags": "{repo}",  # a checkout a cron job pulls
    "/var/lib/node_exporter/textfile/rollouts.prom": "{tmp}/rollouts.prom",
    "my-flags": "{tmp}/my-flags",  # a new repository, outside the example one
}

#: Commands (as the docs write them, after substitution of nothing) that are not run, and why.
NOT_RUN = {
    "rollout demo": "runs the whole story in its own temporary repository for some seconds "
                    "(real processes): tests/surfaces/test_demo.py runs it",
}

#: Commands whose documented exit code is not 0.
EXIT_CODES: dict[str, int] = {}


def _commands(block: str) -> list[str]:
    """The ``rollout`` commands of a shell block, in order."""
    text = re.sub(r"\\\n\s*", " ", block)  # continuation lines
    text = re.sub(r"(\||&&)\s*\n\s*", r"\1 ", text)  # a pipe or && at a line's end
    found = []
    for line in text.splitlines():
        line = re.sub(r"^\s*\$ ", "", line)
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # not shell this test reads (an unbalanced quote of printf)
            continue
        command: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", "|", ";", "||"):
                if command[:1] == ["rollout"]:
                    found.append(shlex.join(command))
                command = []
            else:
                command.append(word)
    return found


def _blocks() -> list[tuple[str, list[str]]]:
    out = []
    for doc in DOCS:
        for n, m in enumerate(FENCE.finditer(doc.read_text())):
            if m.group(2) in SHELLS:
                commands = _commands(m.group(3))
                if commands:
                    out.append((f"{doc.relative_to(PROJECT)}#{n}", commands))
    return out


BLOCKS = _blocks()


def test_the_docs_hold_the_command_examples_this_test_runs() -> None:
    commands = [c for _, block in BLOCKS for c in block]
    assert len(commands) >= 12, commands
    assert {c for c in commands if c in NOT_RUN} == set(NOT_RUN)  # no stale exclusion


def _substituted(command: str, repo: Path, tmp: Path) -> list[str]:
    words = []
    for word in shlex.split(command)[1:]:
        for doc_word, ours in SUBSTITUTIONS.items():
            word = word.replace(doc_word, ours.format(repo=repo, tmp=tmp))
        words.append(word)
    return words


@pytest.mark.parametrize(("where", "commands"), BLOCKS, ids=[w for w, _ in BLOCKS])
def test_each_shell_block_runs_through_the_cli(where: str, commands: list[str],
                                               example_repo: Path, bare_remote: Path,
                                               tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for command in commands:
        if command in NOT_RUN:
            continue
        args = _substituted(command, example_repo, scratch)
        out = run_cli(args, cwd=example_repo)
        expected = EXIT_CODES.get(command, 0)
        assert out.returncode == expected, (
            f"{where}: `{command}` (ran: rollout {shlex.join(args)}) exited "
            f"{out.returncode}, the doc implies {expected}\n{out.stdout}\n{out.stderr}")
    assert git(example_repo, "status", "--porcelain", "--", "flags", "rollouts") == ""
