"""Users as the unit of a comparison (``compare: {unit: users}``): the share of each cohort's
users who saw an error / a slow request, read from the cohorts' user counts; and a seeded
simulation of clustered errors and latency, where requests are not independent."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from runner.gates.assess import UnusableCounts, cohort_counts
from runner.gates.compare import CohortCounts, compare_cohorts
from runner.gates.readings import cohort_readings_from_document, counts_needed
from runner.model import Comparison, MetricComparison, Verdict

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
ERRORS = MetricComparison("error_rate", 0.5)
SLOW = MetricComparison("slow_rate", 1.0, objective_ms=500)
USERS = Comparison(metrics=(ERRORS, SLOW), confidence=0.95, min_requests=500, unit="users")
REQUESTS = Comparison(metrics=(ERRORS, SLOW), confidence=0.95, min_requests=500)


def run(spec: Comparison, t: CohortCounts, c: CohortCounts, percentage: float = 5):
    return {r.name: r for r in compare_cohorts(spec, t, c, percentage=percentage, looks=5,
                                               now=NOW)}


def test_users_compare_the_share_of_users_with_errors() -> None:
    # 2,000 treatment users of whom 120 saw an error (6 %) against 1 % of control's users
    t = CohortCounts(40000, 400, 100, users=2000, users_with_errors=120, users_slow=40)
    c = CohortCounts(760000, 1520, 1900, users=38000, users_with_errors=380, users_slow=760)
    r = run(USERS, t, c)
    err = r["compare.error_rate"]
    assert err.verdict is Verdict.FAIL, err.detail
    assert err.value == pytest.approx(5.0)
    assert err.detail.startswith("treatment 6 % of users (120/2,000) vs control 1 % of users "
                                 "(380/38,000): +5 pp")
    assert err.cohorts is not None
    assert (err.cohorts.treatment_requests, err.cohorts.control_requests) == (2000, 38000)
    slow = r["compare.slow_rate"]  # 2 % of users slow on both sides: 2,000 users cannot show
    assert slow.verdict is Verdict.INCONCLUSIVE  # it within +1 pp yet (±1.38 pp)
    assert slow.value == pytest.approx(0.0)
    # the same requests as a comparison of requests: 1 % against 0.2 %
    assert run(REQUESTS, t, c)["compare.error_rate"].value == pytest.approx(0.8)


def test_min_requests_counts_users_then() -> None:
    t = CohortCounts(40000, 400, 100, users=400, users_with_errors=4, users_slow=4)
    c = CohortCounts(760000, 1520, 1900, users=7600, users_with_errors=76, users_slow=76)
    r = run(USERS, t, c)["compare.error_rate"]
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.detail.startswith("too few users: treatment has 400, fewer than the minimum 500")


def test_a_comparison_of_users_without_user_counts_is_an_error() -> None:
    t, c = CohortCounts(40000, 400, 100), CohortCounts(760000, 1520, 1900, users=38000)
    r = run(USERS, t, c)["compare.error_rate"]
    assert r.verdict is Verdict.ERROR
    assert r.detail == ("the source gave no user counts (treatment users, treatment "
                        "users_with_errors, control users_with_errors) for a comparison of users")


def test_more_users_with_errors_than_users_is_an_error() -> None:
    t = CohortCounts(4000, 400, 100, users=2000, users_with_errors=2001, users_slow=4)
    c = CohortCounts(76000, 1520, 1900, users=38000, users_with_errors=76, users_slow=76)
    r = run(USERS, t, c)["compare.error_rate"]
    assert r.verdict is Verdict.ERROR
    assert r.detail == ("unusable counts: treatment has 2001 users with errors out of only "
                        "2000 users")


def test_the_counts_a_comparison_of_users_needs() -> None:
    assert counts_needed(USERS) == ("requests", "users", "users_with_errors", "users_slow")
    assert counts_needed(REQUESTS) == ("requests", "errors", "slow")
    assert counts_needed(Comparison(metrics=(SLOW,), unit="users")) == (
        "requests", "users", "users_slow")


def test_the_user_counts_of_a_metrics_document() -> None:
    doc = {"cohorts": {
        "treatment": {"requests": 4000, "users": 200, "users_with_errors": 12, "users_slow": 3},
        "control": {"requests": 76000, "users": 3800, "users_with_errors": 38,
                    "users_slow": "many"}}}
    readings = cohort_readings_from_document(doc, USERS, "metrics.json")
    with pytest.raises(UnusableCounts) as bad:
        cohort_counts(USERS, readings)
    assert bad.value.verdict is Verdict.ERROR
    assert "metrics.json field cohorts.control.users_slow is not a number: 'many'" in bad.value.detail
    doc["cohorts"]["control"]["users_slow"] = 76  # type: ignore[index]
    t, c = cohort_counts(USERS, cohort_readings_from_document(doc, USERS, "metrics.json"))
    assert (t.users, t.users_with_errors, t.users_slow) == (200, 12, 3)
    assert (c.users, c.users_with_errors, c.users_slow) == (3800, 38, 76)
    # a comparison of requests reads users when the document has them (the split's unit)
    # and needs none of them
    t, c = cohort_counts(REQUESTS, cohort_readings_from_document(
        {"cohorts": {"treatment": {"requests": 10, "errors": 0, "slow": 0, "users": 4},
                     "control": {"requests": 90, "errors": 1, "slow": 1}}}, REQUESTS, "m"))
    assert (t.users, c.users, t.users_with_errors) == (4, None, None)
    # users without their events is no data for a comparison of users
    del doc["cohorts"]["treatment"]["users_with_errors"]  # type: ignore[attr-defined]
    with pytest.raises(UnusableCounts) as missing:
        cohort_counts(USERS, cohort_readings_from_document(doc, USERS, "m"))
    assert missing.value.verdict is Verdict.INCONCLUSIVE
    assert "treatment users_with_errors" in missing.value.detail
    # more users slow than users: the counts are inconsistent
    doc["cohorts"]["treatment"].update(users_with_errors=1, users_slow=201)  # type: ignore[attr-defined]
    with pytest.raises(UnusableCounts, match="treatment has 201 users_slow out of only 200 users"):
        cohort_counts(USERS, cohort_readings_from_document(doc, USERS, "m"))


# --- clustered errors and latency ------------------------------------------------------------


def _clustered_false_fails(spec: Comparison, *, metric: str, runs: int, looks: int,
                           users_per_look: int, per_user: int, prone: float, p_prone: float,
                           p_rest: float, seed: int) -> float:
    """Seeded: one 5 % step; each look ``users_per_look`` new users making ``per_user``
    requests each; a share ``prone`` of the users fail (or are slow) on ``p_prone`` of their
    requests, the rest on ``p_rest``, the same in both cohorts. The share of runs with a
    ``fail`` of ``metric`` at any look (cumulative counts). Request counts and user counts
    are drawn from the same model (separately: each is exact in distribution)."""
    rng = np.random.default_rng(seed)
    name = f"compare.{metric}"
    size = (runs, looks)
    u_t = rng.binomial(users_per_look, 0.05, size=size)
    cohorts = []
    for users in (u_t, users_per_look - u_t):
        n_prone = rng.binomial(users, prone)
        events = (rng.binomial(n_prone * per_user, p_prone)
                  + rng.binomial((users - n_prone) * per_user, p_rest))
        n_prone_u = rng.binomial(users, prone)  # the user counts' own draw
        users_hit = (rng.binomial(n_prone_u, 1 - (1 - p_prone) ** per_user)
                     + rng.binomial(users - n_prone_u, 1 - (1 - p_rest) ** per_user))
        cohorts.append([np.cumsum(a, axis=1).astype(float).tolist()
                        for a in (users * per_user, events, users, users_hit)])
    failed = 0
    for i in range(runs):
        for k in range(looks):
            one = []
            for requests, events, users, hit in cohorts:
                one.append(CohortCounts(requests[i][k], events[i][k], events[i][k],
                                        users=users[i][k], users_with_errors=hit[i][k],
                                        users_slow=hit[i][k]))
            r = compare_cohorts(spec, one[0], one[1], percentage=5, looks=5, now=NOW)
            if next(x for x in r if x.name == name).verdict is Verdict.FAIL:
                failed += 1
                break
    return failed / runs


@pytest.mark.parametrize(("metric", "prone", "p_prone", "p_rest"), [
    ("slow_rate", 0.2, 0.17, 0.02),   # issue 18: 20 % of users slow on 17 %, the rest on 2 %
    ("error_rate", 0.02, 0.12, 0.001),  # errors clustered on 2 % of users (0.34 % of requests)
])
def test_clustered_outcomes_do_not_fail_falsely_with_users_as_the_unit(
        metric: str, prone: float, p_prone: float, p_rest: float) -> None:
    """The worst case at a margin of 0: no change between the cohorts. 500 users every five
    minutes, 20 requests each, two hours (24 looks). Each bound is at 99.5 % (the safe plan,
    two metrics, 95 %): a false fail may happen in at most 0.5 % of runs."""
    margins = (MetricComparison(metric, 0.0, objective_ms=500 if metric == "slow_rate" else None),)
    args = {"metric": metric, "runs": 400, "looks": 24, "users_per_look": 500, "per_user": 20,
            "prone": prone, "p_prone": p_prone, "p_rest": p_rest, "seed": 18}
    by_users = _clustered_false_fails(Comparison(metrics=margins, unit="users"), **args)
    assert by_users <= 0.005
    # what the unit is for: requests are not independent here, and the same test on request
    # counts fails falsely beyond the budget (5 % and 1.6 % of runs over 1,000 seeds)
    assert _clustered_false_fails(Comparison(metrics=margins), **args) > 0.005


def test_a_feature_failing_5_percent_of_requests_is_caught_at_the_first_step() -> None:
    """The broken feature of docs/guarded.md as users see it: 5.3 % of treatment's requests
    fail against 0.3 %, 20 requests a user, so 66 % of treatment's users see an error against
    5.8 % of control's; a margin of +5 points of users. 500 users every five minutes at 5 %:
    caught at the first look with enough users (20 minutes), every run."""
    rng = np.random.default_rng(5)
    p_t, p_c = 1 - (1 - 0.053) ** 20, 1 - (1 - 0.003) ** 20
    spec = Comparison(metrics=(MetricComparison("error_rate", 5.0),), unit="users",
                      min_requests=50)
    caught = []
    for _run in range(50):
        tu = cu = th = ch = 0.0
        for look in range(12):
            t_new = float(rng.binomial(500, 0.05))
            tu, cu = tu + t_new, cu + 500 - t_new
            th += rng.binomial(int(t_new), p_t)
            ch += rng.binomial(int(500 - t_new), p_c)
            t = CohortCounts(20 * tu, th, 0, users=tu, users_with_errors=th, users_slow=0)
            c = CohortCounts(20 * cu, ch, 0, users=cu, users_with_errors=ch, users_slow=0)
            if run(spec, t, c)["compare.error_rate"].verdict is Verdict.FAIL:
                caught.append(look)
                break
    assert len(caught) == 50
    assert max(caught) <= 3, caught
