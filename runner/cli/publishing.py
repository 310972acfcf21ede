"""``--publish TARGET`` (advance) and ``--to TARGET`` (publish): parse and check targets,
call runner.reconcile.publish, print what happened, turn a failure into its exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from runner.cli.environment_option import chosen_environment
from runner.errors import UsageError
from runner.load.config import load_config
from runner.reconcile.publish import (
    Outcome,
    PublishError,
    Target,
    parse_target,
    publish_environments_at,
    signing_key,
    target_problems,
)
from runner.safetext import safe_line

#: What each environment publishes, in promotion order: (environment, its targets); one
#: entry (None, targets) in a repository that declares no environments.
PublicationPlan = list[tuple[str | None, list[Target]]]

#: A publication failed after the run rolled something back: the rollback is in git but
#: not where applications read their flags.
EXIT_ROLLBACK_NOT_PUBLISHED = 5

TARGET_HELP = ("dir:PATH (flags.json and flags.flagd.json in that folder), branch:NAME (a "
               "commit per served change on a branch of its own history; pushed with --push), "
               "or PATH.json (the native artifact alone, as before)")


def parse_targets(option: str, values: Sequence[str], root: Path,
                  push_branch: str | None = None,
                  env: Mapping[str, str] | None = None) -> list[Target]:
    """The targets, each checked before anything is done: a usage error names the first
    that cannot work (empty, a folder where a file goes, an invalid branch name...), or
    the signing key the repository names when it is unset or invalid (``env``, default
    the process's environment)."""
    targets = []
    for value in values:
        try:
            target = parse_target(value)
        except ValueError as e:
            raise UsageError(f"{option} {safe_line(repr(value))}: {e}; {TARGET_HELP}") from None
        problem = target_problems(root, target)
        if problem is None and target.kind == "branch" and push_branch is not None \
                and target.value.casefold() == push_branch.casefold():  # case aside: a ref
            # is a file where case does not count (macOS, Windows)
            problem = "that is the branch the run pushes to"
        if problem is not None:
            raise UsageError(f"{option} {safe_line(value)}: {problem}; {TARGET_HELP}")
        targets.append(target)
    if targets:
        signing_key(root, os.environ if env is None else env)
    return targets


def plan_targets(option: str, values: Sequence[str], root: Path, *,
                 environment: str | None = None, push_branch: str | None = None,
                 env: Mapping[str, str] | None = None) -> PublicationPlan:
    """Where each environment publishes, every target checked before anything is done
    (:func:`parse_targets`). Without ``[tool.rollout.environments]``: ``values`` as always.
    With them: ``values`` for ``environment`` (or the one declared environment); none
    (or only bare ``--publish``, an empty value) for each environment named or declared,
    its ``publish`` targets from the config. Explicit targets for several environments at
    once, one target for two environments, or nothing to publish to are usage errors."""
    config = load_config(root)[0]
    chosen = chosen_environment(config, environment)
    if not config.environments:
        return [(None, parse_targets(option, values, root, push_branch, env))] if values else []
    declared = [e.name for e in config.environments]
    names = [chosen] if chosen is not None else declared
    explicit = [v for v in values if v != ""]
    if explicit and len(names) > 1:
        raise UsageError(f"{option} {safe_line(explicit[0])}: this repository declares "
                         f"environments ({', '.join(declared)}), each published to its own "
                         f"targets: name one with --env NAME, or leave the target out to "
                         "publish each to its [tool.rollout.environments.NAME] publish")
    if explicit:
        return [(names[0], parse_targets(option, explicit, root, push_branch, env))]
    if not values:
        return []
    plan: PublicationPlan = []
    owner: dict[str, str] = {}
    for name in names:
        found = config.environment(name)
        wanted = found.publish if found is not None else ()
        if not wanted and chosen is not None:
            raise UsageError(f"{option}: the environment {name} has no publish targets "
                             f"([tool.rollout.environments.{name}] publish); give "
                             f"{option} TARGET")
        targets = parse_targets(f"[tool.rollout.environments.{name}] publish", wanted, root,
                                push_branch, env)
        for t in targets:
            other = owner.setdefault(_place(t), name)
            if other != name:
                raise UsageError(safe_line(f"[tool.rollout.environments.{name}] publish: {t} "
                                           f"is also {other}'s; each environment publishes "
                                           "to its own targets"))
        if targets:
            plan.append((name, targets))
    if not plan:
        raise UsageError(f"{option}: no environment declares publish targets "
                         "([tool.rollout.environments.NAME] publish); give a TARGET")
    return plan


def _place(target: Target) -> str:
    """Where a target writes, to tell two environments' targets apart: a folder or a file
    resolved, a branch by its name (letter case aside, as a ref is a file)."""
    if target.kind == "branch":
        return f"branch:{target.value.casefold()}"
    return f"path:{os.path.realpath(target.value)}"


def publish_plan(root: Path, plan: PublicationPlan, head: str | None,
                 env: Mapping[str, str], *, command: str, option: str, push: bool = False,
                 remote: str = "origin", rolled_back: Sequence[str] = ()) -> int | None:
    """:func:`publish` for each environment of ``plan`` (its lines prefixed with the
    environment's name when it has one), from one load of the repository; None when every
    target of every environment is done, else the exit code (5 when a rollback is among
    the run's changes)."""
    if len(plan) == 1 and plan[0][0] is None:
        return publish(root, plan[0][1], head, env, command=command, option=option,
                       push=push, remote=remote, rolled_back=rolled_back)
    prefix = f"rollout {command}: {option}"
    targets = [t for _, ts in plan for t in ts]
    try:
        results = publish_environments_at(root, plan, head, env, push=push, remote=remote)
    except PublishError as e:
        return _failed([str(e)], targets, rolled_back, prefix, printed=False)
    errors = [e for (name, _), outcomes in zip(plan, results, strict=True)
              for e in _said(outcomes, env, prefix, f"{name}: ")]
    if not errors:
        return None
    return _failed(errors, targets, rolled_back, prefix, printed=True)


def publish(root: Path, targets: Sequence[Target], head: str | None,
            env: Mapping[str, str], *, command: str, option: str, push: bool = False,
            remote: str = "origin", rolled_back: Sequence[str] = ()) -> int | None:
    """Publish the repository as it is at ``head`` (default: HEAD) to ``targets`` (the
    commits by the runner's identity, ``ROLLOUT_AUTHOR_*`` in ``env``) and print one line
    per target. None when every target is published, unchanged, or holds a newer
    publication already (a warning line, ``::warning`` under GitHub Actions: this run's
    flags are older, and never replace it); else the exit code: 5 after a rollback (with
    an ``::error`` line on stdout naming the flags), else 1 (a diverged history among
    them)."""
    prefix = f"rollout {command}: {option}"
    try:
        outcomes = publish_environments_at(root, [(None, targets)], head, env, push=push,
                                           remote=remote)[0]
    except PublishError as e:
        return _failed([str(e)], targets, rolled_back, prefix, printed=False)
    errors = _said(outcomes, env, prefix, "")
    if not errors:
        return None
    return _failed(errors, targets, rolled_back, prefix, printed=True)


def _said(outcomes: Sequence[Outcome], env: Mapping[str, str], prefix: str,
          where: str) -> list[str]:
    """Print one line per target (``where``: the environment's ``NAME: ``, or nothing);
    the errors, each naming its target."""
    errors: list[str] = []
    for o in outcomes:
        for note in o.notes:
            print(safe_line(f"note: {where}{note}"), file=sys.stderr)
        if o.error is not None:
            errors.append(f"{where}{o.target}: {o.error}")
            print(safe_line(f"{prefix} {where}{o.target}: {o.error}", limit=2000),
                  file=sys.stderr)
        elif o.newer is not None:
            # not a failure (exit 0): a newer publication is where it should be; but never
            # a plain "published" either: this run's flags are not what is served
            print(_warning(where + o.newer, env))
        else:
            print(safe_line(where + _done(o)))
    return errors


def _warning(text: str, env: Mapping[str, str]) -> str:
    """One warning line: a workflow command under GitHub Actions (only its fixed prefix
    from the runner, the rest one safe line with ``%`` escaped), else plain."""
    line = safe_line(text, limit=2000)
    if env.get("GITHUB_ACTIONS") == "true":
        return f"::warning title=not published::{line.replace('%', '%25')}"
    return f"warning: {line}"


def _done(o: Outcome) -> str:
    t = o.target
    if t.kind == "file":  # the words `advance --publish PATH` always printed
        return f"published {t.value}" if o.changed else f"{t.value} unchanged"
    at = f" at {o.commit[:12]}" if o.commit else ""
    if not o.changed:
        why = ": a racing run had published the same" if o.raced else ""
        return f"{t} unchanged{at}{why}"
    where = " (pushed)" if o.pushed else ""
    return f"published {t}{at}{where}: {', '.join(o.changed)}"


def _failed(errors: Sequence[str], targets: Sequence[Target], rolled_back: Sequence[str],
            prefix: str, *, printed: bool) -> int:
    if not printed:
        for e in errors:
            print(safe_line(f"{prefix}: {e}", limit=2000), file=sys.stderr)
    if not rolled_back:
        print(safe_line(f"{prefix}: not published ({len(errors)} target(s) failed); the next "
                        "run publishes again"), file=sys.stderr)
        return 1
    # the loudest failure there is: the rollback is in git, not in production. Only this
    # fixed prefix may start the line; everything input-derived goes through safe_line
    detail = safe_line(f"{', '.join(rolled_back)} rolled back in git but NOT published to "
                       f"{', '.join(map(str, targets))}: {errors[0]}", limit=2000)
    # a workflow command's data: % and line breaks escaped as GitHub reads them
    print(f"::error title=rollback not published::{detail.replace('%', '%25')}")
    print(safe_line(f"ROLLBACK NOT PUBLISHED: {', '.join(rolled_back)}"))
    return EXIT_ROLLBACK_NOT_PUBLISHED


def add_publish_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--publish", metavar="TARGET", action="append", default=[], nargs="?",
                   const="",
                   help="after the run (and its push), publish the flags there when what they "
                   f"serve changed; repeatable. TARGET: {TARGET_HELP}. In a repository that "
                   "declares environments, --publish alone publishes each environment to "
                   "its own [tool.rollout.environments.NAME] publish targets")
