"""Load a GitOps repository: config, flags, plans and rollout states, with every problem found.

``check_repository`` never raises on bad input: it returns the problems, all of them, one
line each. ``load_repository`` is for callers that need a valid repository (the runner, the
SDK) and raises :class:`InvalidRepository` instead. Each kind of file has its own loader
(``config``, ``flags``, ``plans``, ``states``); this module checks what lies between files
and puts the repository together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from runner.load.config import load_config
from runner.load.entries import odd_entries
from runner.load.flags import load_flags
from runner.load.halt import halt_problems
from runner.load.layout import YAML_SUFFIXES, prefix, relative, state_path
from runner.load.overrides import override_findings
from runner.load.plans import PlanFiles, load_plans
from runner.load.problems import FIELD_CHARS, InvalidRepository, Problem, field_name, problem_text
from runner.load.semantic import NO_METRICS, Finding, check_cross, fraction_warnings
from runner.load.sets import glob_problems, set_findings
from runner.load.statefile import STATE_SUFFIX
from runner.load.states import StateFiles, check_states, load_states_of
from runner.load.yamlsafe import Locator
from runner.model import RepoConfig, Repository, RolloutState, resolve_flags


@dataclass(frozen=True)
class Checked:
    """The outcome of a check: the repository when it is valid, and every problem."""

    repository: Repository | None
    problems: list[Problem]
    #: Everything that loaded cleanly, even when other files have problems: for the
    #: commands that must still work then (an emergency rollback of a valid rollout, the
    #: review of an invalid revision).
    salvaged: Repository
    #: file -> its text, as read: later checks (the metric-source lint) place their
    #: problems at a field's line without reading the file again
    texts: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    #: flag -> the files its rollout stands on: its flag file, its plan, every state file
    #: that names it, and pyproject.toml
    files_of: Mapping[str, frozenset[str]] = field(default_factory=dict)

    #: what is valid but likely a mistake (a rate written as a fraction where percent is
    #: meant): reported by ``rollout validate``, never a reason to fail
    warnings: list[Problem] = field(default_factory=list)
    #: how many flag files and plan files were checked (valid or not)
    counted: tuple[int, int] = (0, 0)

    def sound(self, flag: str) -> bool:
        """Whether ``flag``'s rollout can be judged on its own while other files have
        problems: it loaded, and none of the files it stands on has a problem."""
        own = self.files_of.get(flag)
        if own is None or flag not in self.salvaged.flags or flag not in self.salvaged.plans:
            return False
        return not any(p.path in own for p in self.problems)

    def locate(self, path: str, field_path: tuple[str | int, ...]) -> tuple[int, int]:
        """Line and column of a field in a file this check read ((1, 1) when it did not)."""
        text = self.texts.get(path)
        return Locator(text).locate(field_path) if text else (1, 1)


def _placed(findings: Iterable[Finding], texts: Mapping[str, str]) -> list[Problem]:
    """Semantic findings as problems, at the line and column of their field."""
    out = []
    locators: dict[str, Locator] = {}
    for f in findings:
        if f.path in texts:
            if f.path not in locators:
                locators[f.path] = Locator(texts[f.path])
            line, col = locators[f.path].locate(f.field)
        else:
            line, col = 1, 1
        out.append(Problem(f.path, line, col, field_name(f.field), f.message))
    return out


def check_repository(root: Path | str, only: Iterable[Path | str] | None = None) -> Checked:
    """Validate everything under ``root``.

    With ``only`` (the files pre-commit passes), problems are reported for those files,
    plus every problem between files (a dangling reference elsewhere caused by a change
    here), since references are always checked across the whole repository.
    """
    root = Path(root)
    config, config_problems = load_config(root)
    flags = load_flags(root / config.flags_dir, prefix(config.flags_dir))
    plans = load_plans(root / config.rollouts_dir, prefix(config.rollouts_dir), config)
    names = tuple(e.name for e in config.environments)
    found = load_states_of(root, config.rollouts_dir, config.state_layout, names)
    plan_files = {*plans.texts, *(p.path for p in plans.problems)}
    if names:
        states, env_states = _environment_states(found, plans, plan_files, config)
    else:
        states = check_states(found, plans.plans, plan_files, prefix(config.rollouts_dir),
                              config.state_layout)
        env_states = {}

    findings = [*flags.findings, *plans.findings,
                *check_cross(flags.flags, flags.paths, plans.plans, flags.broken),
                *set_findings(config, flags.flags, flags.paths),
                *override_findings(config, flags.flags, flags.paths, plans.plans)]
    if config_problems and config.metrics is None:
        # pyproject.toml has problems of its own: a missing default source is one of them
        findings = [f for f in findings if f.message != NO_METRICS]
    texts = MappingProxyType({**flags.texts, **plans.texts})
    odd = [*odd_entries(root / config.flags_dir, prefix(config.flags_dir), YAML_SUFFIXES),
           *odd_entries(root / config.rollouts_dir, prefix(config.rollouts_dir),
                        (*YAML_SUFFIXES, STATE_SUFFIX))]
    problems = [*config_problems, *odd, *flags.problems, *plans.problems, *states.problems,
                *_placed(findings, texts),
                *glob_problems(root, config, flags.flags, flags.broken),
                *halt_problems(root, config)]

    if only is not None:
        wanted = {relative(root, Path(p) if Path(p).is_absolute() else root / p) for p in only}
        # as Problem puts them: on one line, cut
        cross = {(f.path, problem_text(field_name(f.field), FIELD_CHARS), problem_text(f.message))
                 for f in findings if f.cross}
        between = set(states.cross)
        problems = [p for p in problems if p.path in wanted or p in between
                    or (p.path, p.field, p.message) in cross or p.path == "pyproject.toml"]

    problems = sorted(set(problems))
    warnings = _placed([w for entries in plans.plans.values() for plan, path in entries
                        for w in fraction_warnings(plan, path)], texts)
    if only is not None:
        warnings = [w for w in warnings if w.path in wanted]
    repo = Repository(
        config=config,
        flags=MappingProxyType(flags.flags),
        plans=MappingProxyType(plans.first()),
        states=MappingProxyType(states.states),
        sources=MappingProxyType({**flags.sources, **plans.sources}),
        environment_plans=MappingProxyType({
            env: MappingProxyType(plans.first_of(env)) for env in names}),
        environment_states=MappingProxyType({
            env: MappingProxyType(st) for env, st in env_states.items()}),
        environment_flags=MappingProxyType({
            env: resolve_flags(flags.flags, env) for env in names}),
    )
    files_of: dict[str, set[str]] = {}
    for key, ref in repo.sources.items():
        files_of.setdefault(key.partition(":")[2], {"pyproject.toml"}).add(ref.path)
    for flag, plan in repo.plans.items():
        for env in names or (None,):
            files_of.setdefault(flag, {"pyproject.toml"}).add(
                state_path(config.rollouts_dir, config.state_layout, plan.name, env))
    for f in states.files:
        files_of.setdefault(f.state.flag, {"pyproject.toml"}).add(f.path)
    return Checked(None if problems else repo, problems, salvaged=repo, texts=texts,
                   warnings=sorted(warnings),
                   counted=(len({*flags.texts, *(p.path for p in flags.problems)}),
                            len({*plans.texts, *(p.path for p in plans.problems)})),
                   files_of=MappingProxyType({k: frozenset(v) for k, v in files_of.items()}))


def _environment_states(found: StateFiles, plans: PlanFiles, plan_files: set[str],
                        config: RepoConfig) -> tuple[StateFiles, dict[str, dict[str, RolloutState]]]:
    """With environments declared: each environment's state files held against that
    environment's plans; a state file named for no environment is a problem (its place is
    ``<plan>.<env>.state.json``)."""
    problems = list(found.problems)
    cross: list[Problem] = []
    by_env: dict[str, dict[str, RolloutState]] = {}
    first = config.environments[0].name
    for f in found.files:
        if f.environment is None:
            own = state_path(config.rollouts_dir, config.state_layout, f.name, first)
            problems.append(Problem(f.path, 1, 1, "", (
                "a state file without an environment, but [tool.rollout.environments] is "
                f"declared: each environment has its own (for example {own}); delete it, or "
                f"rename it with \"environment\": {first!r} added")))
    for env in (e.name for e in config.environments):
        own_files = [f for f in found.files if f.environment == env]
        checked = check_states(StateFiles({}, [], own_files), plans.environments.get(env, {}),
                               plan_files, prefix(config.rollouts_dir), config.state_layout,
                               environment=env)
        problems.extend(checked.problems)
        cross.extend(checked.cross)
        by_env[env] = checked.states
    return StateFiles({}, problems, found.files, cross), by_env


def load_repository(root: Path | str) -> Repository:
    checked = check_repository(root)
    if checked.repository is None:
        raise InvalidRepository(checked.problems)
    return checked.repository
