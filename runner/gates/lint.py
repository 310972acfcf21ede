"""Static checks of a plan's metric source: mistakes found before any metric is read.

A misspelt template variable or a built-in gate without a PromQL query would make every
evaluation an ``error`` at run time; ``rollout validate`` (or a pre-commit hook) can report
them at review time instead. Nothing here reads files, the network or the environment.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runner.gates.readings import (
    COHORTS,
    CONTROL,
    OPTIONAL_COUNTS,
    QUERY_PREFIX,
    STEP_COUNTS,
    STEP_QUERY_PREFIX,
    TREATMENT,
    SourceCall,
    counts_read,
    template_vars,
)
from runner.gates.templates import TemplateProblem, render
from runner.load.durations import parse_duration
from runner.load.problems import Problem
from runner.load.repo import Checked
from runner.model import RolloutPlan

_TYPES = ("file", "prometheus", "command")


def source_problems(plan: RolloutPlan) -> tuple[str, ...]:
    """Messages such as ``metrics.queries.error_rate: template uses an undefined value: …``."""
    traffic = traffic_query_problems(plan)
    if traffic is not None:
        return (traffic, *_source_problems(plan))
    return _source_problems(plan)


def traffic_query_problems(plan: RolloutPlan) -> str | None:
    """A measured traffic (``traffic.query``) needs a Prometheus source and a template that
    renders (``rollout plan`` reads it there); None when it has both, or there is none."""
    query = plan.traffic.query if plan.traffic is not None else None
    if query is None:
        return None
    m = plan.metrics
    if m is None or m.type != "prometheus":
        return ("traffic.query: a measured traffic is read from a prometheus metrics source, "
                f"and this plan's is {'none' if m is None else m.type}; declare "
                "requests_per_hour instead")
    try:
        render(query, what="traffic.query", flag=plan.flag, window=m.window, percentage=0.0,
               extra=_sample_vars(plan))
    except TemplateProblem as e:
        return str(e)
    return None


def _source_problems(plan: RolloutPlan) -> tuple[str, ...]:
    gates = {g.name: g for i in range(len(plan.steps)) for g in plan.step_gates(i)}
    gates.update({g.name: g for g in plan.gates})
    if not gates and plan.compare is None:
        return ()
    m = plan.metrics
    if m is None:
        if not gates:
            return ("metrics: the plan has comparison gates but no metric source (no metrics: "
                    "and no [tool.rollout.metrics] in pyproject.toml)",)
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
        if not m.url and not m.url_env:
            problems.append("metrics.url: required for type prometheus (or metrics.url_env: "
                            "the environment variable holding it)")
        elif m.url and m.url_env:
            problems.append("metrics.url_env: give url or url_env, not both")
        for name, gate in gates.items():
            if gate.confidence is not None:  # the step counts, not a rate query
                for count in STEP_COUNTS:
                    query = f"{STEP_QUERY_PREFIX}{count}"
                    if query in m.queries:
                        templates.append((f"metrics.queries.{query}", m.queries[query]))
                    else:
                        problems.append(f"metrics.queries.{query}: no PromQL for the step's "
                                        f"{count}, which gate {name} (with a confidence) reads")
            elif gate.query is not None:
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
    extra = _sample_vars(plan)
    for where, source in templates:
        for pct in percentages:  # a template may branch on the percentage
            try:
                render(source, what=where, flag=plan.flag, window=m.window, percentage=pct,
                       extra=extra)
            except TemplateProblem as e:
                problems.append(str(e))
                break
    if plan.compare is not None and m.type == "prometheus":
        problems.extend(_cohort_query_problems(plan))
    return tuple(problems)


def _sample_vars(plan: RolloutPlan, cohort: str | None = None) -> dict[str, object]:
    """Template variables as a comparison's source call gets them (sample values)."""
    metrics = plan.metrics
    assert metrics is not None
    call = SourceCall(plan.flag, 0.0, metrics, (), Path("."), _SAMPLE_NOW, {}, plan.compare,
                      _SAMPLE_VARIANT[TREATMENT], _SAMPLE_VARIANT[CONTROL],
                      _SAMPLE_NOW - timedelta(minutes=5))
    return template_vars(call, cohort)


