"""Static checks of a plan's metric source: mistakes found before any metric is read.

A misspelt template variable or a built-in gate without a PromQL query would make every
evaluation an ``error`` at run time; ``rollout validate`` (or a pre-commit hook) can report
them at review time instead. Nothing here reads files, the network or the environment.
"""

from __future__ import annotations

from runner.gates.templates import TemplateProblem, render
from runner.load.durations import parse_duration
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
