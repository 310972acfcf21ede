"""Schema-valid documents -> model objects: assembles a flag, a plan, the config. Input here
has already passed the JSON Schema."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from runner.load.durations import parse_duration
from runner.model import (
    BOOLEAN_VARIANTS,
    STRATEGIES,
    Comparison,
    Flag,
    FlagOverride,
    Gate,
    MetricComparison,
    MetricsConfig,
    OnFailure,
    RepoConfig,
    Requirement,
    Risk,
    RolloutPlan,
    Rule,
    Step,
    Strategy,
    Targeting,
    Traffic,
)
from runner.model.plan import BUILTIN_GATES, DEFAULT_BASELINES
from runner.timefmt import parse_iso

RULE_OPS = ("in", "not_in", "equals", "starts_with", "ends_with")


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def build_targeting(t: dict[str, Any]) -> Targeting:
    rules = []
    for r in t.get("rules", ()):
        op = next(o for o in RULE_OPS if o in r)
        vals = r[op]
        rules.append(
            Rule(r["attribute"], op, tuple(vals) if isinstance(vals, list) else (vals,), r["variant"])
        )
    return Targeting(
        users=tuple(t.get("users", ())),
        regions=tuple(t.get("regions", ())),
        variant=t.get("variant"),
        rules=tuple(rules),
    )


def build_override(d: dict[str, Any]) -> FlagOverride:
    """One environment's entry of a flag's ``environments:`` block."""
    pct = d.get("percentage")
    return FlagOverride(
        enabled=d.get("enabled"),
        targeting=build_targeting(d["targeting"]) if "targeting" in d else None,
        percentage=float(pct) if isinstance(pct, int | float) else None,
        split=MappingProxyType({k: float(v) for k, v in pct.items()})
        if isinstance(pct, dict)
        else None,
        default_variant=d.get("default_variant"),
    )


def build_flag(d: dict[str, Any]) -> Flag:
    variants = d.get("variants")
    pct = d.get("percentage")
    return Flag(
        key=d["key"],
        description=d["description"],
        owner=d["owner"],
        risk=Risk(d["risk"]),
        enabled=d.get("enabled", True),
        variants=_freeze(variants) if variants is not None else BOOLEAN_VARIANTS,
        default_variant=d.get("default_variant", "off"),
        rollout_variant=d.get("rollout_variant", "on"),
        requires=tuple(
            Requirement(r) if isinstance(r, str) else Requirement(r["flag"], r.get("variant"))
            for r in d.get("requires", ())
        ),
        env_override=d.get("env_override", ""),
        targeting=build_targeting(d.get("targeting") or {}),
        percentage=float(pct) if isinstance(pct, int | float) else None,
        split=MappingProxyType({k: float(v) for k, v in pct.items()})
        if isinstance(pct, dict)
        else None,
        bucket_by=d.get("bucket_by"),
        sets=tuple(d.get("sets", ())),
        environments=MappingProxyType({name: build_override(o) for name, o
                                       in d.get("environments", {}).items()}),
    )


def build_metrics(d: dict[str, Any] | None) -> MetricsConfig | None:
    if d is None:
        return None
    return MetricsConfig(
        type=d["type"],
        path=d.get("path"),
        url=d.get("url", "").rstrip("/") or None,
        url_env=d.get("url_env"),
        queries=MappingProxyType(dict(d.get("queries", {}))),
        command=tuple(d.get("command", ())),
        timeout=parse_duration(d.get("timeout", 10)),
        bearer_token_env=d.get("bearer_token_env"),
        window=d.get("window", "5m"),
    )


def build_gates(d: dict[str, Any] | None) -> dict[str, Gate]:
    gates: dict[str, Gate] = {}
    for name, spec in (d or {}).items():
        if name == "custom":
            for cname, c in spec.items():
                gates[cname] = Gate(
                    cname, c.get("max"), c.get("min"), c["query"], c.get("dry_run", False)
                )
            continue
        direction = BUILTIN_GATES[name]
        confidence = None
        if isinstance(spec, dict):
            limit, dry = spec[direction], spec.get("dry_run", False)
            if "confidence" in spec:  # error_rate only: the schema allows it nowhere else
                confidence = float(spec["confidence"])
        else:
            limit, dry = spec, False
        gates[name] = (
            Gate(name, max=float(limit), dry_run=dry, confidence=confidence)
            if direction == "max"
            else Gate(name, min=float(limit), dry_run=dry)
        )
    return gates


def build_compare(d: dict[str, Any] | None) -> Comparison | None:
    """The plan's ``compare:`` block (docs/guarded.md, "Configuration")."""
    if d is None:
        return None
    metrics = []
    if "error_rate" in d:
        metrics.append(MetricComparison("error_rate", float(d["error_rate"]["max_increase"])))
    if "slow_rate" in d:
        slow = d["slow_rate"]
        metrics.append(MetricComparison("slow_rate", float(slow["max_increase"]),
                                        float(slow["objective_ms"])))
    return Comparison(
        metrics=tuple(metrics),
        confidence=float(d.get("confidence", 0.95)),
        min_requests=int(d.get("min_requests", 500)),
        srm_p_value=float(d.get("srm_p_value", 0.001)),
        dry_run=bool(d.get("dry_run", False)),
        unit=str(d.get("unit", "requests")),
    )


