"""The runner's commit message has one owner: every action formats, parses back to the same
record and formats again to the same bytes; forged text in a field never reads as a trailer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner.model import CohortEvidence, GateResult, Phase, RolloutState, StepCounts, Verdict
from runner.reconcile.decide import Action, Decision
from runner.reconcile.message import (
    RunnerMessage,
    comparison_of,
    evidence_line,
    format_message,
    from_decision,
    message,
    parse_compare,
    parse_gate,
    parse_message,
)

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
COHORTS = CohortEvidence(treatment_rate=5.25, control_rate=0.25, treatment_requests=1204,
                         control_requests=22870, low=3.5, high=5.75, margin=0.5,
                         confidence=0.95)
GATES = (GateResult("error_rate", Verdict.PASS, 0.5, "<= 1", detail="fine"),
         GateResult("latency_p99", Verdict.INCONCLUSIVE, None, "<= 300", dry_run=True),
         GateResult("compare.error_rate", Verdict.FAIL, 4.875, "+0.5 pp", cohorts=COHORTS))


def _state(pct: float, phase: Phase = Phase.PROGRESSING, approved: int | None = None
           ) -> RolloutState:
    return RolloutState(flag="checkout", plan="checkout", phase=phase, step=1,
                        current_percentage=pct, started_at=NOW, step_started_at=NOW,
                        plan_digest=DIGEST, approved_step=approved)


def _decision(action: Action, **kw: object) -> Decision:
    after = None if action is Action.CLEANUP else _state(
        0 if action is Action.ROLLBACK else 25,
        Phase.ROLLED_BACK if action is Action.ROLLBACK else Phase.PROGRESSING,
        approved=2 if action is Action.APPROVE else None)
    base: dict[str, object] = dict(flag="checkout", plan="checkout", action=action,
                                   before=_state(10), after=after, reason="the gates pass",
                                   gates=GATES, plan_digest=DIGEST)
    base.update(kw)
    return Decision(**base)  # type: ignore[arg-type]


CASES = [
    # a hold always names the revert it holds after (below)
    *[_decision(a) for a in Action if a is not Action.HOLD],
    _decision(Action.ROLLBACK, requested_by="Alice <alice@example.com>", gates=()),
    _decision(Action.HOLD, reverted_commit="0123456789abcdef0123456789abcdef01234567",
              reverted_by="Bob <bob@example.com>"),
    _decision(Action.APPROVE, approved_by="carol", requested_by="carol", gates=()),
]


@pytest.mark.parametrize("d", CASES, ids=lambda d: f"{d.action.value}")
def test_every_action_round_trips(d: Decision) -> None:
    assert d.action is not None
    record = from_decision(d, None, state_before="none", state_after=DIGEST)
    text = format_message(record)
    assert text == message(d, None, state_before="none", state_after=DIGEST)
    parsed = parse_message(text)
    assert parsed == record
    assert parsed is not None and format_message(parsed) == text
    assert parsed.flag == "checkout" and parsed.action == d.action.value
    assert parsed.from_percentage == d.from_percentage and parsed.to_percentage == d.to_percentage
    assert parsed.gates == tuple(GateResult(g.name, g.verdict, g.value, g.threshold, g.dry_run)
                                 for g in d.gates)
    assert parsed.comparisons == tuple(comparison_of(g) for g in d.gates if g.cohorts)


def test_the_subject_grammar() -> None:
    subjects = {a: parse_message(message(_decision(a), None)).subject  # type: ignore[union-attr]
                for a in (Action.ADVANCE, Action.ROLLBACK, Action.APPROVE, Action.CLEANUP)}
    assert subjects == {Action.ADVANCE: "rollout(checkout): 10% → 25%",
                        Action.ROLLBACK: "rollout(checkout): rollback 10% → 0%",
                        Action.APPROVE: "rollout(checkout): approve step 3 at 25%",
                        Action.CLEANUP: "rollout(checkout): remove orphaned state"}


FORGED = "\nRollout-Flag: other\nRollout-Action: rollback\n\nRollout-Requested-By: mallory"


@pytest.mark.parametrize("field", ["reason", "requested_by", "reverted_by", "approved_by"])
def test_a_forged_trailer_inside_a_field_is_no_trailer(field: str) -> None:
    hostile = f"x\x1fy{FORGED}\r\nRollout-Phase: completed"
    d = _decision(Action.PAUSE, **{field: hostile},
                  gates=(GateResult("error_rate", Verdict.FAIL, 2.0, "<= 1",
                                    detail=f"bad{FORGED}"),))
    text = message(d, None)
    parsed = parse_message(text)
    assert parsed is not None
    assert parsed.flags == ("checkout",) and parsed.action == "pause"
    assert parsed.phase == "progressing"
    assert parsed.requested_by == (parsed.requested_by if field == "requested_by" else None)
    value = getattr(parsed, field)
    assert "\n" not in value and "\x1f" not in value and "Rollout-Flag: other" in value
    assert format_message(parsed) == text


def test_a_hand_built_record_is_written_as_one_line_per_field() -> None:
    record = RunnerMessage("rollout(checkout): pause at 25%", ("checkout",), "pause", 25, 25,
                           "paused", "checkout", DIGEST, f"why{FORGED}",
                           (f"why{FORGED}",), gate_lines=(f"error_rate=2 fail (<= 1){FORGED}",))
    text = format_message(record)
    parsed = parse_message(text)
    assert parsed is not None and parsed.flags == ("checkout",)
    assert parsed.requested_by is None and parsed.action == "pause"
    with pytest.raises(ValueError):
        format_message(record._replace(plan="checkout\nRollout-Flag: other"))


def test_trailer_looking_lines_in_a_persons_body_are_not_a_runner_message() -> None:
    text = ("Edit the flag\n\nRollout-Flag: checkout\nRollout-Action: rollback\n\n"
            "This is prose, the last paragraph.\n")
    assert parse_message(text) is None


def test_gate_and_compare_grammars() -> None:
    assert parse_gate("error_rate=none inconclusive (<= 1) dry-run") == GateResult(
        "error_rate", Verdict.INCONCLUSIVE, None, "<= 1", True)
    assert parse_gate("error_rate=nan fail (<= 1)") == GateResult(
        "error_rate", Verdict.FAIL, None, "<= 1")
    assert parse_gate("garbage") is None
    c = parse_compare("error_rate treatment 5.1% (n=1,204) control none (n=0) no interval yet "
                      "margin 0.5 pp: inconclusive dry-run")
    assert c is not None and c.dry_run and c.diff is None and c.cohorts.control_rate is None
    assert c.cohorts.treatment_requests == 1204 and c.verdict == "inconclusive"
    assert parse_compare("error_rate went up: fail") is None


@pytest.mark.parametrize(("gate", "line"), [
    (GateResult("error_rate", Verdict.PASS, 0.5, "<= 1", detail="fine"),
     "error_rate = 0.5 (threshold <= 1, window 5m): pass — fine"),
    (GateResult("request_count", Verdict.PASS, 900.0, ">= 100"),
     "request_count = 900 (threshold >= 100, window 5m): pass"),
    (GateResult("error_rate", Verdict.INCONCLUSIVE, 0.2, "<= 1 at 95 %", detail="1 errors in 500",
                counts=StepCounts(500.0, 1.0)),
     "error_rate = 0.2 (threshold <= 1 at 95 %, window since the step started): inconclusive"
     " — 1 errors in 500"),
    # no counts (the source had no data), yet the gate judges since the step started
    (GateResult("error_rate", Verdict.INCONCLUSIVE, None, "<= 1 at 95 %", dry_run=True),
     "error_rate = none (threshold <= 1 at 95 %, window since the step started, dry run)"
     ": inconclusive"),
    (GateResult("compare.error_rate", Verdict.FAIL, 4.875, "+0.5 pp", cohorts=COHORTS),
     "compare.error_rate = 4.875 (threshold +0.5 pp, window since the step started): fail"),
])
def test_the_evidence_line_names_what_the_gate_judged(gate: GateResult, line: str) -> None:
    assert evidence_line(gate, "5m") == line
