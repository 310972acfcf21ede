"""The one error hierarchy: every error Rollout Runner raises on purpose, and its exit code.

A :class:`RolloutError` is a failure the code foresaw: its message is one line fit for the
person at the terminal, and ``exit_code`` is what a command stopped by it exits with (see
``runner/cli/main.py``, the one boundary that turns them into exit codes). Anything else that
reaches that boundary is a bug: exit 3, "internal error", and ``ROLLOUT_DEBUG=1`` shows the
traceback. A command catches only these (or a kind of them) to say more, never ``Exception``.

The kinds are the ones the exit codes name:

- :class:`UsageError` (2): how the command was called is wrong; nothing was done.
- :class:`ContentError` (1): content the command reads (a repository file, a commit, an
  artifact, a template) cannot be used.
- :class:`ExternalError` (1): something outside the process (git, an HTTP server, a metric
  source, the GitHub API) failed or answered nothing usable.
- :class:`Declined` (1): the command would not act, safely: the state or the files in the
  way forbid it; the message says why.

``rollout advance``'s exit codes 4 (a rollout was rolled back) and 5 (rolled back, but
``--publish`` failed) are results, not errors: no exception carries them.

Like ``runner/git.py``, this module imports none of the layers: any of them may raise these.
"""

from __future__ import annotations

from typing import ClassVar

#: The exit codes every command shares.
EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class RolloutError(Exception):
    """A failure the code foresaw: a one-line message, and the exit code it means (1: the
    command found a problem, unless a kind says otherwise)."""

    exit_code: ClassVar[int] = EXIT_PROBLEM


class UsageError(RolloutError):
    """A mistake in how the command was called: exit 2 with the message."""

    exit_code: ClassVar[int] = EXIT_USAGE


class ContentError(RolloutError):
    """Content the command reads (a file of the repository, a commit, an artifact, a
    template) cannot be used; the message names it and says why."""


class ExternalError(RolloutError):
    """A program or service outside the process (git, an HTTP server, a metric source, the
    GitHub API) failed or answered nothing usable; the message is safe to print (no token)."""


class Declined(RolloutError):
    """The command would not act: doing so would be unsafe or make no sense (a phase that
    forbids the request, a file in the way); nothing was written, the message says why."""
