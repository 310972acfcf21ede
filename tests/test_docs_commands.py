"""Every ``rollout …`` command line of the docs' shell blocks runs through the CLI.

The shell blocks of README.md and docs/*.md are read top to bottom:

* ```` ```sh ```` (or ``bash``/``shell``): every line is shell; each ``rollout`` command
  (also after ``&&``, ``|`` or ``;``; continuation lines joined, comments dropped) runs;
* ```` ```console ````: a session; the lines after ``$ `` are commands, the others their
  output, which, when shown, must be what the command prints (unless abbreviated with
  ``…``).

Each command runs in-process (``run_cli``), in order, in a fresh copy of the example
repository with a bare ``origin`` (so that ``--push`` pushes), with the ``NAME=value``
assignments before it as its environment: each must exit with the code the doc implies
(0, or the one in :data:`EXIT_CODES`). What the docs name that this repository does not hold
is replaced by :data:`SUBSTITUTIONS`; a command that cannot run here is in :data:`NOT_RUN`
with the reason. Usage synopses (``rollout status [FLAG] [--format …]``) are in untagged
blocks: they are not commands.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass, field
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

#: Commands (as the docs write them) that are not run, and why.
NOT_RUN = {
    "rollout demo": "runs the whole story in its own temporary repository for some seconds "
                    "(real processes): tests/surfaces/test_demo.py runs it",
    "rollout validate": "the doc shows a repository with three problems; the example "
                        "repository has none (tests/test_validate_cli.py checks the messages)",
}

#: Commands whose documented exit code is not 0.
EXIT_CODES: dict[str, int] = {}
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass(frozen=True)
class Command:
    """One ``rollout`` command of a block: as written, its environment, its documented
    output (console sessions only)."""

    text: str
    env: dict[str, str] = field(default_factory=dict)
    output: str | None = None


def _split(line: str) -> list[tuple[list[str], dict[str, str]]]:
    """The simple commands of one shell line whose program is ``rollout``: (words, env)."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # not shell this test reads (an unbalanced quote of printf)
        return []
    found, command = [], []
    for word in [*words, "&&"]:
        if word not in ("&&", "|", ";", "||"):
            command.append(word)
            continue
        env = {}
        while command and ASSIGNMENT.match(command[0]):
            name, value = command.pop(0).split("=", 1)
            env[name] = value
        if command[:1] == ["rollout"]:
            found.append((command, env))
        command = []
    return found


def _commands(block: str, console: bool) -> list[Command]:
    """The ``rollout`` commands of a shell block, in order."""
    text = re.sub(r"\\\n\s*", " ", block)  # continuation lines
    text = re.sub(r"(\||&&)\s*\n\s*", r"\1 ", text)  # a pipe or && at a line's end
    found: list[Command] = []
    lines = text.splitlines()
    for n, line in enumerate(lines):
        if console and not line.startswith("$ "):
            continue
        output = None
        if console:
            rest = lines[n + 1:]
            end = next((k for k, x in enumerate(rest) if x.startswith("$ ")), len(rest))
            output = "\n".join(rest[:end])
            line = line[2:]
        found += [Command(shlex.join(words), env, output) for words, env in _split(line)]
    return found


def _blocks() -> list[tuple[str, list[Command]]]:
    out = []
    for doc in DOCS:
        for n, m in enumerate(FENCE.finditer(doc.read_text())):
            if m.group(2) in SHELLS:
                commands = _commands(textwrap.dedent(m.group(3)), m.group(2) == "console")
                if commands:
                    out.append((f"{doc.relative_to(PROJECT)}#{n}", commands))
    return out


BLOCKS = _blocks()


def test_the_docs_hold_the_command_examples_this_test_runs() -> None:
    commands = [c.text for _, block in BLOCKS for c in block]
    assert len(commands) >= 15, commands
    assert {c for c in commands if c in NOT_RUN} == set(NOT_RUN)  # no stale exclusion


def _substituted(command: str, repo: Path, tmp: Path) -> list[str]:
    words = []
    for word in shlex.split(command)[1:]:
        for doc_word, ours in SUBSTITUTIONS.items():
            word = word.replace(doc_word, ours.format(repo=repo, tmp=tmp))
        words.append(word)
    return words


@pytest.mark.parametrize(("where", "commands"), BLOCKS, ids=[w for w, _ in BLOCKS])
def test_each_shell_block_runs_through_the_cli(where: str, commands: list[Command],
                                               example_repo: Path, bare_remote: Path,
                                               tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for command in commands:
        if command.text in NOT_RUN:
            continue
        args = _substituted(command.text, example_repo, scratch)
        out = run_cli(args, cwd=example_repo, env=command.env or None)
        expected = EXIT_CODES.get(command.text, 0)
        assert out.returncode == expected, (
            f"{where}: `{command.text}` (ran: rollout {shlex.join(args)}) exited "
            f"{out.returncode}, the doc implies {expected}\n{out.stdout}\n{out.stderr}")
        if command.output and "…" not in command.output:  # shown, and shown whole
            assert out.stdout.rstrip("\n") == command.output, (where, command.text)
    assert git(example_repo, "status", "--porcelain", "--", "flags", "rollouts") == ""
