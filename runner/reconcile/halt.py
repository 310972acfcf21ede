"""``rollout halt`` and ``rollout unhalt``: a person's commit of the stop-the-line switch file.

One commit adds (halt) or removes (unhalt) ``<rollouts_dir>/HALT.json`` (``HALT.<env>.json``
for one environment), through the runner's crash-safe commit (``runner.reconcile.commit``),
with the runner's identity as ``rollout pause``'s commit has it and the person in the file and
in ``Rollout-Requested-By``. It carries no ``Rollout-Action``: it is not a runner commit and
changes no state, so no rollout's history reads it as one. With ``--push`` a rejected push is
retried from the remote head, as a run's is.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from runner.errors import Declined, UsageError
from runner.git import Git
from runner.load import load_config
from runner.load.halt import halt_document, halt_path, read_halt
from runner.model import RepoConfig
from runner.model.freeze import Halt
from runner.reconcile.commit import CommitSpec, FileChange, commit, index_lock, locked, recover
from runner.reconcile.freeze import halted_reason
from runner.reconcile.runs import Options, Stop, _align, author

SWITCH = "Rollout-Switch"
ENVIRONMENT = "Rollout-Environment"
REQUESTED_BY = "Rollout-Requested-By"


@dataclass(frozen=True, slots=True)
class Switched:
    """What ``rollout halt``/``unhalt`` did."""

    #: The halt committed (halt), or the one removed (unhalt).
    halt: Halt
    path: str
    sha: str
    pushed: bool = False


def check_environment(config: RepoConfig, environment: str | None) -> None:
    """UsageError when ``--env`` names no declared environment."""
    if environment is None:
        return
    names = [e.name for e in config.environments]
    if not names:
        raise UsageError(f"--env {environment}: the repository declares no environments "
                         "([tool.rollout.environments]); halt without --env")
    if environment not in names:
        raise UsageError(f"--env {environment}: not a declared environment "
                         f"({', '.join(names)})")


def switch_message(halt: Halt, on: bool, by: str, reason: str) -> str:
    """The commit's message: ``rollout: halt: incident 123`` (``rollout(@production): …``
    for one environment), a line saying what it means, the trailers."""
    where = f"(@{halt.environment})" if halt.environment else ""
    why = f": {reason}" if reason else ""
    scope = f"environment {halt.environment}" if halt.environment else "the repository"
    if on:
        body = (f"{halted_reason(halt)}. No rollout of {scope} starts, advances or completes "
                "until `rollout unhalt`; rollbacks, pauses and holds still happen.")
    else:
        body = (f"Unhalted by {by}{why}: the rollouts of {scope} go on at the next run "
                f"(it was {halted_reason(halt)}).")
    trailers = [f"{SWITCH}: {'halt' if on else 'unhalt'}"]
    if halt.environment:
        trailers.append(f"{ENVIRONMENT}: {halt.environment}")
    trailers.append(f"{REQUESTED_BY}: {by}")
    return (f"rollout{where}: {'halt' if on else 'unhalt'}{why}\n\n{body}\n\n"
            + "\n".join(trailers) + "\n")


def _change(opts: Options, environment: str | None, on: bool, by: str,
            reason: str) -> tuple[Halt, str, CommitSpec]:
    """The commit to make from the repository as it is now; Declined when the switch is
    already where it is asked to be."""
    config, problems = load_config(opts.root)
    if problems:
        raise Stop("\n".join(str(p) for p in problems))
    check_environment(config, environment)
    path = halt_path(config.rollouts_dir, environment)
    current, _ = read_halt(opts.root, config, environment)
    scope = f"environment {environment}" if environment else "the repository"
    if on:
        if current is not None:
            raise Declined(f"{scope} is already {halted_reason(current)}; "
                           "`rollout unhalt` first")
        halt = Halt(by, opts.now, reason, environment)
        content: bytes | None = halt_document(halt)
    else:
        if current is None:
            raise Declined(f"{scope} is not halted (no {path})")
        halt, content = current, None
    return halt, path, CommitSpec(switch_message(halt, on, by, reason),
                                  (FileChange(path, content),))


def apply_switch(opts: Options, environment: str | None, on: bool, by: str,
                 reason: str = "") -> Switched:
    """Halt (``on``) or unhalt ``environment`` (None: every environment, or the whole
    repository): one commit, pushed with ``opts.push``. Declined when there is nothing to
    do; Stop when the clone is not in a state to commit to."""
    git = Git.open(opts.root)
    config, _ = load_config(opts.root)
    who = author(config, opts.env)
    with locked(git):
        if (lock := index_lock(git)) is not None:
            raise Stop(f"{lock} exists: another git process holds the index; nothing written")
        recover(git, [config.rollouts_dir])
        branch = opts.branch or git.branch()
        if opts.push:
            if not branch:
                raise Stop("HEAD is detached; name the branch to push with --branch")
            _align(git, opts.remote, branch)
        elif git.branch() is None:
            raise Stop("HEAD is detached: the commit would be on no branch; check out a branch")
        for attempt in range(1, max(opts.attempts, 1) + 1):
            halt, path, spec = _change(opts, environment, on, by, reason)
            rel = git.rel(path)
            if git.dirty([path]):
                raise Stop(f"uncommitted changes to {path}; commit or remove them first")
            spec = CommitSpec(spec.message, (FileChange(rel, spec.changes[0].content),))
            sha = commit(git, [spec], who, when=int(opts.now.timestamp()), switches={rel})[0]
            if not opts.push:
                return Switched(halt, path, sha)
            assert branch is not None
            ok, detail = git.push(opts.remote, branch)
            if ok:
                return Switched(halt, path, sha, pushed=True)
            remote_head = git.fetch(opts.remote, branch)
            if git.is_ancestor(remote_head, sha):  # the remote did not move: a refusal
                git.move_to(remote_head)
                raise Stop(f"push to {opts.remote}/{branch} failed: {detail}")
            git.move_to(remote_head)  # drop ours: decide again on what the remote holds
            time.sleep(random.uniform(0.02, 0.1) * attempt)
        raise Stop(f"push to {opts.remote}/{branch} rejected {opts.attempts} times; nothing "
                   "lost, run the command again")


__all__ = ["ENVIRONMENT", "REQUESTED_BY", "SWITCH", "Switched", "apply_switch",
           "check_environment", "switch_message"]
