"""Building plans and requests for gate tests without going through YAML."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from runner.gates import GateRequest
from runner.model import Gate, GateResult, MetricsConfig, RolloutPlan, Step, Strategy

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

#: The gates of rollouts/phase_4_deployment.yaml.
SAFE_GATES = (
    Gate("error_rate", max=1.0),
    Gate("p95_latency_ms", max=500.0),
    Gate("request_count", min=100.0),
)


def metrics(type: str, **kw: object) -> MetricsConfig:
    if "queries" in kw:
        kw["queries"] = MappingProxyType(dict(kw["queries"]))  # type: ignore[arg-type]
    if "command" in kw:
        kw["command"] = tuple(kw["command"])  # type: ignore[arg-type]
    return MetricsConfig(type=type, **kw)  # type: ignore[arg-type]


def plan(flag: str, source: MetricsConfig | None, gates: tuple[Gate, ...] = SAFE_GATES) -> RolloutPlan:
    return RolloutPlan(
        name=flag, flag=flag, strategy=Strategy.SAFE,
        steps=tuple(Step(p) for p in (0, 5, 10, 25, 50, 75, 100)),
        wait=300.0, gates=gates, metrics=source,
    )


def request(flag: str, source: MetricsConfig | None, gates: tuple[Gate, ...] = SAFE_GATES,
            step: int = 3) -> GateRequest:
    p = plan(flag, source, gates)
    return GateRequest(flag, p, step, p.steps[step].percentage)


def by_name(results: tuple[GateResult, ...]) -> Mapping[str, GateResult]:
    return {r.name: r for r in results}
