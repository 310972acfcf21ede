"""Verdict rules shared by all sources, dry-run gates, and concurrent evaluation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runner.gates import assess_all
from runner.model import Gate, Verdict

from .helpers import NOW, SAFE_GATES, by_name, metrics, request


def write(root: Path, rel: str, doc: object) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc))


def one(root: Path, req):
    return by_name(assess_all([req], root=root, now=NOW, env={})[req.flag])


def test_dry_run_gate_is_evaluated_and_reported_as_dry_run(tmp_path: Path) -> None:
    write(tmp_path, "m.json", {"error_rate": 0.1, "p95_latency_ms": 800, "request_count": 500})
    gates = (Gate("error_rate", max=1.0), Gate("p95_latency_ms", max=500, dry_run=True),
             Gate("request_count", min=100))
    results = one(tmp_path, request("f", metrics("file", path="m.json"), gates))
    assert results["p95_latency_ms"].verdict is Verdict.FAIL
    assert results["p95_latency_ms"].dry_run is True
    assert results["p95_latency_ms"].value == 800
    assert results["error_rate"].dry_run is False


def test_dry_run_request_count_does_not_silence_the_other_gates(tmp_path: Path) -> None:
    write(tmp_path, "m.json", {"error_rate": 7.0, "p95_latency_ms": 100, "request_count": 3})
    gates = (Gate("error_rate", max=1.0), Gate("request_count", min=100, dry_run=True))
    results = one(tmp_path, request("f", metrics("file", path="m.json"), gates))
    assert results["request_count"].verdict is Verdict.INCONCLUSIVE
    assert results["error_rate"].verdict is Verdict.FAIL


def test_request_count_minimum(tmp_path: Path) -> None:
    source = metrics("file", path="m.json")
    write(tmp_path, "m.json", {"error_rate": 7.0, "p95_latency_ms": "slow", "request_count": 99})
    low = one(tmp_path, request("f", source))
    assert low["request_count"].verdict is Verdict.INCONCLUSIVE
    assert "fewer than the minimum 100" in low["request_count"].detail
    assert low["error_rate"].verdict is Verdict.INCONCLUSIVE  # 7 % of 99 requests means nothing yet
    assert low["error_rate"].value == 7.0
    assert low["p95_latency_ms"].verdict is Verdict.ERROR  # nonsense stays an error
    write(tmp_path, "m.json", {"error_rate": 7.0, "p95_latency_ms": 100, "request_count": 100})
    enough = one(tmp_path, request("f", source))
    assert enough["request_count"].verdict is Verdict.PASS  # the minimum itself is enough
    assert enough["error_rate"].verdict is Verdict.FAIL


def test_plan_without_metrics_or_with_unknown_type_is_an_error(tmp_path: Path) -> None:
    out = assess_all([request("a", None), request("b", metrics("carrier-pigeon"))],
                       root=tmp_path, now=NOW, env={})
    assert {r.verdict for r in out["a"]} == {Verdict.ERROR}
    assert "no metric source" in out["a"][0].detail
    assert "unknown metrics type 'carrier-pigeon'" in out["b"][0].detail


def test_a_step_without_gates_has_no_results(tmp_path: Path) -> None:
    assert assess_all([request("f", metrics("file", path="m.json"), gates=())],
                        root=tmp_path, now=NOW, env={}) == {"f": ()}


def test_one_request_per_flag() -> None:
    req = request("f", metrics("file", path="m.json"))
    with pytest.raises(ValueError, match="repeated: f"):
        assess_all([req, req], root=Path("."), now=NOW, env={})


def test_many_rollouts_each_get_their_own_sources_verdicts(tmp_path: Path) -> None:
    requests = []
    for i in range(40):
        flag = f"flag_{i:02d}"
        if i % 4 == 0:
            write(tmp_path, f"metrics/{flag}.json", {"error_rate": 5.0, "p95_latency_ms": 10,
                                                     "request_count": 1000})
            requests.append(request(flag, metrics("file", path="metrics/{{ flag }}.json")))
        elif i % 4 == 1:
            requests.append(request(flag, metrics("file", path="metrics/{{ flag }}.json")))  # missing
        elif i % 4 == 2:
            doc = json.dumps({"error_rate": 0.1, "p95_latency_ms": 10, "request_count": 1000})
            requests.append(request(flag, metrics("command", command=["printf", "%s", doc])))
        else:
            requests.append(request(flag, metrics("command", command=["false"])))
    out = assess_all(requests, root=tmp_path, now=NOW, env={}, max_workers=6)
    assert list(out) == [r.flag for r in requests]  # keyed by flag, in request order
    expected = {0: Verdict.FAIL, 1: Verdict.INCONCLUSIVE, 2: Verdict.PASS, 3: Verdict.ERROR}
    for i, req in enumerate(requests):
        assert by_name(out[req.flag])["error_rate"].verdict is expected[i % 4], req.flag


def test_a_slow_source_does_not_hold_up_the_others(tmp_path: Path) -> None:
    """The slow source waits until every fast one has answered; if they were queued behind
    it, it would time out. Its pass proves the others finished while it was still running."""
    log = tmp_path / "answered.log"
    fast_doc = json.dumps({"error_rate": 0.1, "p95_latency_ms": 10, "request_count": 1000})
    fast = [request(f"fast_{i:02d}", metrics("command", command=[
        "sh", "-c", f"echo {i} >> {log}; printf '%s' '{fast_doc}'"])) for i in range(12)]
    waiter = (
        "import json, pathlib, time, sys\n"
        f"log = pathlib.Path({str(log)!r})\n"
        "for _ in range(600):\n"
        "    if log.exists() and len(log.read_text().split()) >= 12: break\n"
        "    time.sleep(0.05)\n"
        "else: sys.exit('the fast sources never answered')\n"
        "print(json.dumps({'error_rate': 0.1, 'p95_latency_ms': 10, 'request_count': 1000}))\n"
    )
    slow = request("slow", metrics("command", command=[sys.executable, "-c", waiter], timeout=60))
    out = assess_all([slow, *fast], root=tmp_path, now=NOW, env={}, max_workers=3)
    assert {r.verdict for r in out["slow"]} == {Verdict.PASS}, out["slow"][0].detail
    assert all({r.verdict for r in out[f.flag]} == {Verdict.PASS} for f in fast)


def test_a_hanging_source_costs_only_its_timeout_and_an_error(tmp_path: Path) -> None:
    hang = request("hang", metrics("command", command=["sleep", "600"], timeout=1.0))
    doc = json.dumps({"error_rate": 0.1, "p95_latency_ms": 10, "request_count": 1000})
    ok = [request(f"ok_{i}", metrics("command", command=["printf", "%s", doc])) for i in range(5)]
    out = assess_all([hang, *ok], root=tmp_path, now=NOW, env={}, max_workers=2)
    assert {r.verdict for r in out["hang"]} == {Verdict.ERROR}
    assert "no answer within 1s" in out["hang"][0].detail
    assert all({r.verdict for r in out[o.flag]} == {Verdict.PASS} for o in ok)


def test_concurrency_is_bounded_by_max_workers(tmp_path: Path) -> None:
    """Each source logs its start and end; at no point in the log are more than 2 open."""
    log = tmp_path / "events.log"
    doc = json.dumps({"error_rate": 0.1, "p95_latency_ms": 10, "request_count": 1000})
    reqs = [request(f"f{i}", metrics("command", command=[
        "sh", "-c", f"echo start >> {log}; sleep 0.5; echo end >> {log}; printf '%s' '{doc}'"]))
        for i in range(6)]
    out = assess_all(reqs, root=tmp_path, now=NOW, env={}, max_workers=2)
    assert all({r.verdict for r in v} == {Verdict.PASS} for v in out.values())
    open_now = peak = 0
    for event in log.read_text().split():
        open_now += 1 if event == "start" else -1
        peak = max(peak, open_now)
    assert peak == 2  # ran two at a time: concurrent, and never more than the bound


def test_sandbox_escape_in_a_path_template_is_an_error(tmp_path: Path) -> None:
    for path, expected in (("{{ ''.__class__.__mro__[1].__subclasses__() }}", "method call"),
                           ("{{ ''.__class__.__mro__ }}", "sandbox"),
                           ("metrics/{{ service }}.json", "'service' is undefined")):
        results = one(tmp_path, request("f", metrics("file", path=path), SAFE_GATES))
        assert {r.verdict for r in results.values()} == {Verdict.ERROR}
        assert expected in results["error_rate"].detail
