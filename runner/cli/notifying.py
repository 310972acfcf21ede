"""After a command's commits: the notifications of ``[tool.rollout.notify]``, and the
warnings about what was not delivered (``::warning`` lines in GitHub Actions), never a
failure. The behaviour is in ``runner/integrations/notify.py``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from runner.load.config import load_notify
from runner.safemarkup import markdown
from runner.safetext import safe_line

if TYPE_CHECKING:
    from runner.integrations.notify import Outcome
    from runner.reconcile.runs import Options, Report


def _escape(text: str) -> str:
    """A workflow command's message: ``%``, CR and LF escaped as the runner reads them."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def after_run(opts: Options, rep: Report) -> None:
    """Announce what ``rep`` committed (``runner.integrations.notify.announce``) and warn
    about what was not delivered; not on a dry run."""
    if opts.dry_run:
        return
    config, problems = load_notify(opts.root)
    if not config.targets and not problems:
        return
    # imported only when something is configured: urllib and http.client are start-up
    # (~15 ms) that a run notifying no one need not pay
    from runner.integrations.notify import announce

    # a bad [tool.rollout.notify] is said at every run
    outcome = announce(config, problems, rep, opts.env, opts.now, datetime.now(UTC),
                       push=opts.push)
    _said(opts, outcome)


def after_switch(opts: Options, event: str, environment: str | None, reason: str, sha: str,
                 pushed: bool, by: str) -> None:
    """Announce ``rollout halt``/``unhalt`` (``event``) as :func:`after_run` announces a
    run's commits: with ``--push`` only once pushed; never a failure."""
    config, problems = load_notify(opts.root)
    if (not config.targets and not problems) or (opts.push and not pushed):
        return
    from runner.integrations.notify import announce_switch  # start-up: see after_run

    _said(opts, announce_switch(config, problems, event, environment, reason, sha, pushed,
                                by, opts.env, opts.now, datetime.now(UTC)))


def _said(opts: Options, outcome: Outcome) -> None:
    """The warnings and the count of what ``outcome`` delivered, and the step summary."""
    github = opts.env.get("GITHUB_ACTIONS") == "true"
    for text in [*(f"notify: {w}" for w in outcome.warnings),
                 *(f"notification not delivered: {u}" for u in outcome.undelivered)]:
        line = safe_line(text, 1000)
        print(f"::warning title=rollout notify::{_escape(line)}" if github
              else f"warning: {line}", file=sys.stderr)
    if outcome.attempted:
        failed = outcome.undelivered
        print(f"notifications: {len(outcome.delivered)} delivered"
              + (f", {len(failed)} not delivered ("
                 + "; ".join(safe_line(f"{u.target}: {u.event} of {u.flag}", 200)
                             for u in failed[:10]) + ")" if failed else ""))
    summary = opts.env.get("GITHUB_STEP_SUMMARY")
    if summary and outcome.undelivered:
        try:
            with open(summary, "a", encoding="utf-8") as f:
                f.write("\n### Notifications not delivered\n\n")
                f.writelines(f"- {markdown(safe_line(str(u), 500))}\n"
                             for u in outcome.undelivered)
        except OSError as e:
            print(safe_line(f"warning: cannot write the step summary: {e}"), file=sys.stderr)
