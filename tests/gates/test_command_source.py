"""The command source: real processes, no shell, JSON on standard output."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from runner.gates import assess_all
from runner.model import Gate, Verdict

from .helpers import NOW, by_name, metrics, request

HEALTHY = {"error_rate": 0.3, "p95_latency_ms": 120, "request_count": 900}

SCRIPT = """\
import json, os, sys
flag, window = sys.argv[1], sys.argv[2]
print(json.dumps({"error_rate": 0.3, "p95_latency_ms": 120, "request_count": 900,
                  "seen": {"flag": flag, "window": window, "env_flag": os.environ["ROLLOUT_FLAG"],
                           "now": os.environ["ROLLOUT_NOW"], "pct": os.environ["ROLLOUT_PERCENTAGE"],
                           "cwd": os.getcwd(), "token": os.environ.get("FROM_RUN_ENV")}}))
"""


def run(root: Path, req, env=None):
    return assess_all([req], root=root, now=NOW, env=env if env is not None else dict(os.environ))[req.flag]


def test_command_output_is_judged(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/metrics.py").write_text(SCRIPT)
    source = metrics("command", command=[sys.executable, "scripts/metrics.py", "{{ flag }}", "{{ window }}"])
    gates = (Gate("error_rate", max=0.25), Gate("request_count", min=100),
             Gate("seen_flag", max=1, query="seen.flag"))  # a string where a number belongs
    results = by_name(run(tmp_path, request("checkout", source, gates)))
    assert results["error_rate"].verdict is Verdict.FAIL
    assert results["error_rate"].value == 0.3
    assert results["request_count"].verdict is Verdict.PASS
    assert results["seen_flag"].verdict is Verdict.ERROR
    assert "not a number" in results["seen_flag"].detail


def test_command_sees_its_arguments_environment_and_cwd(tmp_path: Path) -> None:
    (tmp_path / "metrics.py").write_text(SCRIPT.replace("print(json.dumps(", "d=(").replace(
        "}}))", "}})\nd['seen_ok'] = int(d['seen'] == " + repr({
            "flag": "checkout", "window": "10m", "env_flag": "checkout", "now": NOW.isoformat(),
            "pct": "10", "cwd": str(tmp_path.resolve()), "token": "yes"}) + ")\nprint(json.dumps(d))"))
    source = metrics("command", command=[sys.executable, "metrics.py", "{{ flag }}", "{{ window }}"],
                     window="10m")
    gates = (Gate("seen", min=1, query="seen_ok"),)
    results = run(tmp_path, request("checkout", source, gates, step=2),
                  env={**os.environ, "FROM_RUN_ENV": "yes"})
    assert results[0].verdict is Verdict.PASS, results[0].detail


def test_no_shell_metacharacters_are_interpreted(tmp_path: Path) -> None:
    source = metrics("command", command=["echo", '{"error_rate": 0.1}; rm -rf /; echo'])
    results = run(tmp_path, request("f", source, (Gate("error_rate", max=1.0),)))
    # echo printed its single argument verbatim: not JSON, so an error (and nothing else ran)
    assert results[0].verdict is Verdict.ERROR
    assert "not JSON" in results[0].detail


def test_non_zero_exit_is_an_error_with_its_stderr(tmp_path: Path) -> None:
    source = metrics("command", command=[sys.executable, "-c",
                                         "import sys; print('{}'); sys.exit('metrics backend down')"])
    results = run(tmp_path, request("f", source))
    assert {r.verdict for r in results} == {Verdict.ERROR}
    assert "exit status 1: metrics backend down" in results[0].detail


def test_bad_json_and_non_object_are_errors(tmp_path: Path) -> None:
    for output, expected in (("{oops", "not JSON"), ("[1, 2]", "expected a JSON object")):
        source = metrics("command", command=["printf", "%s", output])
        results = run(tmp_path, request("f", source))
        assert {r.verdict for r in results} == {Verdict.ERROR}
        assert expected in results[0].detail


def test_missing_program_is_an_error(tmp_path: Path) -> None:
    results = run(tmp_path, request("f", metrics("command", command=["./no-such-metrics-script"])))
    assert {r.verdict for r in results} == {Verdict.ERROR}
    assert "cannot run" in results[0].detail


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # the shell starts a background grandchild, records its pid, then hangs
    script = f"sleep 60 & echo $! > {pidfile}; sleep 60; echo '{{}}'"
    source = metrics("command", command=["sh", "-c", script], timeout=1.0)
    results = run(tmp_path, request("f", source))
    assert {r.verdict for r in results} == {Verdict.ERROR}
    assert "no answer within 1s (killed)" in results[0].detail
    grandchild = int(pidfile.read_text())
    for _ in range(100):  # the kill is sent; give the kernel a moment to reap
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{grandchild}/stat").read_text().split()[2] == "Z":
            break  # a zombie waiting for its (also killed) parent's reaper: dead
        time.sleep(0.05)
    else:
        raise AssertionError(f"grandchild {grandchild} survived the timeout")


def test_stale_command_output_is_no_data(tmp_path: Path) -> None:
    doc = json.dumps({**HEALTHY, "timestamp": NOW.timestamp() - 3600})
    results = run(tmp_path, request("f", metrics("command", command=["printf", "%s", doc])))
    assert {r.verdict for r in results} == {Verdict.INCONCLUSIVE}
    assert "stale" in results[0].detail


def test_template_escape_in_an_argument_is_an_error_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = metrics("command", command=["touch", str(marker), "{{ cycler.__init__.__globals__ }}"])
    results = run(tmp_path, request("f", source))
    assert {r.verdict for r in results} == {Verdict.ERROR}
    assert "sandbox" in results[0].detail
    assert not marker.exists()


def test_a_gate_command_never_sees_the_publication_signing_key(tmp_path: Path) -> None:
    """`advance --publish` runs with the signing key in its environment; the gate commands
    it runs (the repository's programs) get the run's environment without it."""
    from runner.reconcile.runs import gates_evaluator

    (tmp_path / "pyproject.toml").write_text(
        '[tool.rollout.publish]\nsigning_key_env = "MY_SIGNING_KEY"\n')
    (tmp_path / "metrics.py").write_text(
        "import json, os\nprint(json.dumps({'error_rate': 0.1, 'request_count': 900,\n"
        "  'key_seen': int('MY_SIGNING_KEY' in os.environ),\n"
        "  'other_seen': int('FROM_RUN_ENV' in os.environ)}))\n")
    source = metrics("command", command=[sys.executable, "metrics.py"])
    gates = (Gate("key_seen", max=0, query="key_seen"), Gate("other_seen", min=1, query="other_seen"))
    req = request("checkout", source, gates)
    env = {**os.environ, "MY_SIGNING_KEY": "secret", "FROM_RUN_ENV": "yes"}
    results = by_name(gates_evaluator(tmp_path, env)([req], NOW)[req.flag])
    assert results["key_seen"].verdict is Verdict.PASS, results["key_seen"]
    assert results["other_seen"].verdict is Verdict.PASS, results["other_seen"]
    assert env["MY_SIGNING_KEY"] == "secret"  # the caller's mapping untouched
