"""``rollout``: the command line. Each subcommand is a module with ``register`` and ``run``.

Exit codes shared by every command: 0 success, 1 the command did its job and found a
problem (invalid files, a failed gate...), 2 usage error, 3 unexpected internal error.
No Python traceback reaches a user unless ``ROLLOUT_DEBUG=1``.

:func:`run_command` is the one boundary: a :class:`runner.errors.RolloutError` becomes one
line and its kind's exit code, anything else exit 3 (see :mod:`runner.errors`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from runner import __version__
from runner.cli.commands import COMMANDS, SUMMARIES
from runner.errors import EXIT_INTERNAL, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, RolloutError, UsageError
from runner.safetext import safe_line

__all__ = ["EXIT_INTERNAL", "EXIT_OK", "EXIT_PROBLEM", "EXIT_USAGE", "build_parser", "main",
           "run_command"]

#: The exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(safe_line(f"{self.prog}: error: {message}", limit=1000), file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


class _ListingFormatter(argparse.HelpFormatter):
    """argparse measures the commands of the listing at the section's indent, not at the two
    columns deeper they are printed at, so a name of 12 or more letters (``migrate-state``)
    would push its summary to the next line: measured where it is printed."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if not isinstance(action, argparse._SubParsersAction):
            return
        for sub in action._get_subactions():
            width = len(self._format_action_invocation(sub)) + self._current_indent + 2
            self._action_max_length = max(self._action_max_length, width)


def build_parser(only: str | None = None, *, listing: bool = False) -> argparse.ArgumentParser:
    """The parser of every command, or of ``only`` that one (importing and registering all
    of them is ~0.2 s of start-up that ``rollout history`` and friends need not pay). With
    ``listing`` (no command named: ``rollout``, ``rollout --help``, a mistyped command) each
    command is only its line of :data:`SUMMARIES`, nothing imported: enough to list them or
    to say a name is none of them, never to run one."""
    parser = _Parser(prog="rollout", description="GitOps feature-flag rollouts.",
                     formatter_class=_ListingFormatter,
                     epilog="Exit codes of every command: 0 success, 1 it found a problem, "
                     "2 usage error, 3 internal error (ROLLOUT_DEBUG=1 shows a traceback); "
                     "advance also 4: a rollout was rolled back, and 5: a rollout was rolled "
                     "back but --publish failed (the rollback is in git, not in production). "
                     "`rollout COMMAND --help` tells each.")
    parser.add_argument("--version", action="version", version=f"rollout {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in (only,) if only in COMMANDS else COMMANDS:
        if listing and only not in COMMANDS:
            sub.add_parser(name, help=SUMMARIES[name])
            continue
        module = importlib.import_module(f"runner.cli.{name.replace('-', '_')}")
        module.register(sub)
    for command in sub.choices.values():  # the shared exit code each --help would otherwise omit
        if "3 internal" not in (command.description or "") and command.epilog is None:
            command.epilog = "Exit 3 on an internal error (ROLLOUT_DEBUG=1 shows a traceback)."
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = _joined_reasons(sys.argv[1:] if argv is None else list(argv))
    parser = build_parser(argv[0] if argv else None, listing=True)
    args = parser.parse_args(argv)
    if getattr(args, "reason", None) == []:  # argparse drops a value "--" (--reason=--)
        args.reason = "--"
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run_command(args)


def _joined_reasons(argv: list[str]) -> list[str]:
    """``--reason VALUE`` as ``--reason=VALUE``: the argument after ``--reason`` is its value
    whatever it starts with, as getopt reads it (argparse alone refuses ``--reason -x``, and a
    rollback must never fail on its reason). Nothing after ``--`` is touched."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--":
            return out + argv[i:]
        if argv[i] == "--reason" and i + 1 < len(argv):
            out.append(f"--reason={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command: the one place an exception becomes an exit code.

    A :class:`RolloutError` (a failure the code foresaw) prints one line and exits with its
    kind's code (2 for a usage error, 1 for the others); anything else is a bug: exit 3,
    "internal error" and its first line, with ``ROLLOUT_DEBUG=1`` re-raising it for the
    traceback (a usage error never has one). Ctrl-C exits 130, a closed pipe quietly 0."""
    prefix = f"rollout {args.command}"
    try:
        return int(args.run(args))
    except RolloutError as e:
        if os.environ.get("ROLLOUT_DEBUG") == "1" and not isinstance(e, UsageError):
            raise
        detail = str(e) or type(e).__name__
        print(safe_line(f"{prefix}: error: {detail}", limit=1000), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `rollout status | head`: the reader left; not an error worth a message
        sys.stderr.close()
        return EXIT_OK
    except Exception as e:  # the boundary: whatever a bug raises ends here, as exit 3
        if os.environ.get("ROLLOUT_DEBUG") == "1":
            raise
        detail = safe_line(str(e).splitlines()[0], 500) if str(e).strip() else type(e).__name__
        print(f"{prefix}: internal error: {detail} (set ROLLOUT_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL
