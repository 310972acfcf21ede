"""``rollout simulate`` end to end: a recorded range in which a regression appears, replayed
through the real CLI over the real Prometheus the tests start (backfilled with promtool) and
over the same recording as a JSONL timeline; it names the look at which the runner would
have rolled back, and writes nothing.

The recording: six hours of a flag's traffic (20,000 requests a minute), each request
labelled with the variant it was served, split as the plan under test moves (0 % for an
hour from the range's start, then 5 %, 25 %, 50 %, an hour each: what the runner would have
served). Errors are 0.3 % everywhere until the regression's onset, after which requests
served the rollout variant fail more. The range ends at the last whole 5 minutes of the
clock: Prometheus serves backfilled blocks of the last hours as any others.

The expected looks follow from the onset and the decision rules alone:

* the absolute gate ``error_rate <= 1`` over a 5-minute window, ``failure_limit`` 1: with
  treatment failing 10 % from 3h32m30s at 50 %, the window of the look at 3h35m holds half
  of it (about 2.7 %): rolled back at 50 %, at 3h35m, the look after the onset;
* the comparison (treatment failing 3 % from 2h12m30s at 25 %: the global rate stays under
  1 %): rolled back at 25 % before the step's hour is over, while the same data under the
  absolute gate alone would have reached 50 % and been rolled back only there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, make_example_repo, run_cli
from tests.prometheus_server import (
    COHORT_QUERIES,
    PrometheusServer,
    PrometheusUnavailable,
    Series,
    running_prometheus,
)

pytestmark = pytest.mark.cli_inprocess

FLAG = "phase_4_deployment"
RPM = 20_000
SAMPLE = timedelta(seconds=15)
HOUR = timedelta(hours=1)
#: The plan's steps and their hour each, from the range's start (what was served).
STEPS = (0, 5, 25, 50, 100)

GLOBAL_ERROR_RATE = (
    '100 * (sum(increase(rollout_request_errors_total{flag="{{ flag }}"}[{{ window }}]))'
    ' or vector(0)) / sum(increase(rollout_requests_total{flag="{{ flag }}"}[{{ window }}]))')
REQUEST_COUNT = 'sum(increase(rollout_requests_total{flag="{{ flag }}"}[{{ window }}]))'


def _end() -> datetime:
    """The last whole 5 minutes of the clock: the recording ends there."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=now.minute % 5)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class Recording:
    """Running totals per variant, every 15 s from ``start`` to ``end``; the treatment share
    follows :data:`STEPS`, treatment errors ``treatment_errors(t)`` percent, control 0.3 %."""

    def __init__(self, start: datetime, end: datetime,
                 treatment_errors: Callable[[datetime], float]) -> None:
        self.start, self.end = start, end
        self.times: list[datetime] = []
        #: variant -> (requests, errors) running totals at each time
        self.totals: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
        per = RPM * SAMPLE.total_seconds() / 60
        totals = {"on": (0.0, 0.0), "off": (0.0, 0.0)}
        t = start
        while t <= end:
            if t > start:  # what happened in the interval ending at t
                share = self.share(t - SAMPLE) / 100
                for variant, n in (("on", per * share), ("off", per * (1 - share))):
                    rate = treatment_errors(t) if variant == "on" else 0.3
                    r, e = totals[variant]
                    totals[variant] = (r + n, e + n * rate / 100)
            self.times.append(t)
            for variant in totals:
                self.totals[variant].append(totals[variant])
            t += SAMPLE

    def share(self, t: datetime) -> float:
        return STEPS[min(int((t - self.start) / HOUR), len(STEPS) - 1)]

    def series(self) -> list[Series]:
        out = []
        for variant, totals in self.totals.items():
            labels = {"flag": FLAG, "variant": variant, "reason": "SPLIT"}
            out.append(Series("rollout_requests_total", labels,
                              [(t, r) for t, (r, _) in zip(self.times, totals, strict=True)]))
            out.append(Series("rollout_request_errors_total", labels,
                              [(t, e) for t, (_, e) in zip(self.times, totals, strict=True)]))
        return out

    def timeline(self) -> str:
        """One line a minute: the window's global error rate and requests (5 minutes), and
        the cohorts' running totals."""
        lines = []
        minute = int(timedelta(minutes=1) / SAMPLE)
        window = int(timedelta(minutes=5) / SAMPLE)
        for i in range(0, len(self.times), minute):
            j = max(i - window, 0)
            requests = sum(v[i][0] - v[j][0] for v in self.totals.values())
            errors = sum(v[i][1] - v[j][1] for v in self.totals.values())
            doc: dict[str, Any] = {"timestamp": _iso(self.times[i]),
                                   "request_count": round(requests, 3),
                                   "cohorts": {}}
            if requests:
                doc["error_rate"] = round(100 * errors / requests, 6)
            for cohort, variant in (("treatment", "on"), ("control", "off")):
                r, e = self.totals[variant][i]
                doc["cohorts"][cohort] = {"requests": round(r, 3), "errors": round(e, 3),
                                          "assigned": round(r, 3)}
            lines.append(json.dumps(doc))
        return "\n".join(lines) + "\n"


