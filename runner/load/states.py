"""Rollout state files (``rollouts/<plan>.state.json``, or fanned out: ``runner.load.layout``)
as found: every state that means what it says, and the problems of the rest. (``statefile`` is
their format: parsing and writing one.)

A state is read in two passes. ``load_states`` reads each file on its own: strict JSON (no
duplicate keys, no ``NaN``/``Infinity``, numbers as YAML allows them), the schema, integers
that are integers (``step: 1.0`` is not a step) and a ``plan`` that is the file's own name.
``check_states`` then holds each state against the plans: one state per rollout, of the flag
its plan rolls out, at a step of that plan and at that step's percentage.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.load.documents import Unreadable, a_type, located, read_bytes
from runner.load.layout import (
    FANOUT,
    FLAT,
    files_in,
    prefix,
    split_state_name,
    state_files,
    state_path,
    stem,
)
from runner.load.problems import Problem, shown
from runner.load.schema_errors import schema_findings
from runner.load.statefile import STATE_SUFFIX, state_from_dict
from runner.load.yamlsafe import MAX_INT, MAX_NUMBER_CHARS, YamlError, decode, number_error
from runner.model import Phase, RolloutPlan, RolloutState
from runner.percent import percent

#: Fields the schema types "integer", which JSON Schema lets a float such as 1.0 satisfy.
_INTEGERS = ("step", "failures", "consecutive_failures", "consecutive_inconclusive",
             "consecutive_errors", "approved_step")


@dataclass(frozen=True)
class StateFile:
    path: str  # relative to the repository root
    name: str  # the file's plan name: rollouts/<name>.state.json
    text: str
    state: RolloutState
    #: the environment the file's name gives (``<name>.<env>.state.json``); None without
    environment: str | None = None


@dataclass(frozen=True)
class StateFiles:
    #: by flag: the one state of each rollout (after ``check_states``)
    states: dict[str, RolloutState]
    problems: list[Problem]
    #: every file valid on its own, in name order (what ``check_states`` holds against plans)
    files: list[StateFile] = field(default_factory=list)
    #: the problems between a state and the plans (or other states): reported even when
    #: only the plan or flag files were asked about, as pre-commit passes them
    cross: list[Problem] = field(default_factory=list)


class _Refused:
    """A JSON value a state may not hold, kept in place to be reported at its field."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


def _int(text: str) -> int | _Refused:
    if len(text) > MAX_NUMBER_CHARS:  # before int(): 5,000 digits fail there
        return _Refused(number_error(text) or "")
    value = int(text)
    return _Refused(number_error(text, value) or "") if abs(value) > MAX_INT else value


def _float(text: str) -> float | _Refused:
    value = float(text)
    why = number_error(text, value)
    return value if why is None else _Refused(why)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        out[k] = _Refused("duplicate key (a field may be given once)") if k in out else v
    return out


def _refused(data: Any) -> list[tuple[tuple[Any, ...], str]]:
    out: list[tuple[tuple[Any, ...], str]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, _Refused):
            out.append((where, value.why))
        elif isinstance(value, dict):
            stack.extend(((*where, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*where, i), v) for i, v in enumerate(value))
    return sorted(out, key=lambda f: list(map(str, f[0])))


def parse_json(text: str) -> Any:
    """Strict JSON: numbers as YAML allows them (finite, 64-bit integers, at most 64
    characters) and no key twice; what breaks these rules is a :class:`_Refused` in place."""
    return json.loads(text, parse_int=_int, parse_float=_float, object_pairs_hook=_pairs,
                      parse_constant=lambda name: _Refused(f"{name}: not a finite number"))


