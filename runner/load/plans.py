"""Rollout plan files (``rollouts/<name>.yaml``): every plan valid on its own, and the problems
of the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.load.documents import located, read_mapping
from runner.load.layout import shown_name, stem, unsafe_name, yaml_files
from runner.load.plan_environments import resolve
from runner.load.problems import Problem
from runner.load.schema_errors import schema_findings
from runner.load.semantic import Finding, check_plan, check_steps
from runner.load.yamlsafe import locate
from runner.model import RepoConfig, RolloutPlan, SourceRef


@dataclass(frozen=True)
class PlanFiles:
    #: flag -> its plans with their files, in file order: more than one is a problem between
    #: files, and the first one is the flag's plan
    plans: dict[str, list[tuple[RolloutPlan, str]]]
    sources: dict[str, SourceRef]  # "plan:<flag>" -> the file of its first plan
    texts: dict[str, str]  # file -> its text, to place findings in it
    problems: list[Problem]  # the files' own: unreadable, schema, dates
    findings: list[Finding]  # semantic, placed later (references need every file first)
    #: with ``[tool.rollout.environments]``: environment -> flag -> its plans resolved for
    #: that environment, with their files, in file order (only the plans running there)
    environments: dict[str, dict[str, list[tuple[RolloutPlan, str]]]] = field(
        default_factory=dict)

    def first(self) -> dict[str, RolloutPlan]:
        return {flag: found[0][0] for flag, found in self.plans.items()}

    def first_of(self, environment: str) -> dict[str, RolloutPlan]:
        """Each flag's plan as resolved for ``environment`` (the first plan of the flag's
        plans, as :meth:`first`; a flag whose first plan skips the environment has none)."""
        runs = self.environments.get(environment, {})
        return {flag: plan for flag, found in self.plans.items()
                for plan, _ in runs.get(flag, ())[:1] if plan.name == found[0][0].name}


def _raw_steps(data: dict[str, Any]) -> list[float] | None:
    """The percentages of a plan that failed its schema, when its steps are still readable."""
    steps = data.get("steps")
    if not isinstance(steps, list):
        return None
    out = []
    for s in steps:
        p = s.get("percentage") if isinstance(s, dict) else s
        if isinstance(p, bool) or not isinstance(p, int | float):
            return None
        out.append(float(p))
    return out


def load_plans(folder: Path, prefix: str, config: RepoConfig) -> PlanFiles:
    """Every plan file in ``folder``; ``prefix`` names them relative to the repository root,
    ``config`` gives the defaults plans inherit (the metric source)."""
    out = PlanFiles({}, {}, {}, [], [], {e.name: {} for e in config.environments})
    for p in yaml_files(folder):
        if (bad_name := unsafe_name(p)) is not None:
            out.problems.append(Problem(f"{prefix}{shown_name(p.name)}", 1, 1, "", bad_name))
            continue
        rel = f"{prefix}{p.name}"
        got = read_mapping(p, rel)
        if isinstance(got, Problem):
            out.problems.append(got)
            continue
        text, data = got
        out.texts[rel] = text
        bad = schema_findings(data, "rollout")
        if bad:
            out.problems.extend(located(text, rel, bad))
            pcts = _raw_steps(data)
            if pcts is not None:
                out.findings.extend(check_steps(pcts, rel))
            continue
        try:
            resolved = resolve(stem(p), data, config, rel)
        except ValueError as e:  # a date-time the schema's format check let through
            why = f" ({e})" if "out of range" in str(e) or "after the year" in str(e) else ""
            out.problems.append(Problem(rel, *locate(text, ("start_at",)), "start_at",
                                        f"{data.get('start_at')!r} is not an ISO 8601 date-time "
                                        f"such as 2026-01-05T09:00:00Z{why}"))
            continue
        plan = resolved.base
        if not config.environments:
            out.findings.extend(check_plan(plan, data, rel))
        out.findings.extend(resolved.findings)
        out.plans.setdefault(plan.flag, []).append((plan, rel))
        for env, env_plan in resolved.plans.items():
            out.environments[env].setdefault(plan.flag, []).append((env_plan, rel))
        out.sources.setdefault(f"plan:{plan.flag}", SourceRef(rel))
    return out
