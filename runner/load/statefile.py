"""Rollout state files (``rollouts/<plan>.state.json``): parse and write deterministically.

The runner owns these files; nothing else writes them. Writing sorts keys and fixes the
format so that the same state always gives the same bytes (idempotent runs make no commit).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from runner.load.assemble import parse_time
from runner.load.layout import STATE_SUFFIX as STATE_SUFFIX  # defined there, kept here for importers
from runner.model import CohortEvidence, GateResult, Phase, RolloutState, StepCounts, Verdict
from runner.timefmt import utc_iso


def _opt_time(v: str | None) -> datetime | None:
    return parse_time(v) if v else None


def _number(v: float | None) -> float | int | None:
    if v is None or not math.isfinite(v):
        return None
    return int(v) if float(v).is_integer() else v


def _cohorts(c: CohortEvidence) -> dict[str, Any]:
    return {"treatment_rate": _number(c.treatment_rate), "control_rate": _number(c.control_rate),
            "treatment_requests": c.treatment_requests, "control_requests": c.control_requests,
            "low": _number(c.low), "high": _number(c.high), "margin": _number(c.margin),
            "confidence": _number(c.confidence)}


def _float(v: float | None) -> float | None:
    return None if v is None else float(v)


def _evidence(d: dict[str, Any]) -> CohortEvidence:
    return CohortEvidence(
        treatment_rate=_float(d.get("treatment_rate")), control_rate=_float(d.get("control_rate")),
        treatment_requests=int(d["treatment_requests"]), control_requests=int(d["control_requests"]),
        low=_float(d.get("low")), high=_float(d.get("high")),
        margin=float(d["margin"]), confidence=float(d["confidence"]))


def state_to_dict(s: RolloutState) -> dict[str, Any]:
    return {
        "flag": s.flag,
        "plan": s.plan,
        "phase": s.phase.value,
        "step": s.step,
        "current_percentage": _number(s.current_percentage),
        "started_at": utc_iso(s.started_at),
        "step_started_at": utc_iso(s.step_started_at),
        "last_evaluated_at": utc_iso(s.last_evaluated_at),
        "plan_digest": s.plan_digest,
        "consecutive_failures": s.consecutive_failures,
        "failures": s.failures,
        "consecutive_inconclusive": s.consecutive_inconclusive,
        "consecutive_errors": s.consecutive_errors,
        "last_gates": [
            {
                "name": g.name,
                "verdict": g.verdict.value,
                "value": _number(g.value),
                "threshold": g.threshold,
                "dry_run": g.dry_run,
                "detail": g.detail,
                "evaluated_at": utc_iso(g.evaluated_at),
                **({"cohorts": _cohorts(g.cohorts)} if g.cohorts is not None else {}),
                # only for gates with a confidence: other states keep their bytes
                **({"counts": {"requests": _number(g.counts.requests),
                               "errors": _number(g.counts.errors)}}
                   if g.counts is not None else {}),
            }
            for g in s.last_gates
        ],
        "reason": s.reason,
        **({"approved_step": s.approved_step, "approved_by": s.approved_by}
           if s.approved_step is not None else {}),
        # repositories with environments only: other states keep their bytes
        **({"environment": s.environment} if s.environment is not None else {}),
        **({"plan_version": s.plan_version} if s.plan_version is not None else {}),
        **({"completed_at": utc_iso(s.completed_at)} if s.completed_at is not None else {}),
    }


def dump_state(s: RolloutState) -> str:
    return json.dumps(state_to_dict(s), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def state_from_dict(d: dict[str, Any]) -> RolloutState:
    """``d`` has passed the state schema."""
    return RolloutState(
        flag=d["flag"],
        plan=d["plan"],
        phase=Phase(d["phase"]),
        step=d["step"],
        current_percentage=float(d["current_percentage"]),
        started_at=_opt_time(d.get("started_at")),
        step_started_at=_opt_time(d.get("step_started_at")),
        plan_digest=d["plan_digest"],
        consecutive_failures=d.get("consecutive_failures", 0),
        consecutive_inconclusive=d.get("consecutive_inconclusive", 0),
        consecutive_errors=d.get("consecutive_errors", 0),
        last_gates=tuple(
            GateResult(
                name=g["name"],
                verdict=Verdict(g["verdict"]),
                value=g.get("value"),
                threshold=g.get("threshold", ""),
                dry_run=g.get("dry_run", False),
                detail=g.get("detail", ""),
                evaluated_at=_opt_time(g.get("evaluated_at")),
                cohorts=_evidence(g["cohorts"]) if "cohorts" in g else None,
                counts=StepCounts(float(g["counts"]["requests"]), float(g["counts"]["errors"]))
                if "counts" in g else None,
            )
            for g in d.get("last_gates", ())
        ),
        reason=d.get("reason", ""),
        last_evaluated_at=_opt_time(d.get("last_evaluated_at")),
        failures=d.get("failures", 0),
        approved_step=d.get("approved_step"),
        approved_by=d.get("approved_by") if d.get("approved_step") is not None else None,
        environment=d.get("environment"),
        plan_version=d.get("plan_version"),
        completed_at=_opt_time(d.get("completed_at")),
    )