def _undeclared_environment(data: Any, name: str,
                            environments: tuple[str, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """A state file named ``<plan>.<env>.state.json`` for an ``env`` the config does not
    declare (its name split by none of them): said as that, not as a plan it does not name."""
    plan = data.get("plan")
    if not environments or not isinstance(plan, str) or not name.startswith(plan + "."):
        return []
    env = name[len(plan) + 1:]
    return [(("environment",) if "environment" in data else (),
             f"{env!r} is not a declared environment ([tool.rollout.environments]: "
             f"{', '.join(environments)}); this file would be the state of {plan!r} there "
             f"(<plan>.<environment>{STATE_SUFFIX})")]


def _own_findings(data: Any, name: str, environment: str | None = None,
                  environments: tuple[str, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """What a state file that passed its schema may still get wrong on its own."""
    if environment is None and (undeclared := _undeclared_environment(data, name, environments)):
        return undeclared
    out = []
    for key in _INTEGERS:
        value = data.get(key)
        if isinstance(value, float):  # the schema took 1.0 for an integer
            out.append(((key,), f"{shown(value)} is {a_type(value)}, expected an integer"
                        + (f" ({int(value)})" if value.is_integer() else "")))
    for key, other in (("approved_step", "approved_by"), ("approved_by", "approved_step")):
        if key in data and other not in data:
            out.append(((key,), f"given without {other}: an approval records its step and "
                        "who gave it, both"))
    if data["plan"] != name:
        named = "<plan>" if environment is None else "<plan>.<environment>"
        out.append((("plan",), f"{shown(data['plan'])} is not this file's plan {name!r} "
                    f"(a state file is named after its plan: {named}{STATE_SUFFIX})"))
    if environment is not None and data.get("environment") != environment:
        out.append((("environment",), f"{shown(data.get('environment'))} is not this file's "
                    f"environment {environment!r} (<plan>.<environment>{STATE_SUFFIX})"))
    return out


def load_states(folder: Path, prefix: str) -> StateFiles:
    """Every state file in ``folder`` (the flat layout), each on its own; ``prefix`` names
    them relative to the repository root. ``check_states`` holds them against the plans."""
    return _load([(p, f"{prefix}{p.name}") for p in files_in(folder, (STATE_SUFFIX,))])


def load_states_of(root: Path, rollouts_dir: str, layout: str = FLAT,
                   environments: tuple[str, ...] = ()) -> StateFiles:
    """Every state file of the repository at ``root`` in its ``layout``, each on its own.
    In the fanout layout a state file outside its plan's folder is a problem, and so is a
    state file left in the rollouts folder (the flat layout's place): it would be ignored,
    and its rollout start afresh."""
    out = _load(state_files(root, rollouts_dir, layout), environments)
    if layout != FANOUT:
        return out
    for f in out.files:
        if f.path != (own := state_path(rollouts_dir, layout, f.name, f.environment)):
            out.problems.append(Problem(f.path, 1, 1, "", f"not in its plan's folder: the "
                                        f"state of {f.name!r} is {own}"))
    out.files[:] = [f for f in out.files
                    if f.path == state_path(rollouts_dir, layout, f.name, f.environment)]
    for p in files_in(root / rollouts_dir, (STATE_SUFFIX,)):
        name, env = split_state_name(p.name[: -len(STATE_SUFFIX)], environments)
        out.problems.append(Problem(
            f"{prefix(rollouts_dir)}{p.name}", 1, 1, "",
            f"a state file of the flat layout, but [tool.rollout] state_layout is fanout: "
            f"its place is {state_path(rollouts_dir, layout, name, env)} (`rollout migrate-state` "
            "moves them all in one commit)"))
    return out


def _load(paths: Iterable[tuple[Path, str]], environments: tuple[str, ...] = ()) -> StateFiles:
    out = StateFiles({}, [])
    for p, rel in paths:
        name, env = split_state_name(p.name[: -len(STATE_SUFFIX)], environments)
        try:
            text = decode(read_bytes(p, rel))
            data = parse_json(text)
        except json.JSONDecodeError as e:
            out.problems.append(Problem(rel, e.lineno, e.colno, "", f"unreadable rollout state: {e.msg}"))
            continue
        except Unreadable as e:
            out.problems.append(Problem(rel, 1, 1, "", str(e)))
            continue
        except (YamlError, ValueError, RecursionError) as e:
            out.problems.append(Problem(rel, 1, 1, "", f"unreadable rollout state: {e}"))
            continue
        bad = (_refused(data) or schema_findings(data, "state")
               or _own_findings(data, name, env, environments))
        if bad:
            out.problems.extend(located(text, rel, bad))  # JSON is YAML: same positions
            continue
        try:
            state = state_from_dict(data)
        except ValueError as e:  # a time the schema's format check let through
            out.problems.append(Problem(rel, 1, 1, "", f"unreadable rollout state: {e}"))
            continue
        out.files.append(StateFile(rel, name, text, state, env))
    return out


def _against_plan(state: RolloutState, plan: RolloutPlan,
                  plan_path: str) -> list[tuple[tuple[Any, ...], str]]:
    """Whether ``state`` is a state the runner could have written for ``plan``.

    Rolled back and pending rollouts are at step 0 and 0% whatever the plan. The step and
    percentage of the others are held against the plan only while the state is of this very
    plan (its digest): after an edit the runner replans from the percentage, and a paused or
    finished rollout keeps the step of the plan it ran. A progressing or paused rollout is at
    its step's percentage, or below the first step (a replan never raises exposure without a
    gate: see ``decide._restart``); a completed one at the last step and 100%.
    """
    pct, step = state.current_percentage, state.step
    if state.phase in (Phase.ROLLED_BACK, Phase.PENDING):
        what = "a rolled back" if state.phase is Phase.ROLLED_BACK else "a pending"
        if step != 0:
            return [(("step",), f"{step}: {what} rollout is at step 0 (0%)")]
        if pct != 0:
            return [(("current_percentage",), f"{pct:g}: {what} rollout is at 0%")]
        return []
    if state.plan_digest != plan.digest:
        return []
    steps = plan.percentages
    a = state.approved_step
    if a is not None and (a >= len(steps) or not plan.steps[a].approval):
        return [(("approved_step",), f"{a}: steps[{a}] of {plan_path} "
                 + ("does not exist" if a >= len(steps) else "needs no approval")
                 + " (an approval is of a step with approval: true)")]
    if step >= len(steps):
        return [(("step",), f"{step} is past the last step of {plan_path} "
                 f"(steps[{len(steps) - 1}]; steps are counted from 0)")]
    if state.phase is Phase.COMPLETED and step != len(steps) - 1:
        return [(("step",), f"{step}: a completed rollout is at the last step of {plan_path} "
                 f"(steps[{len(steps) - 1}], 100%)")]
    at = steps[step]
    if math.isclose(pct, at, abs_tol=1e-9) or (step == 0 and pct < at):
        return []
    return [(("current_percentage",), f"{pct:g}, but steps[{step}] of {plan_path} is "
             f"{percent(at)}: a rollout is at its step's percentage")]


def check_states(found: StateFiles, plans: Mapping[str, list[tuple[RolloutPlan, str]]],
                 plan_files: Iterable[str], prefix: str, layout: str = FLAT,
                 environment: str | None = None) -> StateFiles:
    """The states of ``found`` held against the plans (flag -> its plans with their files;
    ``plan_files``: every plan file, valid or not; ``prefix``: the rollouts folder's;
    ``environment``: the one these states and plans are of, when environments are
    declared)."""
    rollouts_dir = prefix.rstrip("/") or "."
    by_name = {plan.name: (plan, path) for entries in plans.values() for plan, path in entries}
    named = {stem(Path(p)) for p in plan_files}
    present = {f.name for f in found.files}
    first = {flag: entries[0] for flag, entries in plans.items()}
    states: dict[str, RolloutState] = {}
    owner: dict[str, str] = {}  # flag -> the file of its state
    problems = list(found.problems)
    bad: list[tuple[StateFile, tuple[tuple[Any, ...], str]]] = []
    # the states of plans first: a state file that belongs to no plan never displaces one
    for f in sorted(found.files, key=lambda f: f.name not in by_name):
        state = f.state
        if f.name in by_name:
            plan, plan_path = by_name[f.name]
            if plan.flag != state.flag:
                bad.append((f, (("flag",), f"the state is of the flag {state.flag!r} but its plan "
                                f"{plan_path} rolls out {plan.flag!r} (a renamed flag?): delete "
                                f"{f.path} to start {plan.flag!r} afresh (held at 0% until "
                                "`rollout resume`), or keep the flag's old name")))
                continue
            wrong = _against_plan(state, plan, plan_path)
            if wrong:
                bad.extend((f, w) for w in wrong)
                continue
            if first[plan.flag][0].name != plan.name:
                continue  # the second plan of a flag: its own problem, reported with the plans
        elif f.name in named:
            pass  # its plan file is broken: reported there; nothing to hold this state against
        elif state.flag in first:
            plan, plan_path = first[state.flag]
            own = state_path(rollouts_dir, layout, plan.name, environment)
            advice = ("delete this one" if plan.name in present else
                      f"delete it (the plan starts afresh), or, if the plan was renamed, "
                      f"rename it to {own.rpartition('/')[2]} with \"plan\": {plan.name!r}")
            bad.append((f, (("flag",), f"{state.flag!r} is rolled out by {plan_path}, whose state "
                            f"is {own}; this file belongs to no plan: {advice} "
                            "(one state per rollout)")))
            continue
        if state.flag in owner:
            bad.append((f, (("flag",), f"the flag {state.flag!r} also has the state "
                            f"{owner[state.flag]}: one state per rollout, delete one")))
            continue
        states[state.flag] = state
        owner[state.flag] = f.path
    texts = {f.path: f.text for f in found.files}
    cross = []
    for path in dict.fromkeys(f.path for f, _ in bad):
        cross.extend(located(texts[path], path, [w for f, w in bad if f.path == path]))
    return StateFiles(states, [*problems, *cross], found.files, cross)