def _plan(metrics: dict[str, Any], compare: bool) -> str:
    text = (f"flag: {FLAG}\nstrategy: custom\nsteps: {list(STEPS)}\nwait: 1h\n"
            "progress_deadline: 2h\ngates:\n  error_rate: 1.0\n  request_count: 100\n")
    if compare:
        text += "compare:\n  error_rate: {max_increase: 0.5}\n  min_requests: 500\n"
    return text + f"metrics: {json.dumps(metrics)}\n"


def _prometheus_metrics(url: str) -> dict[str, Any]:
    queries = {"error_rate": GLOBAL_ERROR_RATE, "request_count": REQUEST_COUNT,
               **{k: v for k, v in COHORT_QUERIES.items() if k != "cohort_slow"}}
    return {"type": "prometheus", "url": url, "window": "5m", "timeout": "5s",
            "queries": queries}


FILE_METRICS = {"type": "file", "path": "logs/metrics.json", "window": "5m"}


def _repo(tmp_path: Path, plan: str) -> Path:
    repo = make_example_repo(tmp_path / "repo")
    (repo / "rollouts" / f"{FLAG}.yaml").write_text(plan)
    git(repo, "commit", "-qam", "the plan under test")
    return repo


def _files(repo: Path) -> dict[str, float]:
    """Every file of the work tree (git's own folder aside: `git status` refreshes its
    index), with its time of change."""
    return {str(p.relative_to(repo)): p.stat().st_mtime_ns for p in repo.rglob("*")
            if p.is_file() and p.relative_to(repo).parts[0] != ".git"}


def _simulate(repo: Path, *args: str) -> dict[str, Any]:
    before = (_files(repo), git(repo, "status", "--porcelain"), git(repo, "rev-parse", "HEAD"))
    out = run_cli(["simulate", FLAG, "--format", "json", *args], cwd=repo)
    assert out.returncode == 0, out.stderr
    # nothing written: no state, no commit, no file
    assert (_files(repo), git(repo, "status", "--porcelain"),
            git(repo, "rev-parse", "HEAD")) == before
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _changes(result: dict[str, Any], start: datetime) -> list[tuple[str, str, Any, Any]]:
    """(time after the start, action, from %, to %) of each look that changed the phase or
    the percentage."""
    out = []
    for look in result["looks"]:
        if look["action"] != "hold":
            after = datetime.fromisoformat(look["at"].replace("Z", "+00:00")) - start
            out.append((str(after), look["action"], look["from_percentage"],
                        look["to_percentage"]))
    return out


ABSOLUTE_ONSET = timedelta(hours=3, minutes=32, seconds=30)
#: Rolled back at the first look whose 5-minute window holds the regression: 3h35m.
ABSOLUTE_EXPECTED = [("0:00:00", "start", 0, 0), ("1:00:00", "advance", 0, 5),
                     ("2:00:00", "advance", 5, 25), ("3:00:00", "advance", 25, 50),
                     ("3:35:00", "rollback", 50, 0)]
COMPARE_ONSET = timedelta(hours=2, minutes=12, seconds=30)


def _absolute(start: datetime) -> Callable[[datetime], float]:
    return lambda t: 10.0 if t - start >= ABSOLUTE_ONSET else 0.3


def _subtle(start: datetime) -> Callable[[datetime], float]:
    return lambda t: 3.0 if t - start >= COMPARE_ONSET else 0.3


def _server(recording: Recording, tmp_path: Path) -> Any:
    try:
        return running_prometheus(recording.series(), tmp_path / "prometheus")
    except PrometheusUnavailable as e:  # never a skip: the tests need the real server
        pytest.fail(f"real Prometheus needed: {e}", pytrace=False)


def _compare_verdicts(result: dict[str, Any], at: str) -> dict[str, str]:
    look = next(lk for lk in result["looks"] if lk["at"] == at)
    return {g["name"]: g["verdict"] for g in look["gates"]}


