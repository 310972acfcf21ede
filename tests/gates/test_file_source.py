"""The file source: the reference document's logs/metrics.json, read from a real directory."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from runner.gates import assess_all
from runner.model import Gate, Verdict

from .helpers import NOW, SAFE_GATES, by_name, metrics, request

HEALTHY = {"error_rate": 0.2, "p95_latency_ms": 180.0, "p99_latency_ms": 250.0,
           "request_count": 1200, "error_count": 2}


def write(root: Path, rel: str, doc: object) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))


def run(root: Path, req, env=None):
    return assess_all([req], root=root, now=NOW, env=env or {})[req.flag]


def test_healthy_reference_file_passes_every_gate(tmp_path: Path) -> None:
    write(tmp_path, "logs/metrics.json", HEALTHY)
    results = run(tmp_path, request("f", metrics("file", path="logs/metrics.json")))
    assert [(r.name, r.verdict, r.value) for r in results] == [
        ("error_rate", Verdict.PASS, 0.2), ("p95_latency_ms", Verdict.PASS, 180.0),
        ("request_count", Verdict.PASS, 1200.0)]
    assert all(r.evaluated_at == NOW and not r.dry_run for r in results)
    assert results[0].threshold == "<= 1"


def test_error_rate_over_threshold_fails(tmp_path: Path) -> None:
    write(tmp_path, "logs/metrics.json", {**HEALTHY, "error_rate": 2.5})
    results = by_name(run(tmp_path, request("f", metrics("file", path="logs/metrics.json"))))
    assert results["error_rate"].verdict is Verdict.FAIL
    assert "2.5 > 1" in results["error_rate"].detail
    assert results["p95_latency_ms"].verdict is Verdict.PASS


def test_an_error_rate_exported_as_a_fraction_is_an_error_never_a_pass(tmp_path: Path) -> None:
    # 36 errors in 1,200 requests is 3 %; an export writing 0.03 would pass "<= 1" at 3 %
    write(tmp_path, "logs/metrics.json", {**HEALTHY, "error_count": 36, "error_rate": 0.03})
    results = by_name(run(tmp_path, request("f", metrics("file", path="logs/metrics.json"))))
    assert results["error_rate"].verdict is Verdict.ERROR
    assert "as a fraction" in results["error_rate"].detail
    assert "must write 3 for 3 %" in results["error_rate"].detail
    # the same file in percent passes; a low rate alone is never second-guessed
    write(tmp_path, "logs/metrics.json", {**HEALTHY, "error_count": 36, "error_rate": 3.0})
    assert by_name(run(tmp_path, request("f", metrics("file", path="logs/metrics.json"))))[
        "error_rate"].verdict is Verdict.FAIL
    write(tmp_path, "logs/metrics.json", {"error_rate": 0.03, "request_count": 1200})
    assert by_name(run(tmp_path, request("f", metrics("file", path="logs/metrics.json"))))[
        "error_rate"].verdict is Verdict.PASS


def test_path_template_reads_each_flags_own_file(tmp_path: Path) -> None:
    write(tmp_path, "metrics/good.json", HEALTHY)
    write(tmp_path, "metrics/bad.json", {**HEALTHY, "p95_latency_ms": 900})
    source = metrics("file", path="metrics/{{ flag }}.json")
    out = assess_all([request("good", source), request("bad", source)], root=tmp_path, now=NOW, env={})
    assert {r.verdict for r in out["good"]} == {Verdict.PASS}
    assert by_name(out["bad"])["p95_latency_ms"].verdict is Verdict.FAIL


def test_path_template_gets_window_and_percentage(tmp_path: Path) -> None:
    write(tmp_path, "m/f-10m-25.json", HEALTHY)
    source = metrics("file", path="m/{{ flag }}-{{ window }}-{{ percentage }}.json", window="10m")
    assert {r.verdict for r in run(tmp_path, request("f", source, step=3))} == {Verdict.PASS}


def test_missing_file_is_inconclusive_never_a_pass(tmp_path: Path) -> None:
    results = run(tmp_path, request("f", metrics("file", path="logs/metrics.json")))
    assert {r.verdict for r in results} == {Verdict.INCONCLUSIVE}
    assert "logs/metrics.json does not exist" in results[0].detail


def test_invalid_json_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "logs/metrics.json", '{\n  "error_rate": 0.1,\n  oops\n}')
    results = run(tmp_path, request("f", metrics("file", path="logs/metrics.json")))
    assert {r.verdict for r in results} == {Verdict.ERROR}
    assert results[0].detail.startswith("logs/metrics.json:3:")


def test_a_json_array_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "logs/metrics.json", [1, 2])
    assert {r.verdict for r in run(tmp_path, request("f", metrics("file", path="logs/metrics.json")))} \
        == {Verdict.ERROR}


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "logs/metrics.json", HEALTHY)
    (tmp_path / "logs/metrics.json").chmod(0)
    try:
        if os.access(tmp_path / "logs/metrics.json", os.R_OK):  # root reads anything: use a directory
            (tmp_path / "logs/metrics.json").chmod(0o644)
            (tmp_path / "logs/metrics.json").unlink()
            (tmp_path / "logs/metrics.json").mkdir()
        results = run(tmp_path, request("f", metrics("file", path="logs/metrics.json")))
    finally:
        p = tmp_path / "logs/metrics.json"
        if p.is_file():
            p.chmod(0o644)
    assert {r.verdict for r in results} == {Verdict.ERROR}
    assert "cannot read" in results[0].detail


def test_non_numeric_field_is_an_error_missing_field_is_no_data(tmp_path: Path) -> None:
    write(tmp_path, "logs/metrics.json", {"error_rate": "0.1", "request_count": 500})
    results = by_name(run(tmp_path, request("f", metrics("file", path="logs/metrics.json"))))
    assert results["error_rate"].verdict is Verdict.ERROR
    assert "not a number" in results["error_rate"].detail
    assert results["p95_latency_ms"].verdict is Verdict.INCONCLUSIVE
    assert results["request_count"].verdict is Verdict.PASS


def test_custom_gate_reads_the_field_named_by_its_query(tmp_path: Path) -> None:
    write(tmp_path, "logs/metrics.json", {**HEALTHY, "cache_hit_ratio": 0.42,
                                          "queue": {"depth": 17}})
    gates = (Gate("cache_hits", min=0.5, query="cache_hit_ratio"),
             Gate("queue_depth", max=20, query="queue.depth"))
    results = by_name(run(tmp_path, request("f", metrics("file", path="logs/metrics.json"), gates)))
    assert results["cache_hits"].verdict is Verdict.FAIL  # a custom minimum is health: a fail
    assert results["cache_hits"].value == 0.42
    assert results["queue_depth"].verdict is Verdict.PASS
    assert results["queue_depth"].value == 17


def test_stale_timestamp_is_no_data(tmp_path: Path) -> None:
    old = (NOW - timedelta(minutes=6)).isoformat()
    write(tmp_path, "logs/metrics.json", {**HEALTHY, "timestamp": old})
    results = run(tmp_path, request("f", metrics("file", path="logs/metrics.json", window="5m")))
    assert {r.verdict for r in results} == {Verdict.INCONCLUSIVE}
    assert "stale" in results[0].detail


def test_fresh_timestamps_iso_and_epoch_are_used(tmp_path: Path) -> None:
    source = metrics("file", path="logs/metrics.json", window="5m")
    for stamp in ((NOW - timedelta(minutes=4)).isoformat().replace("+00:00", "Z"),
                  (NOW - timedelta(minutes=4)).timestamp()):
        write(tmp_path, "logs/metrics.json", {**HEALTHY, "timestamp": stamp})
        assert {r.verdict for r in run(tmp_path, request("f", source))} == {Verdict.PASS}
    # the injected clock decides: the same file read 2 minutes later is stale
    later = assess_all([request("f", source)], root=tmp_path, now=NOW + timedelta(minutes=2), env={})
    assert {r.verdict for r in later["f"]} == {Verdict.INCONCLUSIVE}


def test_bad_timestamp_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "logs/metrics.json", {**HEALTHY, "timestamp": "yesterday"})
    results = run(tmp_path, request("f", metrics("file", path="logs/metrics.json")))
    assert {r.verdict for r in results} == {Verdict.ERROR}
    assert "timestamp" in results[0].detail


def test_path_may_not_leave_the_repository(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    write(tmp_path, "secret.json", HEALTHY)
    results = run(root, request("f", metrics("file", path="../secret.json")))
    assert {r.verdict for r in results} == {Verdict.ERROR}
    assert "outside the repository" in results[0].detail


def test_a_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    os.mkfifo(tmp_path / "logs/metrics.json")
    results = run(tmp_path, request("f", metrics("file", path="logs/metrics.json")))
    assert {r.verdict for r in results} == {Verdict.ERROR}
    assert "not a regular file" in results[0].detail


def test_nan_and_infinity_are_inconclusive(tmp_path: Path) -> None:
    write(tmp_path, "logs/metrics.json",
          '{"error_rate": NaN, "p95_latency_ms": Infinity, "request_count": 1000}')
    results = by_name(run(tmp_path, request("f", metrics("file", path="logs/metrics.json"))))
    assert results["error_rate"].verdict is Verdict.INCONCLUSIVE
    assert results["p95_latency_ms"].verdict is Verdict.INCONCLUSIVE
    assert results["error_rate"].value is None and "nan" in results["error_rate"].detail
    assert results["request_count"].verdict is Verdict.PASS


def test_the_example_repository_reads_its_default_metrics_file(example_repo: Path) -> None:
    from runner.gates import GateRequest
    from runner.load import load_repository

    plan = load_repository(example_repo).plans["phase_4_deployment"]
    write(example_repo, "logs/metrics.json", {"error_rate": 0.0, "p95_latency_ms": 100.0,
                                              "p99_latency_ms": 150.0, "request_count": 0,
                                              "error_count": 0})
    out = assess_all([GateRequest(plan.flag, plan, 1, 5.0)], root=example_repo, now=NOW, env={})
    results = by_name(out[plan.flag])
    # the reference's placeholder file: zero requests, so nothing can be judged
    assert {r.verdict for r in results.values()} == {Verdict.INCONCLUSIVE}
    assert "too little traffic" in results["error_rate"].detail
    assert len(SAFE_GATES) == len(results)
