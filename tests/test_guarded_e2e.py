"""Guarded rollouts end to end, at real time: an application built on the SDK's
``prometheus_client`` recorder serves two flags under rollout to simulated users, a real
Prometheus (Debian's) scrapes it, and ``rollout advance`` (real CLI processes, a real git
repository) reads the cohorts back.

* ``new_checkout`` is broken: 5 % of the requests served its rollout variant fail, against
  0.3 % for everyone else. At the 5 % step the global error rate is about 0.55 %, under the
  1 % gate, which passes; the comparison sees treatment against control and rolls it back,
  at that first step.
* ``new_search`` is healthy (0.3 % everywhere): the comparison passes and it advances.

Time. Everything runs at the real clock: each ``--now`` is the moment the command starts,
and Prometheus answers at that time from what it scraped. The comparison's counts are
cumulative since the step started (``step_window`` = now - the state's
``step_started_at``, whole seconds), so the test waits, after the advance to 5 %, until
Prometheus holds enough requests since then, and not for a fixed time, then looks again
every half second until both are decided: a step's wait of 1 s and a scrape every 500 ms
keep the whole story to seconds.
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from runner import FlagClient
from runner.telemetry.prometheus import RequestRecorder
from tests.conftest import git
from tests.prometheus_server import (
    COHORT_QUERIES,
    PrometheusServer,
    PrometheusUnavailable,
    running_prometheus,
)
from tests.runner.helpers import rollout, state, subjects, trailer

BROKEN, HEALTHY = "new_checkout", "new_search"
#: Percent of requests that fail: (served the rollout variant, served the default).
ERRORS = {BROKEN: (5.0, 0.3), HEALTHY: (0.3, 0.3)}
#: Share of the simulated requests that go to each flag's code path: the healthy one needs
#: more traffic (about 34,000 requests at 5 %) before its comparison can *pass*.
TRAFFIC = {BROKEN: 1, HEALTHY: 3}
RATE = 40_000  # simulated requests per second at most, all flags
REQUESTS_A_USER = 4  # of the broken flag's path; three times as many of the healthy one's
#: Requests served the rollout variant of the healthy flag since the 5 % step started before
#: the first look at 5 %: about where its comparison can first pass (later looks, with more
#: requests, pass the rest of the time); the broken one's is then certain.
HEALTHY_TREATMENT = 2_000

GLOBAL_ERROR_RATE = (
    '100 * (sum(increase(rollout_request_errors_total{flag="{{ flag }}"}[{{ window }}]))'
    ' or vector(0)) / sum(increase(rollout_requests_total{flag="{{ flag }}"}[{{ window }}]))')

#: The sample-ratio check on users (each counted once), as docs/guarded.md recommends.
ASSIGNED = ('sum(increase(rollout_assignments_total{flag="{{ flag }}",variant="{{ variant }}",'
            'reason="SPLIT"}[{{ step_window }}])) or vector(0)')


class Service:
    """The application: a FlagClient on the checkout (hot-reloaded, so it serves what the
    runner commits), a RequestRecorder on its own registry, ``/metrics`` on loopback, and a
    thread playing users' requests at :data:`RATE` per second."""

    def __init__(self, repo: Path):
        self.flags = FlagClient.from_repo(repo, env={}, reload_interval=0.05)
        self.registry = CollectorRegistry()
        self.recorder = RequestRecorder(self.registry)
        self.http, self._http_thread = start_http_server(0, addr="127.0.0.1",
                                                         registry=self.registry)
        self.target = f"127.0.0.1:{self.http.server_port}"
        self._stop = threading.Event()
        self.served = 0
        self.problem: BaseException | None = None
        self._thread = threading.Thread(target=self._play, name="users", daemon=True)
        self._thread.start()

    def handle(self, flag: str, user: str, rng: random.Random) -> None:
        """One request through the flagged code path, recorded under its variant."""
        with self.recorder.request(self.flags, flag, {"targetingKey": user}) as r:
            treatment, control = ERRORS[flag]
            if rng.random() * 100 < (treatment if r.value else control):
                r.fail()  # the application answered 500

    def _play(self) -> None:
        rng = random.Random(20261202)
        paths = [flag for flag, n in TRAFFIC.items() for _ in range(n)]
        batch = 120
        due = time.monotonic()
        try:
            while not self._stop.is_set():
                for _ in range(batch):
                    self.served += 1
                    # each user makes a few requests of each flag in a row (the
                    # sample-ratio check counts users, once each: rollout_assignments_total)
                    user = f"user-{self.served // (REQUESTS_A_USER * len(paths))}"
                    self.handle(paths[self.served % len(paths)], user, rng)
                due += batch / RATE
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                elif pause < -1.0:  # a slow machine: go on at its pace, do not burst
                    due = time.monotonic()
        except BaseException as e:  # surfaced by the test, never lost in a thread
            self.problem = e

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.http.shutdown()
        self.http.server_close()
        self.flags.close()


def _plan(flag: str, url: str) -> str:
    queries = {"error_rate": GLOBAL_ERROR_RATE, **COHORT_QUERIES, "cohort_assigned": ASSIGNED}
    queries.pop("cohort_slow")
    metrics = {"type": "prometheus", "url": url, "window": "10s", "timeout": "5s",
               "queries": queries}
    return (f"flag: {flag}\nstrategy: custom\nsteps: [0, 5, 25, 100]\nwait: 1s\n"
            "gates:\n  error_rate: 1.0\n"
            "compare:\n  error_rate: {max_increase: 0.5}\n  confidence: 0.95\n"
            "  min_requests: 200\n"
            f"metrics: {json.dumps(metrics)}\n")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(server: PrometheusServer, promql: str) -> float:
    result: Any = server.query(promql, time.time())["result"]
    return float(result[0]["value"][1]) if result else 0.0


