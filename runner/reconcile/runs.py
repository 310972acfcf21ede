"""One run of the runner: read the repository and its history, decide, commit, push.

The commands call :func:`advance` and :func:`apply_request`. Time comes in as ``now``; the
only clock read here is for commit dates and push back-off.
"""

from __future__ import annotations

import dataclasses
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from runner.errors import Declined
from runner.gates.readings import MISSING_FILE
from runner.gates.request import GateRequest
from runner.git import Git, GitError, author_ident
from runner.load import check_repository, layout, load_config
from runner.load.halt import halt_of
from runner.load.statefile import dump_state
from runner.model import GateResult, Phase, RepoConfig, Repository, RolloutState, Verdict
from runner.model.plan import RolloutPlan
from runner.reconcile import last_change, promotion
from runner.reconcile.commit import (
    CommitSpec,
    FileChange,
    check_identity,
    commit,
    index_lock,
    locked,
    recover,
    stale_index_message,
)
from runner.reconcile.decide import (
    SAMPLE_RATIO,
    Action,
    Approver,
    Decision,
    LastChange,
    Orphan,
    approve,
    cleanup,
    decide,
    needs_evaluation,
    pause_dependents,
    paused_unreadable,
    request,
)
from runner.reconcile.freeze import line_stop
from runner.reconcile.message import message, parse_message
from runner.reconcile.shard import Shard
from runner.reconcile.view import kill_switches

#: Evaluates gates: requests -> results by flag.
Evaluator = Callable[[Sequence[GateRequest], datetime], Mapping[str, Sequence[GateResult]]]

PUSH_ATTEMPTS = 10


class Stop(Declined):
    """The run cannot go on safely; the message says why (exit 1, nothing written)."""


@dataclass
class Options:
    root: Path
    now: datetime
    flags: tuple[str, ...] = ()
    dry_run: bool = False
    push: bool = False
    remote: str = "origin"
    branch: str | None = None
    attempts: int = PUSH_ATTEMPTS
    #: ``--shard I/N``: only the rollouts of this shard (``runner/reconcile/shard.py``).
    shard: Shard | None = None
    #: The environment as the command read it, once (ROLLOUT_AUTHOR_NAME and _EMAIL here);
    #: nothing below the command reads the process's own.
    env: Mapping[str, str] = field(default_factory=dict)
    #: ``--env NAME`` (repositories with ``[tool.rollout.environments]``): the environments
    #: the run acts in; empty: every one (``advance``), or none named (the requests).
    environments: tuple[str, ...] = ()


