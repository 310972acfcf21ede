"""A rolled back rollout serves its default variant to everyone, canaries included, by every
path an application or a person reads flags through; a paused one keeps its percentage and
its canaries."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from runner import FlagClient
from tests.conftest import run_cli
from tests.evaluate.conftest import RepoWriter

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


CANARY = {"targetingKey": "canary-user-1"}
CANARY_REGION = {"targetingKey": "someone", "region": "us-west-2"}


def _repo(make_repo: Callable[..., RepoWriter], phase: str, percentage: float,
          step: int) -> RepoWriter:
    w = make_repo()
    w.flag("checkout", risk="high",
           targeting={"users": ["canary-user-1"], "regions": ["us-west-2"]})
    w.plan("checkout")
    w.state("checkout", percentage, phase=phase, step=step)
    w.flag("checkout_v2", percentage=100, requires=["checkout"])
    return w


def _clients(w: RepoWriter, tmp_path: Path) -> dict[str, FlagClient]:
    out = tmp_path / "flags.resolved.json"
    built = run_cli(["build", "--out", str(out)], cwd=w.root)
    assert built.returncode == 0, built.stderr
    return {"from_repo": FlagClient.from_repo(w.root, env={}),
            "from_file": FlagClient.from_file(out, env={})}


def test_rolled_back_flag_serves_default_to_canaries_in_sdk_and_artifact(
        make_repo: Callable[..., RepoWriter], tmp_path: Path) -> None:
    w = _repo(make_repo, "rolled_back", 0, 0)
    for name, client in _clients(w, tmp_path).items():
        for ctx in (CANARY, CANARY_REGION, {"targetingKey": "anyone"}):
            r = client.evaluate("checkout", ctx)
            assert (r.value, r.variant, r.reason) == (False, "off", "DISABLED"), (name, ctx, r)
            assert "rolled back" in r.details, (name, r)
            dep = client.evaluate("checkout_v2", ctx)
            assert (dep.value, dep.reason) == (False, "PREREQUISITE_FAILED"), (name, ctx, dep)
            assert "'checkout'" in dep.details
    artifact = json.loads((tmp_path / "flags.resolved.json").read_text())
    assert artifact["flags"]["checkout"]["rollout"]["phase"] == "rolled_back"
    assert artifact["flags"]["checkout"]["split"] == []


def test_an_environment_override_still_wins_over_a_rollback(
        make_repo: Callable[..., RepoWriter]) -> None:
    w = _repo(make_repo, "rolled_back", 0, 0)
    client = FlagClient.from_repo(w.root, env={"CHECKOUT": "true"})
    r = client.evaluate("checkout", CANARY)
    assert (r.value, r.reason) == (True, "STATIC")


@pytest.mark.parametrize("source", ["repo", "file"])
def test_rollout_eval_says_rolled_back(make_repo: Callable[..., RepoWriter], tmp_path: Path,
                                       source: str) -> None:
    w = _repo(make_repo, "rolled_back", 0, 0)
    where = ["--repo", str(w.root)]
    if source == "file":
        _clients(w, tmp_path)
        where = ["--file", str(tmp_path / "flags.resolved.json")]
    out = run_cli(["eval", "checkout", "--key", "canary-user-1", "--format", "json", *where],
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert (doc["value"], doc["variant"], doc["reason"]) == (False, "off", "DISABLED")
    assert "rolled back" in doc["details"]
    text = run_cli(["eval", "checkout", "--attr", "region=us-west-2", "--key", "x", *where],
                   cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "reason DISABLED (rolled back" in text.stdout


def test_paused_rollout_keeps_its_percentage_and_canaries(
        make_repo: Callable[..., RepoWriter], tmp_path: Path) -> None:
    w = _repo(make_repo, "paused", 25, 3)
    for name, client in _clients(w, tmp_path).items():
        assert client.evaluate("checkout", CANARY)[1:3] == ("on", "TARGETING_MATCH"), name
        assert client.evaluate("checkout", CANARY_REGION)[1:3] == ("on", "TARGETING_MATCH")
        served = [client.evaluate("checkout", {"targetingKey": f"u{i}"}) for i in range(4000)]
        share = sum(r.value for r in served) / len(served)
        assert 0.22 < share < 0.28, (name, share)
        assert {r.reason for r in served} == {"SPLIT"}


def test_openfeature_provider_reports_the_rollback(make_repo: Callable[..., RepoWriter]) -> None:
    import uuid

    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    from runner.openfeature import RolloutProvider

    w = _repo(make_repo, "rolled_back", 0, 0)
    domain = f"rolled-back-{uuid.uuid4()}"
    api.set_provider(RolloutProvider(FlagClient.from_repo(w.root, env={})), domain=domain)
    details = api.get_client(domain).get_boolean_details(
        "checkout", True, EvaluationContext("canary-user-1", {"region": "us-west-2"}))
    assert (details.value, details.variant, details.reason) == (False, "off", "DISABLED")
    assert "rolled back" in str(details.flag_metadata.get("details"))
