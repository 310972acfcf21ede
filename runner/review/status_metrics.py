"""``rollout status --format openmetrics``: every rollout as gauges, in the OpenMetrics text
format (which Prometheus's text format reads too: gauges only, no timestamps, ``# EOF``
a comment there), for node-exporter's textfile collector or a Pushgateway.

One series per flag and metric, labelled ``flag`` and ``plan``; the phase as one 0/1 series
per phase (``rollout_phase{phase="…"}``, as kube-state-metrics exports a pod's phase), so
``rollout_phase{phase="rolled_back"} == 1`` is an alert rule. Gates add a ``gate`` label.
Label values are escaped as the OpenMetrics specification says (backslash, double quote,
line feed); nothing else from a file reaches the output.
Input: the rows ``rollout status`` computes and, for the counters rows do not carry, the
committed states by flag.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from runner.model import Phase, RolloutState, Verdict
from runner.timefmt import parse_iso

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

PHASES = tuple(p.value for p in Phase)
VERDICTS = tuple(v.value for v in Verdict)

#: name -> help, in the order written. All gauges.
HELP: dict[str, str] = {
    "rollout_info": "A rollout known to the repository (always 1); plan_digest names the plan's content.",
    "rollout_phase": "The rollout's phase: 1 for the phase it is in, 0 for the others.",
    "rollout_percentage": "Share of users served the flag's rollout variant now, percent (0-100).",
    "rollout_step": "The current step, counting from 1 (0: not started).",
    "rollout_steps": "Steps in the plan (0: the plan is gone).",
    "rollout_plan_changed": "1 when the plan changed since the state was written (a replan is due).",
    "rollout_started_timestamp_seconds": "When the current run of the rollout started, Unix time.",
    "rollout_step_started_timestamp_seconds": "When the current step started, Unix time.",
    "rollout_next_step_timestamp_seconds": "Earliest time of the next step (its wait over), Unix time.",
    "rollout_last_evaluated_timestamp_seconds": "When the gates were last evaluated conclusively, Unix time.",
    "rollout_failures": "Failed evaluations since the rollout's analysis (re)started.",
    "rollout_consecutive_failures": "Failed evaluations in a row.",
    "rollout_consecutive_inconclusive": "Inconclusive evaluations in a row.",
    "rollout_consecutive_errors": "Evaluations in a row whose metric source failed.",
    "rollout_last_gate_value": "The value each gate read at the last evaluation.",
    "rollout_last_gate_verdict": "Each gate's verdict at the last evaluation: 1 for the verdict "
                                 "it had, 0 for the others.",
    "rollout_last_gate_cohort_rate": "A comparison gate's rate per cohort at the last evaluation, percent.",
    "rollout_last_gate_cohort_requests": "A comparison gate's requests per cohort at the last evaluation.",
    "rollout_baking": "1 while the rollout bakes at 100 % before it is completed.",
    "rollout_bake_ends_timestamp_seconds": "When the bake after 100 % ends, Unix time.",
    "rollout_awaiting_approval": "1 while the next step waits for a person's approval.",
    "rollout_kill_switch": "1 while the kill switch (EMERGENCY_SHUTDOWN, the flag's override) holds it off.",
    "rollout_halted": "1 while a halt (rollout halt) holds it: it does not start, advance or complete.",
    "rollout_frozen_until_timestamp_seconds":
        "While a freeze window holds it: when the freeze ends (Unix seconds).",
}


def escape_label(value: Any) -> str:
    """An OpenMetrics label value: ``\\``, ``"`` and line feed escaped (the only three the
    format escapes); other text stays as it is (UTF-8)."""
    s = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    # a lone surrogate is no UTF-8: the text cannot be written, so it is replaced
    return s.encode("utf-8", "replace").decode("utf-8")


def _labels(labels: Mapping[str, Any]) -> str:
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items()) + "}"


def _value(v: float | int | bool) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    f = float(v)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)


def _seconds(iso: Any) -> float | None:
    if not iso:
        return None
    if isinstance(iso, datetime):
        return iso.timestamp()
    try:
        return parse_iso(str(iso)).timestamp()
    except ValueError:
        return None


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def samples(rows: Sequence[Mapping[str, Any]], states: Mapping[str, RolloutState | None]
            ) -> dict[str, list[tuple[dict[str, Any], float | int | bool]]]:
    """metric name -> its samples (labels, value), in ``HELP``'s order, rows in order."""
    out: dict[str, list[tuple[dict[str, Any], float | int | bool]]] = {n: [] for n in HELP}

    def add(name: str, labels: dict[str, Any], value: float | int | bool | None) -> None:
        if value is not None:
            out[name].append((labels, value))

    for row in rows:
        base = {"flag": row["flag"], "plan": row.get("plan") or ""}
        if row.get("environment"):  # repositories with environments only
            base["environment"] = row["environment"]
        state = states.get(str(row["flag"]))
        phase = str(row.get("phase", ""))
        steps = row.get("steps")
        count = len(steps) if isinstance(steps, Sequence) and not isinstance(steps, str) else (
            int(steps) if isinstance(steps, int) else 0)
        add("rollout_info", {**base, "plan_digest": row.get("plan_digest") or ""}, 1)
        for p in (*PHASES, *([phase] if phase not in PHASES else [])):
            add("rollout_phase", {**base, "phase": p}, p == phase)
        add("rollout_percentage", base, _number(row.get("current_percentage")) or 0.0)
        step = row.get("step")
        started = row.get("step_started_at") is not None and isinstance(step, int)
        add("rollout_step", base, step + 1 if started and isinstance(step, int) else 0)
        add("rollout_steps", base, count)
        add("rollout_plan_changed", base, bool(row.get("plan_changed")))
        add("rollout_started_timestamp_seconds", base, _seconds(row.get("started_at")))
        add("rollout_step_started_timestamp_seconds", base, _seconds(row.get("step_started_at")))
        add("rollout_next_step_timestamp_seconds", base, _seconds(row.get("next_step_at")))
        if state is not None:
            add("rollout_last_evaluated_timestamp_seconds", base,
                _seconds(state.last_evaluated_at))
            add("rollout_failures", base, state.failures)
            add("rollout_consecutive_failures", base, state.consecutive_failures)
            add("rollout_consecutive_inconclusive", base, state.consecutive_inconclusive)
            add("rollout_consecutive_errors", base, state.consecutive_errors)
        seen: set[str] = set()
        for g in row.get("last_gates") or ():
            name = str(g.get("name", ""))
            if name in seen:  # one series per gate: a duplicate would be a duplicate series
                continue
            seen.add(name)
            gl = {**base, "gate": name}
            add("rollout_last_gate_value", gl, _number(g.get("value")))
            verdict = str(g.get("verdict", ""))
            for v in (*VERDICTS, *([verdict] if verdict not in VERDICTS else [])):
                add("rollout_last_gate_verdict", {**gl, "verdict": v}, v == verdict)
            cohorts = g.get("cohorts")
            if isinstance(cohorts, Mapping):
                for cohort in ("treatment", "control"):
                    cl = {**gl, "cohort": cohort}
                    add("rollout_last_gate_cohort_rate", cl, _number(cohorts.get(f"{cohort}_rate")))
                    add("rollout_last_gate_cohort_requests", cl,
                        _number(cohorts.get(f"{cohort}_requests")))
        if "baking" in row or "bake_ends_at" in row:
            add("rollout_baking", base, bool(row.get("baking")))
            add("rollout_bake_ends_timestamp_seconds", base, _seconds(row.get("bake_ends_at")))
        if "awaiting_approval" in row:
            add("rollout_awaiting_approval", base, bool(row.get("awaiting_approval")))
        if row.get("kill_switch"):  # only while it holds: 0.2's exposition otherwise
            add("rollout_kill_switch", base, 1)
        if row.get("halted"):  # only while they hold, as the kill switch
            add("rollout_halted", base, 1)
        if isinstance(row.get("frozen"), Mapping):
            add("rollout_frozen_until_timestamp_seconds", base,
                _seconds(row["frozen"].get("until")))
    return out


def status_openmetrics(rows: Sequence[Mapping[str, Any]],
                       states: Mapping[str, RolloutState | None]) -> str:
    """The exposition: ``# HELP`` and ``# TYPE`` per metric family that has samples, its
    samples together, and ``# EOF``."""
    lines: list[str] = []
    for name, series in samples(rows, states).items():
        if not series:
            continue
        lines.append(f"# HELP {name} {HELP[name]}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(f"{name}{_labels(labels)} {_value(value)}" for labels, value in series)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def families(text: str) -> Iterable[str]:
    """The metric names of an exposition (for tests and docs)."""
    return [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
