"""The commands of ``rollout`` and each one's line in the help: the one owner of both.

``runner/cli/main.py`` lists the commands from here without importing their modules (a
mistyped command and ``rollout --help`` pay no start-up for them), and each command module's
``register`` gives its parser the same line from here.
"""

from __future__ import annotations

#: Subcommand modules under runner.cli, in the order ``rollout --help`` lists them.
COMMANDS = (
    "validate", "plan", "simulate", "advance", "status", "history", "incident", "rollback",
    "pause", "resume", "retry", "approve", "halt", "unhalt", "build", "publish", "keygen",
    "eval", "init", "demo", "issue",
    "migrate-state",
)

#: Each command's one line in ``rollout --help``, so that the top-level help (and a mistyped
#: command) lists the commands without importing all of them (~0.2 s of start-up: validate
#: alone pulls in jsonschema, jinja2 and every gate source); each module's ``register`` uses
#: its line (tests/surfaces/test_help_listing.py checks both lists the same).
SUMMARIES = {
    "validate": "check flags, rollout plans and [tool.rollout]",
    "plan": "show what a change does to flags and rollouts (for pull requests)",
    "advance": "check the gates of every rollout and commit the next step or a rollback",
    "status": "show where each rollout is",
    "history": "the audit trail of a flag (or all flags) from git",
    "incident": "the incident report of each rollback of a flag, from git",
    "rollback": "roll a flag back to 0%% now",
    "pause": "pause a rollout where it is",
    "resume": "resume a paused rollout",
    "retry": "start a rolled back rollout again",
    "approve": "approve a rollout's next step that needs approval",
    "halt": "stop the line: no rollout advances until `rollout unhalt`",
    "unhalt": "lift a halt: the rollouts go on",
    "build": "write the resolved flags artifact applications load",
    "publish": "publish the served flags (native and flagd) to a folder or a branch",
    "keygen": "print a new key pair for signing publications (flags.sig)",
    "eval": "evaluate a flag for a user: value, variant and reason",
    "init": "scaffold a new GitOps repository (flags, a plan, schemas, workflows)",
    "demo": "run the whole story offline: rollout, automatic rollback, git revert, audit",
    "issue": "open or update the GitHub issue of rolled-back rollouts",
    "simulate": "replay a plan over recorded metrics: what the runner would have decided",
    "migrate-state": "move the state files to the fanout layout, in one commit",
}
