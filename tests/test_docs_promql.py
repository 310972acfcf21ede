"""Every PromQL example of the docs returns data from the runner's own recorder.

An application on :class:`runner.telemetry.prometheus.RequestRecorder` serves requests of a
flag split 50/50 (5 % fail) and of a busier one that never fails, a real Prometheus
(Debian's, on loopback) scrapes it, and each PromQL example of README.md and docs/*.md,
rendered with sample values of its Jinja2 variables, is asked of that Prometheus: each must
answer one finite number, as a gate needs, and an ``error_rate`` the flag's own (its errors
over its requests, in percent).

Where the examples are (the convention the docs keep, so that this test finds them all):

* the values of a ``queries:`` mapping in a fenced ```` ```yaml ```` block (a plan's or the
  repository's ``metrics:``);
* a custom gate's ``query:`` in a ```` ```yaml ```` block whose source is
  ``type: prometheus``;
* a top-level ``cohort_*:`` key of a ```` ```yaml ```` snippet (docs/guarded.md shows single
  cohort queries so);
* a whole fenced ```` ```promql ```` block.

A fenced line calling ``rate(``, ``increase(`` or ``histogram_quantile(`` that none of these
holds fails the test: an example outside the convention would go unchecked.
"""

from __future__ import annotations

import math
import re
import textwrap
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from runner import FlagClient
from runner.gates.templates import render
from runner.telemetry.prometheus import RequestRecorder
from tests.conftest import PROJECT, git
from tests.prometheus_server import PrometheusServer, PrometheusUnavailable, running_prometheus

DOCS = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
FLAG = "docs_example"
#: The sample values of the templates' variables (docs/metrics.md, docs/guarded.md).
WINDOW = "10s"
VARIABLES: dict[str, object] = {
    "treatment_variant": "on", "control_variant": "off", "step_window": "60s",
    "objective_ms": 500, "objective_seconds": "0.5",
}
COHORTS = {"treatment": "on", "control": "off"}
#: The user counts of a comparison of users (docs/guarded.md), each nonzero in the service.
USER_COUNTS = {"cohort_users", "cohort_users_with_errors", "cohort_users_slow"}
FENCE = re.compile(r"^([ \t]*)```(\w*)[ \t]*\n(.*?)^\1```", re.M | re.S)
PROMQL_CALL = re.compile(r"\b(rate|increase|histogram_quantile)\(")


def _blocks(lang: str) -> Iterator[tuple[Path, str]]:
    for doc in DOCS:
        for m in FENCE.finditer(doc.read_text()):
            if m.group(2) == lang:
                yield doc, textwrap.dedent(m.group(3))


def _walk(node: yaml.Node, prometheus: bool, top: bool) -> Iterator[tuple[str, str]]:
    if not isinstance(node, yaml.MappingNode):
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                yield from _walk(item, prometheus, False)
        return
    for key, value in node.value:
        name = key.value
        if name == "queries" and isinstance(value, yaml.MappingNode):
            yield from ((k.value, v.value) for k, v in value.value
                        if isinstance(v, yaml.ScalarNode))
        elif name == "query" and prometheus and isinstance(value, yaml.ScalarNode):
            yield "custom query", value.value
        elif top and name.startswith("cohort_") and isinstance(value, yaml.ScalarNode):
            yield name, value.value
        else:
            yield from _walk(value, prometheus, False)


def examples() -> list[tuple[str, str]]:
    """(where, PromQL template) of every example the convention marks."""
    found: list[tuple[str, str]] = []
    for doc, text in _blocks("yaml"):
        prometheus = re.search(r"^\s*type: prometheus\b", text, re.M) is not None
        for node in yaml.compose_all(text):
            if node is not None:
                found += [(f"{doc.name} {name}", q) for name, q in _walk(node, prometheus, True)]
    for doc, text in _blocks("toml"):  # [tool.rollout.metrics.queries] tables
        found += [(f"{doc.name} {name}", q) for name, q in _toml_queries(tomllib.loads(text))]
    found += [(f"{doc.name} promql block", text) for doc, text in _blocks("promql")]
    return found