#: A traffic's short form, ``6000/h``: seconds of each unit.
TRAFFIC_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def build_traffic(d: str | dict[str, Any] | None) -> Traffic | None:
    """The plan's ``traffic:`` (docs/guarded.md, "How long a step takes"): ``6000/h``, or an
    object with ``requests_per_hour`` and/or a ``query`` that measures it, and the planning
    assumptions."""
    if d is None:
        return None
    if isinstance(d, str):
        count, unit = d.split("/")
        return Traffic(float(count) * 3600.0 / TRAFFIC_UNITS[unit])
    declared = d.get("requests_per_hour")
    return Traffic(
        requests_per_hour=None if declared is None else float(declared),
        baselines=MappingProxyType({**DEFAULT_BASELINES, **{
            k: float(d[k]) for k in DEFAULT_BASELINES if k in d}}),
        power=float(d.get("power", 0.8)),
        regression=MappingProxyType({k: float(v) for k, v in d.get("regression", {}).items()}),
        query=d.get("query"),
    )


def plan_digest(d: dict[str, Any], metrics: MetricsConfig | None) -> str:
    """Digest of what the plan means, not how it is written: comments and key order don't count.

    ``traffic`` is left out: it is the author's expectation, which the runner never reads, so
    correcting it never replans (and restarts the evidence of) a running rollout."""
    effective = dict(d)
    effective.pop("traffic", None)
    if metrics is not None and "metrics" not in effective:
        effective["metrics"] = {"type": metrics.type, "path": metrics.path, "url": metrics.url,
                                "queries": dict(metrics.queries), "command": list(metrics.command)}
        if metrics.url_env:  # only when set: the digests of plans without it stay as they were
            effective["metrics"]["url_env"] = metrics.url_env
    canon = json.dumps(effective, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()


#: Times later than this year are refused: waits and deadlines are added to them.
MAX_YEAR = 9000


def parse_time(value: str) -> datetime:
    """ISO 8601, returned in UTC; a time without an offset is UTC.

    ValueError also for a time that UTC cannot hold (``9999-12-31T23:59:59-23:59``) or so
    late that adding a wait or a deadline to it would overflow (after the year 9000).
    """
    t = parse_iso(value)
    try:
        t = t.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range in UTC") from None
    if t.year > MAX_YEAR:
        raise ValueError(f"{value!r} is after the year {MAX_YEAR}")
    return t


def build_plan(name: str, d: dict[str, Any], config: RepoConfig) -> RolloutPlan:
    strategy = Strategy(d["strategy"])
    plan_gates = build_gates(d.get("gates"))
    if strategy is Strategy.CUSTOM:
        default_steps: tuple[float, ...] = ()
        default_wait = 300.0
    else:
        default_steps, default_wait = STRATEGIES[strategy]
    steps: list[Step] = []
    for s in d.get("steps") or default_steps:
        if isinstance(s, dict):
            override = s.get("gates")
            steps.append(
                Step(
                    float(s["percentage"]),
                    parse_duration(s["wait"]) if "wait" in s else None,
                    tuple({**plan_gates, **build_gates(override)}.values())
                    if override is not None
                    else None,
                    approval=s.get("approval", False),
                )
            )
        else:
            steps.append(Step(float(s)))
    metrics = build_metrics(d.get("metrics")) or config.metrics
    digest = plan_digest(d, metrics)
    return RolloutPlan(
        name=name,
        flag=d["flag"],
        strategy=strategy,
        steps=tuple(steps),
        wait=parse_duration(d["wait"]) if "wait" in d else default_wait,
        gates=tuple(plan_gates.values()),
        metrics=metrics,
        on_failure=OnFailure(d.get("on_failure", "rollback")),
        failure_limit=d.get("failure_limit", 1),
        error_limit=d.get("error_limit", 4),
        progress_deadline=parse_duration(d.get("progress_deadline", 1800)),
        start_at=parse_time(d["start_at"]) if "start_at" in d else None,
        accept_risk=d.get("accept_risk", False),
        compare=build_compare(d.get("compare")),
        bake=parse_duration(d["bake"]) if "bake" in d else None,
        approvers=tuple(d.get("approvers", ())),
        digest=digest,
        traffic=build_traffic(d.get("traffic")),
        version=digest,  # a plan of one environment: its version is its digest
    )


_DEFAULT_CONFIG = RepoConfig()


def build_config(d: dict[str, Any]) -> RepoConfig:
    return RepoConfig(
        flags_dir=d.get("flags_dir", "flags"),
        rollouts_dir=d.get("rollouts_dir", "rollouts"),
        metrics=build_metrics(d.get("metrics")),
        # (a slots dataclass has no class-level defaults to read: ask an instance)
        author_name=d.get("author_name", _DEFAULT_CONFIG.author_name),
        author_email=d.get("author_email", _DEFAULT_CONFIG.author_email),
        emergency_shutdown=d.get("emergency_shutdown", False),
    )
