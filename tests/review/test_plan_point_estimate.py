"""``rollout plan``'s risk for point-estimate rate gates that noise breaches, and the chance it
states, against scipy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from scipy import stats

from runner.gates.stats.rate_bound import false_breach_chance
from runner.model import Gate, RolloutPlan, Step, Strategy
from runner.review.plan import point_estimate_risks
from tests.review.helpers import commit
from tests.review.test_plan import kinds, plan_json

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


@pytest.mark.parametrize(("threshold", "minimum"), [(0.01, 100), (0.01, 1), (0.02, 50),
                                                    (0.01, 1000), (0.05, 20)])
def test_the_chance_is_the_worst_binomial_tail_from_the_minimum_up(threshold, minimum) -> None:
    healthy = threshold / 2
    chance, at = false_breach_chance(threshold, minimum, healthy)
    # brute force: every count from the minimum to far beyond the worst one
    tails = {n: stats.binom.sf(round(n * threshold * 1e6) // 10**6, n, healthy)
             for n in range(minimum, minimum + round(30 / threshold))}
    worst = max(tails, key=lambda n: tails[n])
    assert (chance, at) == (pytest.approx(tails[worst], rel=1e-9), worst)


def _plan(gates: tuple[Gate, ...], steps: tuple[Step, ...] | None = None) -> RolloutPlan:
    return RolloutPlan(name="f", flag="f", strategy=Strategy.SAFE,
                       steps=steps or tuple(Step(p) for p in (0, 5, 10, 25, 50, 75, 100)),
                       wait=300.0, gates=gates, metrics=None)


def test_point_estimate_risks_in_words() -> None:
    count = Gate("request_count", min=100.0)
    (said,) = point_estimate_risks(_plan((Gate("error_rate", max=1.0), count)))
    assert said == ("gates.error_rate <= 1 is judged on each look's rate alone, from as few as "
                    "100 requests (request_count): a healthy rollout at half the threshold "
                    "(0.5 %) breaches it by noise on 26 % of looks (at 199 requests); give it a "
                    "confidence (docs/metrics.md, Gates with a confidence) or raise request_count")
    assert point_estimate_risks(_plan((Gate("error_rate", max=1.0, confidence=0.95), count))) == []
    assert point_estimate_risks(_plan((Gate("error_rate", max=1.0, dry_run=True), count))) == []
    # enough requests to make noise unlikely: 2,000 at 1 % (0.27 % a look)
    assert point_estimate_risks(_plan((Gate("error_rate", max=1.0),
                                       Gate("request_count", min=2000.0)))) == []
    # no blocking minimum: any count
    for gates in ((Gate("error_rate", max=1.0),),
                  (Gate("error_rate", max=1.0), dataclasses.replace(count, dry_run=True))):
        (said,) = point_estimate_risks(_plan(gates))
        assert "from any number of requests (no blocking request_count minimum)" in said
        assert "on 39 % of looks (at 99 requests)" in said
    # a step's own gates are named by the step
    steps = (Step(0), Step(5, gates=(Gate("error_rate", max=2.0), Gate("request_count", min=100.0))),
             Step(100))
    (said,) = point_estimate_risks(_plan((Gate("error_rate", max=1.0, confidence=0.9), count), steps))
    assert said.startswith("steps[1].gates.error_rate <= 2 is judged")
    assert point_estimate_risks(_plan((), steps[:1])) == []


def test_rollout_plan_warns_about_a_noisy_point_estimate_and_a_confidence_removed(
        example_repo: Path) -> None:
    path = example_repo / "rollouts/phase_4_deployment.yaml"
    text = path.read_text()
    assert "error_rate: 1.0 " in text and "request_count: 100 " in text
    path.write_text(text.replace("error_rate: 1.0 ", "error_rate: 2   "))
    _, report = plan_json(example_repo)
    (risk,) = [r for r in report["risks"] if r["kind"] == "point_estimate_gate"]
    assert risk["level"] == "warning" and risk["flag"] == "phase_4_deployment"
    assert "gates.error_rate <= 2 is judged on each look's rate alone" in risk["message"]

    path.write_text(text.replace("error_rate: 1.0 ", "error_rate: {max: 1.0, confidence: 0.95} "))
    _, report = plan_json(example_repo)
    assert ("point_estimate_gate", "phase_4_deployment") not in kinds(report)
    assert ("gates_loosened", "phase_4_deployment") not in kinds(report)
    commit(example_repo, "a confidence")

    path.write_text(text)
    _, report = plan_json(example_repo)
    assert ("point_estimate_gate", "phase_4_deployment") in kinds(report)
    (risk,) = [r for r in report["risks"] if r["kind"] == "gates_loosened"]
    assert "gates.error_rate confidence 0.95 → none (each look's rate alone)" in risk["message"]
