"""Evaluation semantics: the order of the rules, environment overrides, errors never raised."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from runner.evaluate import ArtifactError, FlagSet, evaluate
from runner.evaluate.artifact import artifact_document
from runner.evaluate.bucket import bucket, weight
from tests.evaluate.conftest import RepoWriter

MakeRepo = Callable[..., RepoWriter]


def _base(make_repo: MakeRepo) -> RepoWriter:
    return (make_repo()
            .flag("base", default_variant="off", percentage=50,
                  targeting={"users": ["vip"], "regions": ["us-west-2"]})
            .flag("child", default_variant="off", percentage=100, requires=["base"])
            .flag("grandchild", default_variant="off", percentage=100, requires=["child"])
            .flag("color", variants={"red": "#f00", "green": "#0f0", "blue": "#00f"},
                  default_variant="red", rollout_variant="green",
                  targeting={"rules": [
                      {"attribute": "plan", "in": ["pro", "team"], "variant": "blue"},
                      {"attribute": "email", "ends_with": "@example.com", "variant": "green"},
                      {"attribute": "country", "not_in": ["FR"], "variant": "red"},
                  ]},
                  percentage={"red": 20, "green": 30, "blue": 50})
            .flag("limit", variants={"low": 10, "high": 1000}, default_variant="low",
                  rollout_variant="high")
            .flag("off_flag", enabled=False, default_variant="off", percentage=100,
                  targeting={"users": ["vip"]}))


def _user_in(flag: str, pct: float, inside: bool) -> str:
    return next(f"u{i}" for i in range(10_000) if (bucket(flag, f"u{i}") < weight(pct)) == inside)


def test_order_targeting_then_split_then_default(make_repo: MakeRepo) -> None:
    repo = _base(make_repo).load()
    r = evaluate(repo, "base", {"targetingKey": "vip"})
    assert (r.value, r.variant, r.reason) == (True, "on", "TARGETING_MATCH")
    assert evaluate(repo, "base", {"targetingKey": "x", "region": "us-west-2"}).reason \
        == "TARGETING_MATCH"
    inside, outside = _user_in("base", 50, True), _user_in("base", 50, False)
    assert (evaluate(repo, "base", {"targetingKey": inside}).value, evaluate(
        repo, "base", {"targetingKey": inside}).reason) == (True, "SPLIT")
    assert evaluate(repo, "base", {"targetingKey": outside}).value is False
    r = evaluate(repo, "base", {})
    assert (r.value, r.reason) == (False, "DEFAULT") and "targeting key" in r.details
    r = evaluate(repo, "limit", {"targetingKey": "a"})
    assert (r.value, r.variant, r.reason) == (10, "low", "DEFAULT")


def test_attribute_rules_first_match_wins(make_repo: MakeRepo) -> None:
    repo = _base(make_repo).load()
    ctx: dict[str, Any] = {"targetingKey": "a", "plan": "pro", "email": "x@example.com"}
    assert evaluate(repo, "color", ctx).variant == "blue"
    assert evaluate(repo, "color", {**ctx, "plan": "free"}).variant == "green"
    r = evaluate(repo, "color", {"targetingKey": "a", "country": "DE"})
    assert (r.variant, r.reason) == ("red", "TARGETING_MATCH")
    # not_in needs the attribute present: without country, the split decides
    assert evaluate(repo, "color", {"targetingKey": "a", "country": "FR"}).reason == "SPLIT"
    assert evaluate(repo, "color", {"targetingKey": "a"}).reason == "SPLIT"


def test_multi_variant_split_shares(make_repo: MakeRepo) -> None:
    repo = _base(make_repo).load()
    n = 20_000
    counts = {"red": 0, "green": 0, "blue": 0}
    for i in range(n):
        counts[evaluate(repo, "color", {"targetingKey": f"user-{i}"}).variant] += 1
    for variant, share in (("red", 0.2), ("green", 0.3), ("blue", 0.5)):
        assert abs(counts[variant] / n - share) < 0.015, counts


def test_disabled_flag_serves_default_even_to_canaries(make_repo: MakeRepo) -> None:
    repo = _base(make_repo).load()
    r = evaluate(repo, "off_flag", {"targetingKey": "vip"})
    assert (r.value, r.variant, r.reason) == (False, "off", "DISABLED")


def test_prerequisite_chain_names_the_failing_prerequisite(make_repo: MakeRepo) -> None:
    repo = _base(make_repo).load()
    inside, outside = _user_in("base", 50, True), _user_in("base", 50, False)
    assert evaluate(repo, "grandchild", {"targetingKey": inside}).value is True
    assert evaluate(repo, "grandchild", {"targetingKey": "vip"}).value is True
    r = evaluate(repo, "grandchild", {"targetingKey": outside})
    assert (r.value, r.variant, r.reason) == (False, "off", "PREREQUISITE_FAILED")
    assert "'child'" in r.details
    assert "'base'" in evaluate(repo, "child", {"targetingKey": outside}).details


def test_kill_switch_in_environment_and_in_git(make_repo: MakeRepo) -> None:
    writer = _base(make_repo)
    repo = writer.load()
    for word in ("true", "1", "on", "YES"):
        r = evaluate(repo, "base", {"targetingKey": "vip"}, {"EMERGENCY_SHUTDOWN": word})
        assert (r.value, r.reason) == (False, "DISABLED")
    # the kill switch beats an override too
    r = evaluate(repo, "base", {}, {"EMERGENCY_SHUTDOWN": "true", "BASE": "true"})
    assert (r.value, r.reason) == (False, "DISABLED")
    assert evaluate(repo, "base", {"targetingKey": "vip"}, {"EMERGENCY_SHUTDOWN": "false"}).value
    writer.config("[tool.rollout]\nemergency_shutdown = true\n")
    killed = writer.load()
    r = evaluate(killed, "color", {"targetingKey": "a", "plan": "pro"})
    assert (r.variant, r.reason) == ("red", "DISABLED")


def test_environment_overrides(make_repo: MakeRepo, caplog: pytest.LogCaptureFixture) -> None:
    repo = _base(make_repo).load()
    outside = _user_in("base", 50, False)
    for word in ("true", "1", "on", "yes", "True"):
        r = evaluate(repo, "base", {"targetingKey": outside}, {"BASE": word})
        assert (r.value, r.reason) == (True, "STATIC") and "BASE" in r.details
    for word in ("false", "0", "off", "no"):
        assert evaluate(repo, "base", {"targetingKey": "vip"}, {"BASE": word}).value is False
    # an override beats enabled: false and failing prerequisites
    assert evaluate(repo, "off_flag", {}, {"OFF_FLAG": "true"}).value is True
    assert evaluate(repo, "child", {"targetingKey": outside}, {"CHILD": "on"}).value is True
    # ... and feeds the flags that require it
    assert evaluate(repo, "child", {"targetingKey": outside}, {"BASE": "yes"}).value is True
    # multi-variant flags take a variant name
    assert evaluate(repo, "color", {"targetingKey": "a"}, {"COLOR": "blue"}).value == "#00f"
    with caplog.at_level(logging.WARNING, logger="runner.evaluate"):
        for _ in range(3):
            r = evaluate(repo, "color", {"targetingKey": "a", "plan": "pro"}, {"COLOR": "purple"})
            assert r.variant == "blue"
            r = evaluate(repo, "base", {"targetingKey": "vip"}, {"BASE": "maybe"})
            assert (r.value, r.reason) == (True, "TARGETING_MATCH")
    warnings = [m for m in caplog.messages if "override ignored" in m]
    assert len(warnings) == 2, warnings  # once per bad value, however often evaluated
    assert any("COLOR='purple'" in m for m in warnings)


def test_unknown_flags_and_wrong_types_give_the_callers_default(make_repo: MakeRepo) -> None:
    repo = _base(make_repo).load()
    r = evaluate(repo, "no_such_flag", {"targetingKey": "a"}, default=True)
    assert (r.value, r.variant, r.reason, r.error_code) == (True, None, "ERROR", "FLAG_NOT_FOUND")
    r = evaluate(repo, "color", {"targetingKey": "a"}, default=False)
    assert (r.value, r.reason, r.error_code) == (False, "ERROR", "TYPE_MISMATCH")
    r = evaluate(repo, "limit", {}, default="x")
    assert (r.value, r.error_code) == ("x", "TYPE_MISMATCH")
    assert evaluate(repo, "limit", {}, default=5).value == 10
    # a context value that is not a string never breaks an evaluation
    for odd in (None, 42, ["a"], {"b": 1}, 3.5):
        r = evaluate(repo, "color", {"targetingKey": odd, "plan": odd, "email": odd,
                                     "region": odd})
        assert r.error_code is None and r.variant in ("red", "green", "blue")


def test_bucket_by_attribute_is_sticky_per_account(make_repo: MakeRepo) -> None:
    repo = make_repo().flag("per_account", percentage=50, bucket_by="account").load()
    by_account = {}
    for i in range(200):
        acct = f"acct-{i % 20}"
        v = evaluate(repo, "per_account", {"targetingKey": f"user-{i}", "account": acct}).value
        assert by_account.setdefault(acct, v) == v, "users of one account must agree"
    assert set(by_account.values()) == {True, False}
    r = evaluate(repo, "per_account", {"targetingKey": "u"})
    assert (r.value, r.reason) == (False, "DEFAULT") and "account" in r.details


def test_rollout_plan_percentage_comes_from_the_state_file(make_repo: MakeRepo) -> None:
    writer = make_repo().flag("rolled", risk="high", targeting={"users": ["canary"]})
    writer.plan("rolled")
    users = [f"user-{i}" for i in range(4000)]

    def share(repo: Any) -> float:
        return sum(evaluate(repo, "rolled", {"targetingKey": u}).value for u in users) / len(users)

    assert share(writer.load()) == 0  # no state yet: nobody but the canaries
    assert evaluate(writer.load(), "rolled", {"targetingKey": "canary"}).value is True
    writer.state("rolled", 25)
    repo = writer.load()
    in_at_25 = {u for u in users if evaluate(repo, "rolled", {"targetingKey": u}).value}
    assert abs(len(in_at_25) / len(users) - 0.25) < 0.03
    writer.state("rolled", 50, step=4)
    repo = writer.load()
    in_at_50 = {u for u in users if evaluate(repo, "rolled", {"targetingKey": u}).value}
    assert in_at_25 <= in_at_50 and abs(len(in_at_50) / len(users) - 0.5) < 0.03
    writer.state("rolled", 0, phase="rolled_back", step=0)
    assert share(writer.load()) == 0
    # a rolled back state serves nobody whatever its percentage says (validate refuses such
    # a file; the evaluator does not rely on it)
    import dataclasses
    from types import MappingProxyType

    from runner.model import Phase

    loaded = writer.load()
    odd = dataclasses.replace(loaded.states["rolled"], phase=Phase.ROLLED_BACK,
                              current_percentage=50.0, step=4)
    assert share(dataclasses.replace(loaded, states=MappingProxyType({"rolled": odd}))) == 0


def test_cycles_are_refused_before_evaluation(make_repo: MakeRepo) -> None:
    # a repository cannot hold a cycle (validate refuses it)...
    writer = make_repo().flag("a", requires=["b"]).flag("b", requires=["a"])
    from runner.load import check_repository

    problems = check_repository(writer.root).problems
    assert any("dependency cycle" in p.message for p in problems)
    # ...and an artifact edited into one is refused when loaded, never looped on
    ok = make_repo("ok").flag("a", requires=["b"]).flag("b").load()
    doc = artifact_document(ok, source_commit=None)
    doc["flags"]["b"]["requires"] = [{"flag": "a", "variant": "on"}]
    with pytest.raises(ArtifactError, match="cycle"):
        FlagSet.from_document(doc)
    doc["flags"]["b"]["requires"] = [{"flag": "ghost", "variant": "on"}]
    with pytest.raises(ArtifactError, match="unknown flag 'ghost'"):
        FlagSet.from_document(doc)
