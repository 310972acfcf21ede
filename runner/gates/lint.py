"""Static checks of a plan's metric source: mistakes found before any metric is read.

A misspelt template variable or a built-in gate without a PromQL query would make every
evaluation an ``error`` at run time; ``rollout validate`` (or a pre-commit hook) can report
them at review time instead. Nothing here reads files, the network or the environment.
"""

from __future__ import annotations

from runner.gates.templates import TemplateProblem, render
from runner.load.durations import parse_duration
from runner.load.problems import Problem
from runner.load.repo import Checked
from runner.model import RolloutPlan

_TYPES = ("file", "prometheus", "command")


def source_problems(plan: RolloutPlan) -> tuple[str, ...]:
    """Messages such as ``metrics.queries.error_rate: template uses an undefined value: …``."""
    gates = {g.name: g for i in range(len(plan.steps)) for g in plan.step_gates(i)}
    gates.update({g.name: g for g in plan.gates})
    if not gates:
        return ()
    m = plan.metrics
    if m is None:
        return ("metrics: the plan has gates but no metric source (no metrics: and no "
                "[tool.rollout.metrics] in pyproject.toml)",)
    if m.type not in _TYPES:
        return (f"metrics.type: unknown metrics type {m.type!r} (one of {', '.join(_TYPES)})",)
    problems: list[str] = []
    try:
        parse_duration(m.window)
    except ValueError as e:
        problems.append(f"metrics.window: {e}")
    templates: list[tuple[str, str]] = []
    if m.type == "file":
        if not m.path:
            problems.append("metrics.path: required for type file")
        else:
            templates.append(("metrics.path", m.path))
    elif m.type == "prometheus":
        if not m.url:
            problems.append("metrics.url: required for type prometheus")
        for name, gate in gates.items():
            if gate.query is not None:
                templates.append((f"gates.custom.{name}.query", gate.query))
            elif name in m.queries:
                templates.append((f"metrics.queries.{name}", m.queries[name]))
            else:
                problems.append(f"metrics.queries.{name}: no PromQL for gate {name}")
    else:
        if not m.command:
            problems.append("metrics.command: required for type command")
        templates.extend((f"metrics.command[{i}]", arg) for i, arg in enumerate(m.command))
    percentages = sorted(set(plan.percentages)) or [0.0]
    for where, source in templates:
        for pct in percentages:  # a template may branch on the percentage
            try:
                render(source, what=where, flag=plan.flag, window=m.window, percentage=pct)
            except TemplateProblem as e:
                problems.append(str(e))
                break
    return tuple(problems)


def _field_path(field: str) -> tuple[str | int, ...]:
    """``metrics.command[1]`` -> ("metrics", "command", 1)."""
    out: list[str | int] = []
    for part in field.split("."):
        name, _, rest = part.partition("[")
        if name:
            out.append(name)
        if rest:
            out.extend(int(i) for i in rest.rstrip("]").split("]["))
    return tuple(out)


def repository_source_problems(checked: Checked) -> list[Problem]:
    """:func:`source_problems` of every plan of a valid repository, as problems at the line a
    user would look at (in the texts the load read).

    A plan that takes the repository's default source has its problems reported at the plan
    (``metrics`` is where it would override the default).
    """
    repo = checked.salvaged
    problems: list[Problem] = []
    for flag, plan in sorted(repo.plans.items()):
        ref = repo.sources.get(f"plan:{flag}")
        if ref is None:
            continue
        for message in source_problems(plan):
            field, _, detail = message.partition(": ")
            line, col = checked.locate(ref.path, _field_path(field))
            problems.append(Problem(ref.path, line, col, field, detail))
    return problems