_SAMPLE_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _cohort_query_problems(plan: RolloutPlan) -> list[str]:
    """A comparison needs its cohort queries, rendering, and differing between the cohorts."""
    m, spec = plan.metrics, plan.compare
    assert m is not None and spec is not None
    where = {"errors": "compare.error_rate", "slow": "compare.slow_rate",
             "users_with_errors": "compare.error_rate", "users_slow": "compare.slow_rate",
             "users": "compare.unit"}
    out: list[str] = []
    optional = tuple(c for c in OPTIONAL_COUNTS if f"{QUERY_PREFIX}{c}" in m.queries)
    for count in counts_read(spec, optional):
        name = f"{QUERY_PREFIX}{count}"
        field = where.get(count, "compare")
        template = m.queries.get(name)
        if template is None:
            out.append(f"{field}: the prometheus source has no {name} query (add "
                       f"metrics.queries.{name}; docs/guarded.md)")
            continue
        rendered = []
        for cohort in COHORTS:
            try:
                rendered.append(render(template, what=f"metrics.queries.{name}", flag=plan.flag,
                                       window=m.window, percentage=5,
                                       extra=_sample_vars(plan, cohort)))
            except TemplateProblem as e:
                out.append(str(e))
                break
        else:
            out.extend(_cohort_selection_problems(name, dict(zip(COHORTS, rendered, strict=True))))
    return out


#: The sample variants the lint renders cohort queries with (names no query holds itself).
_SAMPLE_VARIANT = {TREATMENT: "treatment-variant", CONTROL: "control-variant"}
#: A positive label matcher's value: ``="…"`` or ``=~"…"`` (not ``!=``, ``!~``), any quote.
_POSITIVE_MATCHER = re.compile(r"(?<![!=<>])=~?\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`)")


def _cohort_selection_problems(name: str, rendered: dict[str, str]) -> list[str]:
    """A cohort query must select each cohort's own series: differing between the cohorts
    once its PromQL comments are gone, and never selecting the other cohort's variant."""
    if rendered[TREATMENT] == rendered[CONTROL]:
        return [f"metrics.queries.{name}: the query is the same for both cohorts: "
                "use {{ variant }} (or cohort) to select the cohort's series"]
    code = {cohort: " ".join(strip_promql_comments(q).split()) for cohort, q in rendered.items()}
    if code[TREATMENT] == code[CONTROL]:
        return [f"metrics.queries.{name}: the query selects its cohort only inside a PromQL "
                "comment (# to the end of the line), so it is the same for both cohorts: "
                "use {{ variant }} in a label matcher"]
    out: list[str] = []
    for cohort, other in ((TREATMENT, CONTROL), (CONTROL, TREATMENT)):
        selected = [m[1] for m in _POSITIVE_MATCHER.finditer(code[cohort])]
        if any(_SAMPLE_VARIANT[other] in value for value in selected):
            out.append(f"metrics.queries.{name}: the {cohort} query selects the {other} "
                       f"variant ({{{{ {other}_variant }}}} in a label matcher): use "
                       "{{ variant }}, the variant of the cohort being read")
    return out


def strip_promql_comments(query: str) -> str:
    """``query`` without its PromQL comments (``#`` to the end of the line, outside a
    string): what Prometheus runs."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(query):
        c = query[i]
        if quote:
            out.append(c)
            if c == "\\" and quote != "`" and i + 1 < len(query):
                out.append(query[i + 1])
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'`":
            quote = c
            out.append(c)
        elif c == "#":
            end = query.find("\n", i)
            if end < 0:
                break
            i = end
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


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
    # with environments, each environment's plan (its own metric source: the environment's
    # when the plan names none), each problem once
    views = list(repo.environment_plans.values()) or [repo.plans]
    for flag, plan in sorted(((f, p) for plans in views for f, p in plans.items()),
                             key=lambda fp: fp[0]):
        ref = repo.sources.get(f"plan:{flag}")
        if ref is None:
            continue
        for message in source_problems(plan):
            field, _, detail = message.partition(": ")
            line, col = checked.locate(ref.path, _field_path(field))
            problem = Problem(ref.path, line, col, field, detail)
            if problem not in problems:
                problems.append(problem)
    return problems
