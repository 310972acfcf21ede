"""A plan resolved per environment: the plan document with one environment's block laid over it.

A repository that declares ``[tool.rollout.environments]`` runs each plan in the environments
its ``environments:`` names (default: every one), always in the config's promotion order. Each
environment's plan is built by the ordinary plan code from the document with that
environment's mapping laid over it, so validation and defaults are shared; ``version`` is the
digest of the whole file (every block), ``digest`` the resolved plan's own (an edit of
production's block does not restart staging). docs/environments.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from runner.load.assemble import build_plan, plan_digest
from runner.load.durations import parse_duration
from runner.load.semantic import Finding, check_durations, check_plan
from runner.model import RepoConfig, RolloutPlan

#: The plan fields only a repository with environments may use.
ENVIRONMENT_FIELDS = ("environments", "promote_after")


@dataclass
class Resolved:
    """A plan file's plans: the plan as written (environment None) and one per environment."""

    base: RolloutPlan
    #: environment -> its plan, in promotion order
    plans: dict[str, RolloutPlan] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def _blocks(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The plan's ``environments:`` as environment -> its block (a list: empty blocks)."""
    envs = data.get("environments")
    if isinstance(envs, list):
        return {name: {} for name in envs}
    if isinstance(envs, dict):
        return {name: dict(block or {}) for name, block in envs.items()}
    return {}


def _placed(findings: list[Finding], env: str, block: dict[str, Any]) -> list[Finding]:
    """Findings of an environment's plan at the field of its block that caused them."""
    out = []
    for f in findings:
        if f.field and f.field[0] in block:
            f = dataclasses.replace(f, field=("environments", env, *f.field),
                                    message=f"{f.message} (in {env})")
        out.append(f)
    return out


def resolve(name: str, data: dict[str, Any], config: RepoConfig, path: str) -> Resolved:
    """``data`` (schema-valid) as its plans. Without declared environments: the plan as
    ever (an ``environments:`` or ``promote_after`` is a finding). ValueError as
    :func:`build_plan` raises it (a bad date)."""
    declared = [e.name for e in config.environments]
    own = {k: v for k, v in data.items() if k not in ENVIRONMENT_FIELDS}
    base = build_plan(name, own, config)
    out = Resolved(base)
    if not declared:
        for key in ENVIRONMENT_FIELDS:
            if key in data:
                out.findings.append(Finding(path, (key,), "[tool.rollout] declares no "
                                            "environments ([tool.rollout.environments])"))
        return out
    blocks = _blocks(data)
    for env in blocks:
        if env not in declared:
            out.findings.append(Finding(path, ("environments", env), (
                f"{env!r} is not a declared environment (pyproject.toml "
                f"[tool.rollout.environments]: {', '.join(declared)})"), cross=True))
    names = [e for e in declared if e in blocks] if "environments" in data else declared
    version = plan_digest(data, config.metrics)
    previous: str | None = None
    for env in names:
        block = blocks.get(env, {})
        doc = {**own, **{k: v for k, v in block.items() if k != "promote_after"}}
        environment = config.environment(env)
        env_config = config
        if environment is not None and environment.metrics is not None:
            env_config = dataclasses.replace(config, metrics=environment.metrics)
        plan = build_plan(name, doc, env_config)
        soak = block.get("promote_after", data.get("promote_after", 0))
        plan = dataclasses.replace(
            plan, environment=env, version=version,
            promote_after=parse_duration(soak) if previous is not None else 0.0)
        out.findings.extend(_placed(check_plan(plan, doc, path), env, block))
        if "promote_after" in block:
            out.findings.extend(_placed(check_durations(
                {"promote_after": block["promote_after"]}, path), env, block))
        out.plans[env] = plan
        previous = env
    return out