def _toml_queries(table: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in table.items():
        if key == "queries" and isinstance(value, dict):
            yield from ((k, v) for k, v in value.items() if isinstance(v, str))
        elif isinstance(value, dict):
            yield from _toml_queries(value)


def test_every_promql_line_of_the_docs_is_an_example_this_test_runs() -> None:
    folded = [" ".join(q.split()) for _, q in examples()]
    unmarked = [f"{doc.name}: {line.strip()}" for doc in DOCS
                for m in FENCE.finditer(doc.read_text())
                for line in m.group(3).splitlines()
                if PROMQL_CALL.search(line)
                and not any(_query_part(line) in q for q in folded)]
    assert unmarked == []
    # the examples the docs hold today: README, metrics.md, validation.md, guarded.md
    names = {where.split()[0] for where, _ in examples()}
    assert {"README.md", "metrics.md", "validation.md", "guarded.md"} <= names


def _query_part(line: str) -> str:
    """A fenced line's PromQL: after ``key:`` (YAML) or ``key =`` (TOML), without quotes."""
    text = line.strip()
    text = re.sub(r"^[\w.-]+(:|\s*=)\s*(>-?|\|-?)?\s*", "", text)
    return " ".join(text.strip("'\"").split())


#: A second code path under another flag, three times as busy and never failing: a query
#: that divides the flag's errors by every request (not the flag's) reads a quarter of
#: :data:`ERROR_PERCENT`.
OTHER = "docs_other_path"
ERROR_PERCENT = 5.0


class Service:
    """An application serving the flag 50/50 on the recorder, :data:`ERROR_PERCENT` of its
    requests failing, and :data:`OTHER`'s requests, with ``/metrics`` on loopback, until
    stopped."""

    def __init__(self, repo: Path):
        self.flags = FlagClient.from_repo(repo, env={})
        self.registry = CollectorRegistry()
        self.recorder = RequestRecorder(self.registry)
        self.http, _ = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.target = f"127.0.0.1:{self.http.server_port}"
        self.served = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, daemon=True)
        self._thread.start()

    def _play(self) -> None:
        while not self._stop.is_set():
            for _ in range(50):
                self.served += 1
                user = {"targetingKey": f"user-{self.served}"}
                flag = FLAG if self.served % 4 == 0 else OTHER
                with self.recorder.request(self.flags, flag, user) as r:
                    # every 20th request of the flag fails: exactly ERROR_PERCENT, however
                    # few requests a loaded machine lets through
                    if flag == FLAG and self.served % int(4 * 100 / ERROR_PERCENT) == 0:
                        r.fail()
                if flag == FLAG and self.served % 40 == 0:  # a second request, a slow one
                    self.recorder.observe_resolution(FLAG, r.resolution, 0.7,
                                                     user=user["targetingKey"])
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.http.shutdown()
        self.http.server_close()
        self.flags.close()


def _answer(server: PrometheusServer, promql: str) -> Any:
    return server.query(promql, time.time())["result"]


def _number(server: PrometheusServer, promql: str) -> float:
    result = _answer(server, promql)
    return float(result[0]["value"][1]) if result else 0.0


def test_every_promql_example_of_the_docs_returns_data_from_the_recorder(
        example_repo: Path, tmp_path: Path) -> None:
    for key in (FLAG, OTHER):
        (example_repo / "flags" / f"{key}.yaml").write_text(
            f"key: {key}\ndescription: the docs' examples\nowner: docs\nrisk: low\n"
            "percentage: 50\n")
    git(example_repo, "add", "-A")
    git(example_repo, "commit", "-q", "-m", "a flag split 50/50")
    found = examples()
    assert len(found) >= 15, found
    service = Service(example_repo)
    try:
        with running_prometheus([], tmp_path / "prometheus", scrape=[service.target],
                                scrape_interval="500ms") as server:
            deadline = time.monotonic() + 90
            # a few scrapes in the window, and requests of the flag in it (a loaded machine
            # scrapes and serves slower: wait for it, never for a fixed time)
            while not (_number(server, f'count_over_time(up{{job="service"}}[{WINDOW}])') >= 4
                       and _number(server, f'sum(increase(rollout_requests_total'
                                           f'{{flag="{FLAG}"}}[{WINDOW}]))') >= 200):
                assert time.monotonic() < deadline, "Prometheus did not scrape the service"
                time.sleep(0.2)
            problems = []
            for where, template in found:
                for cohort, variant in COHORTS.items():
                    promql = render(template, what=where, flag=FLAG, window=WINDOW,
                                    percentage=50, extra={**VARIABLES, "variant": variant,
                                                          "cohort": cohort})
                    result = _answer(server, promql)
                    values = [float(r["value"][1]) for r in result]
                    if len(values) != 1 or not math.isfinite(values[0]):
                        problems.append(f"{where} ({cohort}): {promql} -> {result}")
                    elif where.endswith(" error_rate") and not (
                            0.5 * ERROR_PERCENT < values[0] < 2 * ERROR_PERCENT):
                        # the flag's errors over the flag's requests, in percent
                        problems.append(f"{where}: {values[0]:.2f} %, the flag fails "
                                        f"{ERROR_PERCENT} % of its requests: {promql}")
                    elif where.split()[-1] in USER_COUNTS and values[0] <= 0:
                        # users, users with errors, users slower than 0.5 s: the service has
                        # each in both cohorts, so a name the recorder does not emit (read
                        # as 0 through "or vector(0)") shows here
                        problems.append(f"{where} ({cohort}): no users counted: {promql}")
            assert problems == []
            assert {where.split()[-1] for where, _ in found} >= USER_COUNTS
    except PrometheusUnavailable as e:
        pytest.fail(f"real Prometheus needed: {e}", pytrace=False)
    finally:
        service.stop()