def _wait_for(what: str, check: Any, service: Service, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert service.problem is None, f"the service failed: {service.problem!r}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _gates(repo: Path, rev: str) -> dict[str, str]:
    """The Rollout-Gate trailers of a commit: gate name -> 'value verdict (threshold)'."""
    lines = trailer(repo, "Rollout-Gate", rev).splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _commit(repo: Path, subject: str) -> str:
    """The commit with this subject (exactly one)."""
    found = [sha for sha, s in (line.split(" ", 1) for line in
                                git(repo, "log", "--format=%H %s").splitlines()) if s == subject]
    assert len(found) == 1, (subject, subjects(repo))
    return found[0]


def _advance(repo: Path, *expected: int) -> None:
    out = rollout(repo, "advance", "--now", _now())
    assert out.returncode in expected, out.stdout + out.stderr


def test_comparison_rolls_back_at_5_percent_while_the_global_gate_passes_and_healthy_advances(
        example_repo: Path, tmp_path: Path) -> None:
    repo = example_repo
    (repo / "rollouts" / "phase_4_deployment.yaml").unlink()
    for flag in (BROKEN, HEALTHY):
        (repo / "flags" / f"{flag}.yaml").write_text(
            f"key: {flag}\ndescription: {flag} for the guarded test\nowner: test-team\n"
            "risk: low\n")
    git(repo, "add", "-A", "flags", "rollouts")
    git(repo, "commit", "-q", "-m", "two new flags")

    service = Service(repo)
    try:
        with running_prometheus([], tmp_path / "prometheus", scrape=[service.target],
                                scrape_interval="500ms") as server:
            _story(repo, service, server)
    except PrometheusUnavailable as e:
        pytest.fail(f"real Prometheus needed: {e}", pytrace=False)


def _story(repo: Path, service: Service, server: PrometheusServer) -> None:
    for flag in (BROKEN, HEALTHY):
        (repo / "rollouts" / f"{flag}.yaml").write_text(_plan(flag, server.url))
    git(repo, "add", "-A", "rollouts")
    git(repo, "commit", "-q", "-m", "guarded rollout plans, compared on Prometheus")
    _wait_for("Prometheus to scrape the service a few times", lambda: _number(
        server, 'count_over_time(up{job="service"}[1m])') >= 3 and _number(
        server, 'min(up{job="service"})') == 1, service)

    _advance(repo, 0)  # both start, at 0 %
    time.sleep(1.1)  # the step's wait
    _advance(repo, 0)  # 0 % passes its gates: both go to 5 %
    for flag in (BROKEN, HEALTHY):
        s = state(repo, f"rollouts/{flag}.state.json")
        assert (s["phase"], s["current_percentage"]) == ("progressing", 5), s
    # the service follows the checkout: the rollout variant now reaches about 5 %
    _wait_for(f"{HEALTHY_TREATMENT} requests served the healthy rollout variant", lambda:
              _number(server, f'sum(rollout_requests_total{{flag="{HEALTHY}",variant="on",'
                              f'reason="SPLIT"}})') >= HEALTHY_TREATMENT, service)

    # Look again and again, as CI would, until both are decided: the broken one is rolled
    # back at 5 % (at the first look, with this much traffic, all but surely), the healthy
    # one advances once its interval clears the margin (inconclusive looks hold it, and the
    # sequence stays valid however often it is looked at).
    deadline = time.monotonic() + 90
    while True:
        _advance(repo, 0, 4)  # 4: a rollout was rolled back
        broken = state(repo, f"rollouts/{BROKEN}.state.json")
        healthy = state(repo, f"rollouts/{HEALTHY}.state.json")
        assert broken["current_percentage"] in (0, 5) and broken["phase"] != "paused", \
            broken["reason"]
        assert healthy["phase"] == "progressing", healthy["reason"]
        if broken["phase"] == "rolled_back" and healthy["current_percentage"] >= 25:
            break
        assert time.monotonic() < deadline, (broken["reason"], healthy["reason"])
        assert service.problem is None, repr(service.problem)
        time.sleep(0.5)

    assert "compare.error_rate" in broken["reason"], broken["reason"]
    rollback = _commit(repo, f"rollout({BROKEN}): rollback 5% → 0%")
    gates = _gates(repo, rollback)
    # the global gate could not see it: it passed, at about 0.55 %
    value, verdict, _ = gates["error_rate"].split(" ", 2)
    assert verdict == "pass" and 0.3 < float(value) < 1.0, gates
    assert gates["compare.error_rate"].split(" ")[1] == "fail", gates
    assert gates["compare.sample_ratio"].split(" ")[1] == "pass", gates
    compare = trailer(repo, "Rollout-Compare", rollback)
    assert compare.startswith("error_rate treatment ") and compare.endswith(": fail"), compare

    advanced = _commit(repo, f"rollout({HEALTHY}): 5% → 25%")
    gates = _gates(repo, advanced)
    assert gates["error_rate"].split(" ")[1] == "pass", gates
    assert gates["compare.error_rate"].split(" ")[1] == "pass", gates

    # and the application stops serving the broken variant as soon as it reloads: a
    # rolled back flag serves its default to everyone
    _wait_for("the service to serve the rollback", lambda: service.flags.evaluate(
        BROKEN, {"targetingKey": "user-1"}).reason == "DISABLED", service)
    assert not any(service.flags.is_enabled(BROKEN, {"targetingKey": f"user-{i}"})
                   for i in range(2000))