def test_prometheus_range_names_the_look_of_the_rollback(tmp_path: Path) -> None:
    end = _end()
    start = end - timedelta(hours=6)
    recording = Recording(start, end, _absolute(start))
    with _server(recording, tmp_path) as server:
        assert isinstance(server, PrometheusServer)
        repo = _repo(tmp_path, _plan(_prometheus_metrics(server.url), compare=False))
        # the range as people give it: the last 6 hours before --now
        result = _simulate(repo, "--since", "6h", "--now", _iso(end))
        text = run_cli(["simulate", FLAG, "--since", "6h", "--now", _iso(end)], cwd=repo)
    assert _changes(result, start) == ABSOLUTE_EXPECTED
    assert result["outcome"] == "rolled_back"
    assert result["ended_at"] == _iso(start + timedelta(hours=3, minutes=35))
    assert result["completed_at"] is None
    assert result["looks_in_range"] == 6 * 12 + 1
    assert len(result["looks"]) == 3 * 12 + 8  # 0 to 3h35m: it stops at the rollback
    rollback = result["looks"][-1]
    assert rollback["reason"].startswith("rolled back at 50%: gate failed: error_rate = ")
    failed = next(g for g in rollback["gates"] if g["name"] == "error_rate")
    assert failed["verdict"] == "fail" and 2.0 < failed["value"] < 3.5  # half a window of 10 %
    # the look before saw nothing yet
    before = result["looks"][-2]
    assert before["action"] == "hold" and all(g["verdict"] == "pass" for g in before["gates"])
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"rollout simulate {FLAG} (rollouts/{FLAG}.yaml): 5 steps")
    assert f"over prometheus {server.url}" in lines[0]
    rolled = [ln for ln in lines if "rollback" in ln.split()[1:2]]
    assert rolled == [ln for ln in lines if ln.startswith(
        _iso(start + timedelta(hours=3, minutes=35)))]
    assert lines[-1].startswith(f"outcome: rolled back at {_iso(start + 3 * HOUR + timedelta(minutes=35))}"
                                ", 3h35m after the start (look 44 of 73)")


def test_a_timeline_of_the_same_recording_decides_the_same(tmp_path: Path) -> None:
    end = _end()
    start = end - timedelta(hours=6)
    recording = Recording(start, end, _absolute(start))
    repo = _repo(tmp_path, _plan(FILE_METRICS, compare=False))
    timeline = tmp_path / "timeline.jsonl"
    timeline.write_text(recording.timeline())
    result = _simulate(repo, "--timeline", str(timeline))
    assert (result["since"], result["until"]) == (_iso(start), _iso(end))  # the timeline's own
    assert _changes(result, start) == ABSOLUTE_EXPECTED
    assert result["source"] == f"timeline {timeline}"
    rollback = result["looks"][-1]
    assert f"{timeline}:{3 * 60 + 36}" in next(
        g["detail"] for g in rollback["gates"] if g["name"] == "error_rate")  # the line read


def test_the_comparison_catches_at_25_what_the_global_gate_sees_only_at_50(
        tmp_path: Path) -> None:
    end = _end()
    start = end - timedelta(hours=6)
    recording = Recording(start, end, _subtle(start))
    timeline = tmp_path / "timeline.jsonl"
    timeline.write_text(recording.timeline())
    with _server(recording, tmp_path) as server:
        metrics = _prometheus_metrics(server.url)
        repo = _repo(tmp_path, _plan(metrics, compare=True))
        over_prometheus = _simulate(repo, "--since", _iso(start), "--until", _iso(end))
        over_timeline = _simulate(repo, "--timeline", str(timeline))
        (repo / "rollouts" / f"{FLAG}.yaml").write_text(_plan(metrics, compare=False))
        without = _simulate(repo, "--since", _iso(start), "--until", _iso(end))
    onset = start + COMPARE_ONSET
    for result in (over_prometheus, over_timeline):
        changes = _changes(result, start)
        assert changes[:3] == ABSOLUTE_EXPECTED[:3]  # the healthy steps pass and advance
        assert changes[3][1:] == ("rollback", 25, 0), changes
        rollback = result["looks"][-1]
        at = datetime.fromisoformat(rollback["at"].replace("Z", "+00:00"))
        assert onset < at < start + 3 * HOUR  # after the onset, before the step's hour ends
        assert "compare.error_rate" in rollback["reason"]
        assert _compare_verdicts(result, rollback["at"])["error_rate"] == "pass"  # 0.975 %
        # before the onset the comparison passed, and the sample ratio held throughout
        healthy = _iso(start + 2 * HOUR + timedelta(minutes=10))
        assert _compare_verdicts(result, healthy) == {
            "error_rate": "pass", "request_count": "pass", "compare.sample_ratio": "pass",
            "compare.error_rate": "pass"}
    # the absolute gate alone: on to 50 %, where the global rate crosses 1 %
    assert _changes(without, start)[3:] == [("3:00:00", "advance", 25, 50),
                                            ("3:05:00", "rollback", 50, 0)]
