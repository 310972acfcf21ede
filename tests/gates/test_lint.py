"""Static checks of metric sources: what would make every evaluation an error."""

from __future__ import annotations

from runner.gates import source_problems
from runner.model import Gate

from .helpers import SAFE_GATES, metrics, plan


def test_a_correct_prometheus_plan_has_no_problems() -> None:
    from tests.prometheus_server import QUERIES

    p = plan("f", metrics("prometheus", url="http://127.0.0.1:9090", queries=QUERIES))
    assert source_problems(p) == ()


def test_prometheus_mistakes_are_named() -> None:
    queries = {"error_rate": 'rate(x{flag="{{ flg }}"}[{{ window }}])',
               "request_count": "{{ ''.__class__ }}"}
    gates = (*SAFE_GATES, Gate("custom_one", max=1, query="sum(y{p='{{ percentage }}'}"))
    problems = source_problems(plan("f", metrics("prometheus", url="http://x", queries=queries), gates))
    assert problems == (
        "metrics.queries.p95_latency_ms: no PromQL for gate p95_latency_ms",
        "metrics.queries.error_rate: template uses an undefined value: 'flg' is undefined",
        "metrics.queries.request_count: template rejected by the sandbox: access to attribute "
        "'__class__' of 'str' object is unsafe.",
    )  # the custom query renders fine; PromQL syntax is Prometheus's to judge


def test_file_and_command_and_missing_sources() -> None:
    assert source_problems(plan("f", metrics("file", path="m/{{ flag }}.json"))) == ()
    assert source_problems(plan("f", metrics("file", path="m/{{ flag }.json"))) == (
        "metrics.path: template syntax error (line 1): unexpected '}'",)
    assert source_problems(plan("f", metrics("command", command=["x", "{{ nope }}"]))) == (
        "metrics.command[1]: template uses an undefined value: 'nope' is undefined",)
    assert "no metric source" in source_problems(plan("f", None))[0]
    assert source_problems(plan("f", None, gates=())) == ()
    assert source_problems(plan("f", metrics("file", path="m.json", window="five"))) == (
        "metrics.window: 'five' is not a duration such as 300s, 5m, 1h30m or 2d",)


def _cohort_problems(**queries: str) -> tuple[str, ...]:
    import dataclasses

    from runner.model import Comparison, MetricComparison
    from tests.prometheus_server import COHORT_QUERIES

    spec = Comparison((MetricComparison("error_rate", 0.5),))
    all_queries = {k: v for k, v in COHORT_QUERIES.items() if k != "cohort_slow"}
    p = dataclasses.replace(plan("f", metrics("prometheus", url="http://p",
                                              queries={**all_queries, **queries}), ()),
                            compare=spec)
    return source_problems(p)


def test_a_cohort_query_selecting_its_cohort_only_in_a_comment_is_reported() -> None:
    assert _cohort_problems() == ()
    commented = {
        "plain": 'sum(rollout_requests_total{flag="{{ flag }}"}) # variant="{{ variant }}"',
        "own line": 'sum(rollout_requests_total{flag="{{ flag }}"})\n# {{ variant }}\n',
        "mid query": 'sum(rollout_requests_total{flag="{{ flag }}" # ,variant="{{ variant }}"\n})',
        "cohort": "sum(x{flag=\"{{ flag }}\"}) # for the {{ cohort }}",
    }
    for case, query in commented.items():
        got = _cohort_problems(cohort_errors=query)
        assert got == ("metrics.queries.cohort_errors: the query selects its cohort only "
                       "inside a PromQL comment (# to the end of the line), so it is the same "
                       "for both cohorts: use {{ variant }} in a label matcher",), case
    # a "#" inside a string is no comment: the variant selects the cohort
    in_string = 'sum(x{flag="{{ flag }}",path="/a#b",variant="{{ variant }}"}) # note'
    assert _cohort_problems(cohort_errors=in_string) == ()
    assert _cohort_problems(cohort_errors="sum(x{p='#',v=`#`,variant=\"{{ variant }}\"})") == ()


def test_a_cohort_query_selecting_the_other_cohorts_variant_is_reported() -> None:
    control_for_treatment = {
        "control_variant": 'sum(x{flag="{{ flag }}",variant="{{ control_variant }}",'
                           'cohort="{{ cohort }}"})',
        "both in a regex": 'sum(x{variant=~"{{ variant }}|{{ control_variant }}"})',
        "branch": '{% if cohort == "treatment" %}sum(x{variant="{{ control_variant }}"})'
                  '{% else %}sum(x{variant="{{ variant }}",c="1"}){% endif %}',
    }
    for case, query in control_for_treatment.items():
        got = _cohort_problems(cohort_requests=query)
        assert ("metrics.queries.cohort_requests: the treatment query selects the control "
                "variant ({{ control_variant }} in a label matcher): use {{ variant }}, the "
                "variant of the cohort being read") in got, (case, got)
    swapped = 'sum(x{variant="{% if cohort == "control" %}{{ treatment_variant }}' \
              '{% else %}{{ control_variant }}{% endif %}"})'
    got = _cohort_problems(cohort_requests=swapped)
    assert len(got) == 2 and "the control query selects the treatment variant" in got[1], got
    # excluding the other cohort's variant is a selection of one's own: not reported
    excluding = 'sum(x{variant!="{{ treatment_variant }}",c="{{ cohort }}"})'
    assert _cohort_problems(cohort_requests=excluding) == ()
