"""``rollout --help`` lists the commands without importing them: its table of one-line
summaries (``runner.cli.main.SUMMARIES``) says exactly what each command's own ``register``
says, and the listing is the same text as with every command registered."""

from __future__ import annotations

import argparse
import subprocess
import sys

from runner.cli import main as cli_main


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_summaries_are_each_commands_own_help() -> None:
    full = _subcommands(cli_main.build_parser())
    own = {a.dest: a.help for a in full._choices_actions}
    assert own == cli_main.SUMMARIES
    assert list(own) == list(cli_main.COMMANDS)


def test_the_listing_is_the_full_help() -> None:
    assert (cli_main.build_parser(listing=True).format_help()
            == cli_main.build_parser().format_help())


def test_top_level_help_imports_no_command() -> None:
    code = ("import sys\nfrom runner.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('runner.cli.') "
            "and m not in ('runner.cli.main', 'runner.cli.commands')), file=sys.stderr)\n"
            "print(sorted(m for m in ('jsonschema', 'jinja2', 'yaml') if m in sys.modules), "
            "file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert "validate" in proc.stdout
    assert proc.stderr.splitlines() == ["[]", "[]"]


def test_a_command_still_gets_its_own_parser() -> None:
    parser = cli_main.build_parser("validate", listing=True)
    args = parser.parse_args(["validate"])
    assert callable(args.run)
