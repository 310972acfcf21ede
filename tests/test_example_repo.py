"""This repository is its own working example: its flags and plans must validate."""

from pathlib import Path

import pytest

from tests.conftest import PROJECT, run_cli

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


def test_own_example_repository_is_valid() -> None:
    out = run_cli(["validate"], cwd=PROJECT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == "✓ 9 flags, 1 plan valid\n"


def test_example_holds_the_reference_flags(example_repo: Path) -> None:
    from runner.load import load_repository

    repo = load_repository(example_repo)
    assert set(repo.flags) == {
        "orchestration_enabled", "security_hardening_enabled", "llm_integration_enabled",
        "aatc_system_enabled", "reward_learning_enabled", "error_handling_enabled",
        "otel_enabled", "performance_optimizations_enabled", "phase_4_deployment",
    }
    assert {r.flag for r in repo.flags["llm_integration_enabled"].requires} == {"phase_4_deployment"}
    assert {r.flag for r in repo.flags["aatc_system_enabled"].requires} == {"phase_4_deployment"}
    plan = repo.plans["phase_4_deployment"]
    assert plan.percentages == (0, 5, 10, 25, 50, 75, 100)
    assert plan.wait == 300
    gates = {g.name: g for g in plan.gates}
    assert gates["error_rate"].max == 1.0 and gates["p95_latency_ms"].max == 500