def unreadable_cause(gates: Sequence[GateResult]) -> str | None:
    """Why an evaluation's metrics could not be read, or None when they were: the detail of
    the first blocking gate whose source failed (a missing file, an unreachable Prometheus, a
    failing command, a document without the metric) or whose metrics file is missing.
    Inconclusive for lack of traffic or stale data is read, and so is a sample-ratio
    mismatch (the data is there, and says the assignment is broken)."""
    for g in gates:
        if g.dry_run:
            continue
        if g.verdict is Verdict.ERROR and g.name != SAMPLE_RATIO:
            return g.detail or f"{g.name}: the metric source failed"
        if g.verdict is Verdict.INCONCLUSIVE and g.detail.endswith(MISSING_FILE):
            return g.detail
    return None


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A rollout whose metrics this run could not read, or which an earlier run paused for
    that (and which stays paused until a person resumes it)."""

    flag: str
    cause: str
    #: Paused for it: by this run's decision, or by an earlier run's.
    paused: bool
    #: Paused for it by an earlier run (this run did not evaluate the gates).
    earlier: bool = False
    #: The source failed (counted against ``error_limit``), rather than a missing file (no
    #: data: counted against the progress deadline).
    error: bool = False
    #: Still progressing after this run (holding): not paused, for this or another reason.
    running: bool = False
    #: The declared environment the rollout runs in (None: a repository without them).
    environment: str | None = None


def paused_for_metrics(state: RolloutState | None) -> str | None:
    """The cause when ``state`` is paused by the runner because its metrics could not be
    read (a person's ``rollout pause`` is not: it says who)."""
    if state is None or not paused_unreadable(state):
        return None
    return unreadable_cause(state.last_gates)


def unreadable(d: Decision) -> Unreadable | None:
    """Whether ``d``'s rollout could not read its metrics (:class:`Unreadable`)."""
    if d.gates:
        cause = unreadable_cause(d.gates)
        if cause is None:
            return None
        # paused for it: the progress deadline's or error_limit's pause (a sample-ratio or
        # a clock-skew pause is for another reason, and says so)
        paused = d.action is Action.PAUSE and paused_for_metrics(d.after) is not None
        error = any(g.verdict is Verdict.ERROR and not g.dry_run for g in d.gates)
        running = d.after is not None and d.after.phase is Phase.PROGRESSING
        return Unreadable(d.flag, cause, paused, error=error, running=running,
                          environment=d.environment)
    if d.action is None and (cause := paused_for_metrics(d.before)) is not None:
        return Unreadable(d.flag, cause, True, earlier=True, environment=d.environment)
    return None


@dataclass
class Report:
    decisions: list[Decision] = field(default_factory=list)
    #: flag -> commit id, for the decisions that were committed
    commits: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Errors the run went on past, failing safe (an unrecognised ``EMERGENCY_SHUTDOWN``).
    errors: list[str] = field(default_factory=list)
    pushed: bool = False
    head: str | None = None
    #: The repository had problems: only moves toward safety were committed (exit 1).
    degraded: bool = False
    #: The time the run acted at (``Options.now``).
    now: datetime | None = None
    #: ``advance``: the plans the run judged by (``--dry-run`` says how far a gate is from
    #: deciding, ``runner.review.run_text``).
    plans: Mapping[str, RolloutPlan] = field(default_factory=dict)

    @property
    def rolled_back(self) -> list[str]:
        return [d.flag for d in self.decisions if d.action is Action.ROLLBACK]

    @property
    def unreadable(self) -> list[Unreadable]:
        """The selected rollouts whose metrics could not be read (:func:`unreadable`)."""
        return [u for d in self.decisions if d.selected and (u := unreadable(d)) is not None]


def author(config: RepoConfig, env: Mapping[str, str]) -> tuple[str, str]:
    """The runner's commit identity; Stop when git could read it as more than a name and an
    address (``<``, ``>``, a line break or another control character), naming where it is
    set: the variable when it comes from the environment, else the pyproject.toml field."""
    who = []
    for var, key, default in (("ROLLOUT_AUTHOR_NAME", "author_name", config.author_name),
                              ("ROLLOUT_AUTHOR_EMAIL", "author_email", config.author_email)):
        value = env.get(var) or default
        where = f"${var}" if env.get(var) else f"[tool.rollout] {key} in pyproject.toml"
        if (why := check_identity(value, where)) is not None:
            raise Stop(f"{why}; nothing was written")
        who.append(value)
    return who[0], who[1]


def state_path(config: RepoConfig, plan_name: str, environment: str | None = None) -> str:
    """The state file of a plan (in ``environment``, when environments are declared),
    relative to the repository root (``runner.load.layout``)."""
    return layout.state_path(config.rollouts_dir, config.state_layout, plan_name, environment)


# --- gate evaluation -------------------------------------------------------------------------


def gates_evaluator(root: Path, env: Mapping[str, str], max_workers: int | None = None) -> Evaluator:
    """The real metric sources (layer 4), imported only when a run needs them. Sources of
    different rollouts are read concurrently, all at once unless ``max_workers`` bounds it:
    a slow source delays the others' decisions by at most its own timeout. The sources
    get ``env`` without the publication signing key (``[tool.rollout.publish]
    signing_key_env``): a gate command is the repository's program, and the key that signs
    what every client trusts is publishing's alone."""
    key_var = load_config(root)[0].signing_key_env
    if key_var is not None and key_var in env:
        env = {k: v for k, v in env.items() if k != key_var}

    def evaluate(requests: Sequence[GateRequest],
                 now: datetime) -> Mapping[str, Sequence[GateResult]]:
        if not requests:
            return {}
        from runner.gates.assess import assess_all  # start-up: sources, templates, stats (~13 ms)

        return assess_all(requests, root=root, now=now, env=env, max_workers=max_workers)

    return evaluate


class _CachedEvaluator:
    """Within one run, a retry after a rejected push reuses an evaluation of the same
    rollout at the same step and ``now`` instead of querying the sources again."""

    def __init__(self, inner: Evaluator) -> None:
        self.inner = inner
        self.cache: dict[tuple[str, str, int, float], Sequence[GateResult]] = {}

    @staticmethod
    def _key(r: GateRequest) -> tuple[str, str, int, float]:
        # the environment too: two environments' plans may have the same digest
        env = r.plan.environment
        return (r.flag if env is None else f"{r.flag}@{env}", r.plan.digest, r.step,
                r.percentage)

    def __call__(self, requests: Sequence[GateRequest],
                 now: datetime) -> Mapping[str, Sequence[GateResult]]:
        missing = {r.flag: r for r in requests if self._key(r) not in self.cache}
        for flag, results in self.inner(list(missing.values()), now).items():
            self.cache[self._key(missing[flag])] = tuple(results)
        return {r.flag: self.cache.get(self._key(r), ()) for r in requests}


# --- deciding -----------------------------------------------------------------------------------


#: What the runner still commits for a rollout while the repository has problems elsewhere:
#: moves toward safety only. A repository nobody could review whole never raises exposure,
#: but a broken, unrelated file must not keep a failing rollout from being rolled back.
SAFE_ACTIONS = frozenset({Action.ROLLBACK, Action.PAUSE, Action.HOLD, Action.OBSERVE})


def _load(root: Path, report: Report, stop_only: str | None = None,
          safety_only: bool = False) -> tuple[Repository, frozenset[str] | None]:
    """The repository, and None when it is valid. When it is not, the run may still act on
    the rollouts whose own files are valid (returned as the second item): the one being
    rolled back or paused with ``stop_only``, or with ``safety_only`` every such rollout,
    for :data:`SAFE_ACTIONS` alone. The problems are reported as a note; otherwise Stop."""
    checked = check_repository(root)
    if checked.repository is not None:
        return checked.repository, None
    problems = checked.problems
    repo = checked.salvaged
    first = f"{len(problems)} problem(s) in the repository (first: {problems[0]})"
    if stop_only is not None and checked.sound(stop_only):
        note = f"warning: {first}; {stop_only}'s own files are valid, so this goes ahead"
        if note not in report.notes:  # once, however many push attempts
            report.notes.append(note)
        return repo, frozenset({stop_only})
    sound = frozenset(f for f in repo.plans if checked.sound(f))
    if safety_only and sound:
        report.degraded = True
        note = (f"warning: {first}; until they are fixed nothing advances: only rollbacks, "
                f"pauses and holds of the {len(sound)} rollout(s) whose own files are valid "
                "are committed")
        if note not in report.notes:
            report.notes.append(note)
        return repo, sound
    lines = "\n".join(str(p) for p in problems[:20])
    raise Stop(f"the repository is not valid; nothing was changed:\n{lines}")


def _safety_only(decisions: Sequence[Decision], sound: frozenset[str]) -> list[Decision]:
    """``decisions`` with every one that is not a move toward safety of a sound rollout
    turned into "nothing done", saying why."""
    out = []
    for d in decisions:
        if d.action is not None and (d.action not in SAFE_ACTIONS or d.flag not in sound):
            reason = (f"not {d.action.value}: the repository has problems (`rollout validate`); "
                      "nothing advances until they are fixed")
            d = dataclasses.replace(d, action=None, after=d.before, reason=reason, gates=())
        out.append(d)
    return out


def history_bounds(git: Git, config: RepoConfig, plans: Mapping[str, str],
                   environment: str | None = None
                   ) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """For :func:`last_change.last_changes`, flag -> plan name given: where each state file
    was before ``rollout migrate-state`` (the flat layout's path in the fanout layout; with
    an environment, also the path without it, before ``--environment``), and each plan's
    file paths (a flag without a state stops the walk at its plan's addition)."""
    config_dir = layout.prefix(config.rollouts_dir)
    envs = (environment, None) if environment is not None else (None,)
    layouts = {config.state_layout, layout.FLAT}
    earlier = {flag: tuple(p for p in dict.fromkeys(
        git.rel(layout.state_path(config.rollouts_dir, lay, name, env))
        for lay in sorted(layouts) for env in envs)
        if p != git.rel(layout.state_path(config.rollouts_dir, config.state_layout, name,
                                          environment)))
        for flag, name in plans.items()}
    earlier = {flag: paths for flag, paths in earlier.items() if paths}
    plan_files = {flag: tuple(git.rel(f"{config_dir}{name}{suffix}")
                              for suffix in layout.YAML_SUFFIXES)
                  for flag, name in plans.items()}
    return earlier, plan_files


def _last_changes(git: Git, repo: Repository, only: set[str] | None = None
                  ) -> dict[str, LastChange | None]:
    plans = {flag: plan.name for flag, plan in repo.plans.items()
             if only is None or flag in only}
    paths = {flag: git.rel(state_path(repo.config, name, repo.environment))
             for flag, name in plans.items()}
    earlier, plan_files = history_bounds(git, repo.config, plans, repo.environment)
    found = last_change.last_changes(git, paths, earlier=earlier, plans=plan_files)
    for flag, change in found.items():
        st = repo.states.get(flag)
        if change is not None and change.by_runner and st is not None and (
                st.approved_step is not None and st.phase is Phase.PROGRESSING):
            # an approval counts only as a verified runner commit recorded it (a paused
            # state's is checked by `resume`: held once, not at every run)
            found[flag] = last_change.unrecorded_approval(
                git, paths[flag], flag, st.approved_step, st.approved_by or "", change,
                earlier.get(flag)) or change
    lost = sorted(f for f, change in found.items() if change is None and f in repo.states)
    if lost and git.is_shallow():
        # without the commit that wrote a state, a person's revert cannot be told apart
        raise Stop(f"shallow clone: the history of {', '.join(lost[:5])}'s state is cut off, so "
                   "a revert could not be recognised; fetch the full history (actions/checkout "
                   "with fetch-depth: 0, or git fetch --unshallow)")
    return found


def decide_all(git: Git, repo: Repository, now: datetime, evaluate: Evaluator,
               only: Sequence[str] = (), held: Mapping[str, str] | None = None,
               shard: Shard | None = None,
               watched: frozenset[str] = frozenset(), stop: str | None = None) -> list[Decision]:
    """``held``: the rollouts the kill switch holds, with why (``view.kill_switches``);
    ``shard``: only its rollouts are selected (and their history read); ``watched``: the
    completed rollouts of an environment whose gates are still evaluated, since a later
    environment has not completed them (``promotion.monitor``); ``stop``: why none may move
    forward (a freeze or halt: :func:`stopped_line`)."""
    unknown = sorted(set(only) - set(repo.plans) - set(repo.states))
    if unknown:
        raise Stop(f"no rollout for {', '.join(unknown)} (no plan in {repo.config.rollouts_dir}/)")
    selected = set(only) if only else set(repo.plans) | set(repo.states)
    if shard is not None:  # by the plan's name; an orphan state's by the plan it names
        selected = {f for f in selected if shard.holds(
            repo.plans[f].name if f in repo.plans else repo.states[f].plan)}
    last = _last_changes(git, repo, selected if shard is not None else None)
    wanted = []
    for flag, plan in sorted(repo.plans.items()):
        state = repo.states.get(flag)
        change = last.get(flag)
        if flag in selected and (needs_evaluation(plan, state, change, now) or (
                flag in watched and state is not None and state.last_evaluated_at != now
                and (change is None or change.by_runner))):
            assert state is not None
            f = repo.flags.get(flag)
            wanted.append(GateRequest(flag, plan, state.step, state.current_percentage,
                                      state.step_started_at,
                                      f.rollout_variant if f is not None else "on",
                                      f.default_variant if f is not None else "off"))
    results = evaluate(wanted, now)
    evaluated = {w.flag for w in wanted}  # a set: a scan of `wanted` per plan was N² per run
    decisions: list[Decision] = []
    for flag, plan in sorted(repo.plans.items()):
        state = repo.states.get(flag)
        if flag not in selected:  # kept for the dependents rule only
            decisions.append(Decision(flag, plan.name, None, state, state, "not selected",
                                      plan_digest=plan.digest, selected=False))
            continue
        gates = results.get(flag) if flag in evaluated else None
        if flag in watched and gates is not None and state is not None and (
                state.phase is Phase.COMPLETED):
            decisions.append(promotion.monitor(plan, state, gates, now))
            continue
        decisions.append(decide(plan, state, gates, now, last.get(flag),
                                (held or {}).get(flag), stop))
    for flag, state in sorted(repo.states.items()):
        if flag not in repo.plans and flag in selected:
            decisions.append(cleanup(Orphan(flag, state.plan, state)))
    decisions = pause_dependents(decisions, repo.flags, repo.plans)
    if repo.environment is not None:
        decisions = [promotion.stamp(dataclasses.replace(d, environment=repo.environment),
                                     repo.plans.get(d.flag), now) for d in decisions]
    # a rollback is committed before the pauses it causes, so history reads cause -> effect
    return sorted(decisions, key=lambda d: d.action is not Action.ROLLBACK)


def _upstream(views: Sequence[Repository], after: Mapping[str, Mapping[str, RolloutState | None]],
              flag: str) -> list[promotion.Upstream]:
    """The earlier environments ``flag``'s plan runs in, with its state there after this
    run's decisions."""
    out: list[promotion.Upstream] = []
    for view in views:
        if flag in view.plans and view.environment is not None:
            states = after.get(view.environment, {})
            out.append((view.environment, states[flag] if flag in states
                        else view.states.get(flag)))
    return out


def decide_environments(git: Git, repo: Repository, now: datetime, evaluate: Evaluator,
                        only: Sequence[str] = (), held: Mapping[str, str] | None = None,
                        shard: Shard | None = None,
                        environments: Sequence[str] = (),
                        stops: Callable[[Repository], str | None] | None = None
                        ) -> list[Decision]:
    """:func:`decide_all` for each declared environment in promotion order (only those of
    ``environments`` when given), with the promotion rule (``promotion.promote``) applied to
    each later one against the earlier ones' states as this run leaves them; without
    environments, :func:`decide_all` itself. ``stops``: why an environment's rollouts may not
    move forward (:func:`stopped_line`), asked once per environment."""
    if not repo.environments:
        return decide_all(git, repo, now, evaluate, only, held, shard,
                          stop=stops(repo) if stops is not None else None)
    views = repo.views()
    unknown = sorted(f for f in set(only) if not any(f in v.plans or f in v.states
                                                   for v in views))
    if unknown:
        raise Stop(f"no rollout for {', '.join(unknown)} (no plan in {repo.config.rollouts_dir}/)")
    after: dict[str, dict[str, RolloutState | None]] = {}
    out: list[Decision] = []
    for i, view in enumerate(views):
        assert view.environment is not None
        later = views[i + 1:]
        watched = frozenset(flag for flag, plan in view.plans.items() if promotion.monitored(
            plan, view.states.get(flag), [v.states.get(flag) for v in later if flag in v.plans]))
        mine = [f for f in only if f in view.plans or f in view.states]
        if (only and not mine) or (environments and view.environment not in environments):
            after[view.environment] = dict(view.states)
            continue
        decided = []
        stop = stops(view) if stops is not None else None
        for d in decide_all(git, view, now, evaluate, mine, held, shard, watched, stop):
            plan = view.plans.get(d.flag)
            if plan is not None and d.selected:
                promoted = promotion.promote(d, plan, _upstream(views[:i], after, d.flag), now)
                if stop is not None and promoted.action is Action.START and (
                        d.action is not Action.START):
                    promoted = d  # a re-admission starts the rollout: not while the line stops
                d = promotion.stamp(promoted, plan, now)
            decided.append(d)
        after[view.environment] = {**view.states, **{d.flag: d.after for d in decided}}
        out.extend(decided)
    return out


def _commits(repo: Repository, git: Git, decisions: Sequence[Decision]) -> list[CommitSpec]:
    """One commit per transition. Each records the digest of the state file it starts from
    (the file at HEAD, or as the run's previous commit left it) and of the one it writes:
    what ``last_change`` checks to trust a state as the runner's own (docs/runner.md)."""
    acting = [d for d in decisions if d.action is not None]
    if not acting:
        return []
    paths = [git.rel(state_path(repo.config, d.plan, d.environment)) for d in acting]
    current = last_change.head_digests(git, paths)
    specs = []
    for d, path in zip(acting, paths, strict=True):
        content = None if d.after is None else dump_state(d.after).encode()
        after = last_change.digest(content)
        plans = repo.for_environment(d.environment).plans
        text = message(d, plans.get(d.flag), state_before=current[path], state_after=after)
        current[path] = after
        specs.append(CommitSpec(text, (FileChange(path, content),)))
    return specs


# --- the run loop ----------------------------------------------------------------------------


def _align(git: Git, remote: str, branch: str) -> None:
    """Start from the remote head. Local-only commits of the runner's own automatic
    decisions are dropped (they are recomputed); anything else stops the run."""
    remote_head = git.fetch(remote, branch)
    head = git.head()
    if head == remote_head:
        return
    if head is None or git.is_ancestor(head, remote_head):
        git.move_to(remote_head)
        return
    local = git.commits_between(remote_head, head)
    if local and all((m := parse_message(text)) is not None and not m.requested_by
                     for _, text in local):
        git.move_to(remote_head)
        return
    raise Stop(f"the local branch has commits that are not on {remote}/{branch} (for example "
               f"{local[0][0][:7] if local else head[:7]}); push or drop them first")


def _run(opts: Options, compute: Callable[[Git, Repository, frozenset[str] | None], list[Decision]],
         report: Report, stop_only: str | None = None, safety_only: bool = False) -> Report:
    report.now = opts.now
    git = Git.open(opts.root)
    config, problems = load_config(opts.root)
    if problems:
        raise Stop("\n".join(str(p) for p in problems))
    folders = [config.flags_dir, config.rollouts_dir]
    written = list(folders)  # where a killed run may have left a temporary file
    if config.state_layout != layout.FLAT:
        folders.append(layout.state_dir(config.rollouts_dir, config.state_layout))
        written += layout.state_folders(config.rollouts_dir, config.state_layout, opts.root)
    who = author(config, opts.env)
    with locked(git):
        if not opts.dry_run and (lock := index_lock(git)) is not None:
            raise Stop(f"{stale_index_message(lock)}; nothing was written")
        note = recover(git, written)
        if note:
            report.notes.append(note)
        if not opts.dry_run:
            dirty = git.dirty(folders)
            if dirty:
                raise Stop("uncommitted changes under " + " or ".join(f"{f}/" for f in folders)
                           + ": " + ", ".join(dirty[:10])
                           + "; commit or stash them first (the runner never overwrites them)")
        branch = opts.branch or git.branch()
        if not opts.push and not opts.dry_run and git.branch() is None:
            # commits on no branch are lost at the next checkout, silently
            raise Stop("HEAD is detached: the commits would be on no branch; check out the "
                       "branch to commit to, or push them with --push --branch NAME")
        if opts.push and not opts.dry_run:
            if not branch:
                raise Stop("HEAD is detached; name the branch to push with --branch")
            current = git.branch()
            if current and current != branch:
                # starting from the remote head would move this other branch
                raise Stop(f"the checked out branch is {current}, not {branch}; check out "
                           f"{branch} (or run from a detached HEAD) to push to it")
            _align(git, opts.remote, branch)
        for attempt in range(1, max(opts.attempts, 1) + 1):
            repo, sound = _load(opts.root, report, stop_only, safety_only)
            decisions = compute(git, repo, sound)
            report.decisions = decisions
            report.commits = {}
            if opts.dry_run:
                return report
            specs = _commits(repo, git, decisions)
            # commits are dated with the injected clock, so a simulated rollout's audit
            # (git log, rollout history) reads in simulated time; without --now it is now
            shas = commit(git, specs, who, when=int(opts.now.timestamp()))
            report.commits = dict(zip([d.key for d in decisions if d.action], shas, strict=True))
            report.head = git.head()
            if not opts.push or opts.dry_run:
                return report
            assert branch is not None
            tracking = git.out("rev-parse", f"refs/remotes/{opts.remote}/{branch}")
            if not shas and git.head() == tracking:
                return report
            ok, detail = git.push(opts.remote, branch)
            if ok:
                report.pushed = True
                return report
            last_line = detail.splitlines()[-1] if detail else ""
            report.notes.append(f"push attempt {attempt} rejected: {last_line}")
            remote_head = git.fetch(opts.remote, branch)
            base = git.head()
            if base is not None and git.is_ancestor(base, remote_head):
                # identical commits (same state, parent, author and second) were pushed by a
                # racing runner: ours are on the remote already
                git.move_to(remote_head)
                if remote_head == base:
                    report.pushed = True
                    return report
                continue
            if base is None or git.is_ancestor(remote_head, base):
                # the remote did not move past us: not a race, a refusal
                raise Stop(f"push to {opts.remote}/{branch} failed: {detail}")
            # our commits sit on a head the remote moved past: drop them and recompute
            git.move_to(remote_head)
            time.sleep(random.uniform(0.02, 0.1) * attempt)
        raise Stop(f"push to {opts.remote}/{branch} rejected {opts.attempts} times; nothing lost, "
                   "the next run starts again from the remote")


def advance(opts: Options, evaluate: Evaluator) -> Report:
    cached = _CachedEvaluator(evaluate)

    report = Report()

    def compute(git: Git, repo: Repository, sound: frozenset[str] | None) -> list[Decision]:
        report.plans = repo.plans if not repo.environments else {
            f"{flag}@{view.environment}": plan for view in repo.views()
            for flag, plan in view.plans.items()}
        held, error = kill_switches(repo, opts.env)
        if error is not None and error not in report.errors:
            report.errors.append(error)
        def stops(view: Repository) -> str | None:  # each environment's halt or freeze
            return stopped_line(opts.root, view, opts.now)

        if sound is None:
            return decide_environments(git, repo, opts.now, cached, opts.flags, held,
                                       opts.shard, opts.environments, stops)
        unknown = sorted(set(opts.flags) - set(repo.plans) - set(repo.states))
        if unknown:  # named, but its files have problems: say so rather than "no rollout"
            raise Stop(f"no valid rollout for {', '.join(unknown)}; see `rollout validate`")
        only = sorted(sound & set(opts.flags)) if opts.flags else sorted(sound)
        if not only:
            raise Stop(f"{', '.join(opts.flags)}: its files have problems; see `rollout validate`")
        return _safety_only(decide_environments(git, repo, opts.now, cached, only, held,
                                                opts.shard, opts.environments, stops), sound)

    return _run(opts, compute, report, safety_only=True)


def stopped_line(root: Path, repo: Repository, now: datetime) -> str | None:
    """Why no rollout of ``repo`` (an environment's view, or the whole repository) may move
    forward at ``now``: its halt (``rollout halt``), else a freeze window; None: none."""
    environment = getattr(repo, "environment", None)  # a view of one environment
    return line_stop(repo.config, halt_of(root, repo.config, environment), environment, now)


def _view(opts: Options, repo: Repository) -> Repository:
    """The environment a request acts in (``--env``): the CLI has checked one is named
    when the repository declares several."""
    name = opts.environments[0] if opts.environments else None
    if name is None and len(repo.environments) == 1:
        name = repo.environments[0].name
    if repo.environments and name is None:
        raise Stop("name the environment with --env: "
                   + ", ".join(e.name for e in repo.environments))
    try:
        return repo.for_environment(name)
    except KeyError:
        raise Stop(f"no environment {name!r} in [tool.rollout.environments] (declared: "
                   + ", ".join(e.name for e in repo.environments) + ")") from None


def _before(repo: Repository, view: Repository) -> list[Repository]:
    """The environments before ``view``'s, in promotion order."""
    names = [e.name for e in repo.environments]
    return [repo.for_environment(n) for n in names[:names.index(view.environment)]] \
        if view.environment is not None else []


def _rejected_downstream(repo: Repository, view: Repository, own: Decision,
                         now: datetime) -> list[Decision]:
    """After ``own`` (a rollback in ``view``'s environment): the pauses of the same flag's
    running rollouts in later environments, whose version it rejects."""
    if own.environment is None or own.after is None:
        return []
    names = [e.name for e in repo.environments]
    after = {own.environment: {own.flag: own.after}}
    out = []
    for name in names[names.index(own.environment) + 1:]:
        later = repo.for_environment(name)
        plan, state = later.plans.get(own.flag), later.states.get(own.flag)
        if plan is None or state is None:
            continue
        idle = Decision(own.flag, plan.name, None, state, state, state.reason,
                        plan_digest=plan.digest, environment=name)
        d = promotion.promote(idle, plan, _upstream(_before(repo, later), after, own.flag), now)
        if d.action is not None:
            out.append(promotion.stamp(d, plan, now))
    return out


def apply_request(opts: Options, action: Action, flag: str, requested_by: str,
                  reason: str = "") -> Report:
    def compute(git: Git, repo: Repository, sound: frozenset[str] | None) -> list[Decision]:
        view = _view(opts, repo)
        plan = view.plans.get(flag)
        if plan is None:
            where = f" in {view.environment}" if view.environment is not None else ""
            raise Stop(f"no rollout plan for flag {flag!r}{where} in {repo.config.rollouts_dir}/")
        current = view.states.get(flag)
        doubt = None
        if action is Action.RESUME and current is not None and current.approved_step is not None:
            # an approval counts only as a verified runner commit recorded it: one written
            # by hand (forged trailers or none) and held on is dropped, never honoured
            earlier = history_bounds(git, repo.config, {flag: plan.name},
                                     view.environment)[0].get(flag)
            doubt = last_change.approval_doubt(
                git, git.rel(state_path(repo.config, plan.name, view.environment)), flag,
                current.approved_step, current.approved_by or "", earlier)
        if view.environment is not None and (action is Action.RETRY or (
                action is Action.RESUME and current is not None
                and promotion.REJECTED_MARK in current.reason)):
            # promote_after holds for every start in a later environment, a person's too
            why = promotion.refusal(plan, _upstream(_before(repo, view), {}, flag), opts.now)
            if why is not None:
                raise Stop(f"{flag} in {view.environment}: {why}; nothing was written")
        own = request(action, plan, current, opts.now, requested_by, reason, doubt)
        if view.environment is not None:
            own = promotion.stamp(dataclasses.replace(own, environment=view.environment),
                                  plan, opts.now)
        if action is not Action.ROLLBACK:
            return [own]
        others = [Decision(f, p.name, None, view.states.get(f), view.states.get(f), "",
                           plan_digest=p.digest, selected=False, environment=view.environment)
                  for f, p in sorted(view.plans.items()) if f != flag]
        return [d for d in pause_dependents([own, *others], view.flags, view.plans)
                if d.action is not None] + _rejected_downstream(repo, view, own, opts.now)

    # rollback and pause only move a rollout toward safety: they go ahead when the files of
    # the rollout itself are valid, whatever else is broken
    stop_only = flag if action in (Action.ROLLBACK, Action.PAUSE) else None
    return _run(opts, compute, Report(), stop_only)


def requester(env: Mapping[str, str], cwd: Path) -> str:
    """Who asks for a rollback, pause, resume or retry: ``ROLLOUT_REQUESTED_BY``, GitHub's
    actor, else the name and address of the git identity (of ``cwd``), else ``$USER``."""
    if who := env.get("ROLLOUT_REQUESTED_BY"):
        return who
    if actor := env.get("GITHUB_ACTOR"):
        return actor
    ident = author_ident(cwd)
    return ident.rsplit(" ", 2)[0] if ident else env.get("USER", "someone")


#: What GitHub sets in every step of a workflow run, beside ``GITHUB_ACTIONS`` and
#: ``GITHUB_ACTOR``: the run's id (digits), the workflow's name and the repository
#: (OWNER/NAME). A shell that exports only the first two (a profile, a copied command line)
#: is no workflow run.
WORKFLOW_RUN = {"GITHUB_RUN_ID": r"[0-9]+", "GITHUB_WORKFLOW": r".*\S.*",
                "GITHUB_REPOSITORY": r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+"}
#: How an approval given with GitHub's variables but outside a workflow run is recorded.
UNVERIFIED = " (unverified)"


def in_workflow_run(env: Mapping[str, str]) -> bool:
    """Whether the environment is a GitHub Actions workflow run's (:data:`WORKFLOW_RUN`)."""
    return env.get("GITHUB_ACTIONS") == "true" and all(
        re.fullmatch(pattern, env.get(name, "")) for name, pattern in WORKFLOW_RUN.items())


def approver(env: Mapping[str, str], root: Path) -> Approver:
    """Who approves. In a GitHub Actions workflow run (``GITHUB_ACTIONS=true`` and the run's
    variables, :data:`WORKFLOW_RUN`) the workflow's actor, which GitHub sets and vouches
    for; a re-run by another person is refused, since its ``GITHUB_ACTOR`` stays the one who
    started the first run. ``GITHUB_ACTIONS``/``GITHUB_ACTOR`` without a run's variables:
    the actor, recorded as ``NAME (unverified)``. Elsewhere the git identity, which proves
    nothing (``ROLLOUT_REQUESTED_BY`` is not read: an approval is no place for a name anyone
    can type). Stop when there is none."""
    if env.get("GITHUB_ACTIONS") == "true":
        actor = env.get("GITHUB_ACTOR", "").strip()
        if not actor:
            raise Stop("GITHUB_ACTIONS is true but GITHUB_ACTOR is not set: nobody to record "
                       "as the approver; nothing was written")
        again = env.get("GITHUB_TRIGGERING_ACTOR", "").strip()
        if again and again != actor:
            raise Stop(f"this run was started by {actor} and re-run by {again}: an approval "
                       "is the person's who starts the run; start a new run to approve")
        if not in_workflow_run(env):
            return Approver(actor + UNVERIFIED, False, (actor,),
                            unverified_as="GITHUB_ACTOR outside a workflow run")
        return Approver(actor, True, (actor,))
    ident = author_ident(root)
    name, _, rest = (ident or "").partition(" <")
    email = rest.partition(">")[0]
    if not name.strip() or not email.strip():
        raise Stop("no git identity to record as the approver (git config user.name and "
                   "user.email); nothing was written")
    return Approver(f"{name.strip()} <{email.strip()}>", False, (name.strip(), email.strip()))


def apply_approval(opts: Options, flag: str, who: Approver, reason: str = "",
                   step: int | None = None) -> Report:
    """``rollout approve``: one commit recording ``who`` approved the rollout's next step
    that needs approval, in its state (``approved_step``, ``approved_by``)."""

    def compute(git: Git, repo: Repository, sound: frozenset[str] | None) -> list[Decision]:
        view = _view(opts, repo)
        plan = view.plans.get(flag)
        if plan is None:
            raise Stop(f"no rollout plan for flag {flag!r} in {repo.config.rollouts_dir}/")
        path = git.rel(state_path(repo.config, plan.name, view.environment))
        earlier, plan_files = history_bounds(git, repo.config, {flag: plan.name},
                                             view.environment)
        change = last_change.last_changes(git, {flag: path}, earlier=earlier,
                                          plans=plan_files).get(flag)
        if change is not None and not change.by_runner:
            # the approval commit would make a person's change look like the runner's own
            # state, and the hold it calls for would never come
            raise Stop(f"{flag}'s state was last changed by {change.author} in "
                       f"{change.sha[:7]}, not by the runner: the next `rollout advance` holds "
                       "it; approve after that (and `rollout resume`); nothing was written")
        decided = approve(plan, view.states.get(flag), who, reason, step)
        if view.environment is not None:
            decided = promotion.stamp(dataclasses.replace(decided, environment=view.environment),
                                      plan, opts.now)
        return [decided]

    return _run(opts, compute, Report())


__all__ = ["GitError", "Options", "Report", "Stop", "Unreadable", "advance",
           "apply_approval", "apply_request", "approver", "gates_evaluator",
           "paused_for_metrics", "requester", "unreadable", "unreadable_cause"]
