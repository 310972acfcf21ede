"""No input can blind the runner; secrets and output (docs/runner.md, README "Security notes").

Real repositories, the CLI as a process, real commands and local HTTP servers as sources.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.conftest import git
from tests.runner.helpers import (
    STATE,
    advance,
    at,
    commit_all,
    rollout,
    state,
    subjects,
    write_flag,
    write_metrics,
    write_plan,
)

FAILING = {"error_rate": 9.0}


def _plan(flag: str, metrics: dict[str, object], extra: str = "") -> str:
    return (f"flag: {flag}\nstrategy: safe\nwait: 5m\ngates:\n  error_rate: 1.0\n"
            f"metrics: {json.dumps(metrics)}\n{extra}")


@contextmanager
def _server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Trickle(BaseHTTPRequestHandler):
    """A Prometheus answer trickling one byte a second (for a minute)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [0, "0.1"]}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(60):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


def test_slow_huge_and_trickling_sources_never_delay_a_rollback(example_repo: Path) -> None:
    """Beside a failing rollout: a command that never answers, one that prints without end,
    and a Prometheus that trickles. The failing one rolls back; each of the others is an
    error within its own timeout; the run does not hang."""
    with _server(_Trickle) as url:
        huge = [sys.executable, "-c",
                "import sys\nchunk = 'x' * 65536\nwhile True: sys.stdout.write(chunk)"]
        sources = {
            "slow_source": {"type": "command", "command": ["sleep", "60"], "timeout": "2s"},
            "huge_source": {"type": "command", "command": huge, "timeout": "20s"},
            "trickle_source": {"type": "prometheus", "url": url, "timeout": "2s",
                               "queries": {"error_rate": "up"}},
        }
        for flag, metrics in sources.items():
            write_flag(example_repo, flag)
            write_plan(example_repo, _plan(flag, metrics), flag)
        commit_all(example_repo, "three rollouts with bad sources")
        write_metrics(example_repo)
        assert advance(example_repo, 0).returncode == 0
        write_metrics(example_repo, **FAILING)
        started = time.monotonic()
        out = advance(example_repo, 5)
        took = time.monotonic() - started
    assert out.returncode == 4, out.stderr
    assert "ROLLED BACK: phase_4_deployment" in out.stdout
    assert state(example_repo)["phase"] == "rolled_back"
    assert took < 40, f"the run took {took:.0f}s"  # generous: the timeouts are 2s, 2s, 20s
    details = {f: state(example_repo, f"rollouts/{f}.state.json")["last_gates"][0]["detail"]
               for f in sources}
    assert "no answer within 2s" in details["slow_source"]
    assert "more than 1048576 bytes" in details["huge_source"]
    assert "no answer within the timeout" in details["trickle_source"]
    for flag in sources:  # an error, never a crash, never an advance
        s = state(example_repo, f"rollouts/{flag}.state.json")
        assert s["phase"] == "progressing" and s["current_percentage"] == 0
        assert s["last_gates"][0]["verdict"] == "error"


def test_a_nested_loop_template_is_an_error_naming_it_not_a_hang(example_repo: Path) -> None:
    loops = ("metrics/{% for i in range(100000) %}{% for j in range(100000) %}"
             "{{ i }}{% endfor %}{% endfor %}.json")
    write_flag(example_repo, "looping")
    write_plan(example_repo, _plan("looping", {"type": "file", "path": loops}), "looping")
    commit_all(example_repo, "a plan whose path template loops")
    started = time.monotonic()
    out = rollout(example_repo, "validate")
    assert out.returncode == 1
    assert "rollouts/looping.yaml" in out.stdout and "metrics.path" in out.stdout
    assert "loop" in out.stdout
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    write_metrics(example_repo, **FAILING)
    out = advance(example_repo, 5)
    assert out.returncode == 4, out.stderr  # the other rollout's failing gate acted
    assert time.monotonic() - started < 60
    looping = state(example_repo, "rollouts/looping.state.json")
    assert looping["last_gates"][0]["verdict"] == "error"
    assert "metrics path" in looping["last_gates"][0]["detail"]


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def test_a_future_now_is_refused_where_recorded_and_never_blinds_later_runs(
        example_repo: Path) -> None:
    real = {"ROLLOUT_ALLOW_FUTURE_NOW": "0"}
    tomorrow = _iso(datetime.now(UTC) + timedelta(days=1))
    head = git(example_repo, "rev-parse", "HEAD")
    write_metrics(example_repo)
    for args in (("advance",), ("pause", "phase_4_deployment"),
                 ("rollback", "phase_4_deployment")):
        out = rollout(example_repo, *args, "--now", tomorrow, env=real)
        assert out.returncode == 2, out.stderr
        assert "ahead of this machine's clock" in out.stderr and "nothing was written" in out.stderr
    assert git(example_repo, "rev-parse", "HEAD") == head
    assert not (example_repo / STATE).exists()
    # a dry run records nothing: allowed; within the skew and in the past: allowed
    assert rollout(example_repo, "advance", "--dry-run", "--now", tomorrow, env=real).returncode == 0
    soon = _iso(datetime.now(UTC) + timedelta(minutes=2))
    assert rollout(example_repo, "advance", "--dry-run", "--now", soon, env=real).returncode == 0
    assert advance(example_repo, 0, env=real).returncode == 0  # 2026-01-15: the past

    # a simulation (explicitly allowed) ran ten years ahead; a later run must still act
    far = _iso(datetime(2026, 1, 15, 12, tzinfo=UTC) + timedelta(days=3650))
    assert rollout(example_repo, "advance", "--now", far).returncode == 0
    assert state(example_repo)["last_evaluated_at"] == far
    write_metrics(example_repo, **FAILING)
    out = advance(example_repo, 20, env=real)
    assert out.returncode == 4, out.stdout + out.stderr
    assert state(example_repo)["phase"] == "rolled_back"


def test_a_plan_without_gates_needs_allow_no_gates_and_says_no_gates(example_repo: Path) -> None:
    write_plan(example_repo, "flag: phase_4_deployment\nstrategy: fast\nwait: 5m\n")
    commit_all(example_repo, "a plan without gates")
    out = rollout(example_repo, "validate")
    assert out.returncode == 1 and "allow_no_gates" in out.stdout
    assert advance(example_repo, 0).returncode == 1  # invalid: nothing happens
    assert not (example_repo / STATE).exists()
    # only dry-run gates guard nothing either
    write_plan(example_repo, "flag: phase_4_deployment\nstrategy: fast\nwait: 5m\n"
               "gates:\n  error_rate: {max: 1, dry_run: true}\n")
    commit_all(example_repo, "dry-run gates only")
    assert rollout(example_repo, "validate").returncode == 1
    write_plan(example_repo, "flag: phase_4_deployment\nstrategy: fast\nwait: 5m\n"
               "allow_no_gates: true\n")
    commit_all(example_repo, "no gates, on purpose")
    assert rollout(example_repo, "validate").returncode == 0
    for minute in (0, 5, 10, 15):
        assert advance(example_repo, minute).returncode == 0
    assert state(example_repo)["phase"] == "completed"
    log = git(example_repo, "log", "--format=%B")
    assert "no gates" in log and "gates passed" not in log


def test_a_flapping_gate_never_completes(example_repo: Path) -> None:
    text = (example_repo / "rollouts/phase_4_deployment.yaml").read_text()
    write_plan(example_repo, text.replace("failure_limit: 1", "failure_limit: 3"))
    commit_all(example_repo, "three failures allowed")
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    codes = []
    for i in range(1, 14):  # every run at the step's wait: fail, pass, fail, pass...
        write_metrics(example_repo, **(FAILING if i % 2 else {}))
        codes.append(advance(example_repo, 5 * i).returncode)
        if codes[-1] == 4:
            break
    s = state(example_repo)
    assert s["phase"] == "rolled_back" and codes[-1] == 4
    assert codes.count(4) == 1 and len(codes) == 5  # the third failure, passes between
    assert "3 failed evaluations" in s["reason"]
    assert not any("100%" in line for line in subjects(example_repo))


class _Echo(BaseHTTPRequestHandler):
    """A Prometheus error that echoes the request's Authorization header, as some proxies do."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"status": "error", "errorType": "bad_data",
                           "error": f"bad request; headers: Authorization: "
                                    f"{self.headers.get('Authorization')}"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_bearer_token_echoed_by_the_server_is_never_recorded_or_printed(
        example_repo: Path) -> None:
    token = "s3cr3t-Token-value-42"
    with _server(_Echo) as url:
        metrics = {"type": "prometheus", "url": url, "bearer_token_env": "PROM_TOKEN",
                   "queries": {"error_rate": "up"}, "timeout": "5s"}
        text = (example_repo / "rollouts/phase_4_deployment.yaml").read_text()
        text = text.replace("  p95_latency_ms: 500\n  request_count: 100       # fewer requests "
                            "than this: inconclusive, never an advance\n", "")
        write_plan(example_repo, text + f"error_limit: 2\nmetrics: {json.dumps(metrics)}\n")
        commit_all(example_repo, "prometheus with a token")
        env = {"PROM_TOKEN": token}
        outs = [advance(example_repo, m, env=env) for m in (0, 5, 10)]
        outs.append(rollout(example_repo, "status", env=env))
    assert state(example_repo)["phase"] == "paused"  # the source failed twice: paused
    recorded = (example_repo / STATE).read_text() + git(example_repo, "log", "--format=%B")
    printed = "".join(o.stdout + o.stderr for o in outs)
    assert "bad_data" in recorded and "[redacted]" in recorded
    assert token not in recorded and token not in printed
    assert "[redacted]" in printed


def test_a_multi_line_reason_is_one_safe_line_everywhere(example_repo: Path) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    reason = "x\n::error title=owned::the runner was told\r\n::set-output name=a::b"
    out = rollout(example_repo, "pause", "phase_4_deployment", "--reason", reason,
                  "--now", at(1))
    assert out.returncode == 0, out.stderr
    for line in (out.stdout + out.stderr).splitlines():
        assert not line.lstrip().startswith("::"), line
    assert len(out.stdout.splitlines()) == 1
    recorded = state(example_repo)["reason"]
    assert "\n" not in recorded and "owned" in recorded
    trailers = git(example_repo, "log", "-1", "--format=%(trailers:key=Rollout-Reason,valueonly)")
    assert len(trailers.strip().splitlines()) == 1
    body = git(example_repo, "log", "-1", "--format=%B")
    assert not any(line.lstrip().startswith("::") for line in body.splitlines())
    shown = rollout(example_repo, "status")
    assert not any(line.lstrip().startswith("::") for line in shown.stdout.splitlines())
    # the same holds for what a source says: a command whose error is multi-line
    metrics = {"type": "command", "timeout": "5s", "command": [
        sys.executable, "-c", "import sys; sys.stderr.write('ok\\n::error::evil\\n'); sys.exit(3)"]}
    write_flag(example_repo, "noisy")
    write_plan(example_repo, _plan("noisy", metrics), "noisy")
    commit_all(example_repo, "a noisy source")
    outs = [advance(example_repo, m, "noisy") for m in (2, 7)]
    for o in outs:
        assert o.returncode == 0, o.stderr
        for line in (o.stdout + o.stderr).splitlines():
            assert not line.lstrip().startswith("::"), line
    assert "::error::evil" in "".join(o.stdout for o in outs)  # shown, harmlessly, mid-line


def test_a_reason_starting_with_a_dash_is_the_reason_in_both_spellings(
        example_repo: Path) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    for i, (spelling, reason) in enumerate([(("--reason", "-rf /"), "-rf /"),
                                            (("--reason=--force",), "--force"),
                                            (("--reason", "--"), "--")]):
        out = rollout(example_repo, "pause" if i % 2 == 0 else "resume", *spelling,
                      "--now", at(1 + i), "--", "phase_4_deployment")
        assert out.returncode == 0, out.stderr
        assert git(example_repo, "log", "-1",
                   "--format=%(trailers:key=Rollout-Reason,valueonly)").endswith(f"({reason})")
    # after `--` nothing is an option any more: "--reason" there is a flag key, unknown
    out = rollout(example_repo, "resume", "--now", at(5), "--", "--reason")
    assert out.returncode != 0 and "usage:" not in out.stderr


class _Refusing(BaseHTTPRequestHandler):
    """A Prometheus that refuses every request (401, or 400 with a JSON error) and echoes
    what it was sent: the path and query, the Authorization header, in its reason and body."""

    seen: list[tuple[str, str]] = []  # noqa: RUF012 - one test at a time

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        auth = self.headers.get("Authorization", "")
        _Refusing.seen.append((self.path, auth))
        echo = f"{self.path} {auth} token abc user u:secret"
        code = 401 if len(_Refusing.seen) % 2 else 400
        body = json.dumps({"status": "error", "errorType": "bad_data",
                           "error": f"refused {echo}"}).encode()
        self.send_response(code, f"refused {echo}")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_metrics_urls_userinfo_and_query_values_never_reach_a_message(
        example_repo: Path) -> None:
    import base64
    import re

    _Refusing.seen = []
    with _server(_Refusing) as url:
        secret_url = url.replace("http://", "http://u:secret@") + "/?token=abc"
        write_flag(example_repo, "guarded")
        write_plan(example_repo, _plan("guarded", {
            "type": "prometheus", "url": secret_url, "timeout": "5s",
            "queries": {"error_rate": "up"}}), "guarded")
        commit_all(example_repo, "a source with credentials in its URL")
        write_metrics(example_repo)
        outs = [advance(example_repo, m, "guarded") for m in (0, 1, 7, 13)]
    # sent as HTTP Basic auth, the query kept where the API path goes
    assert _Refusing.seen and {s[0] for s in _Refusing.seen} == {"/api/v1/query?token=abc"}
    assert {s[1] for s in _Refusing.seen} == {"Basic " + base64.b64encode(b"u:secret").decode()}
    printed = "".join(o.stdout + o.stderr for o in outs)
    recorded = git(example_repo, "log", "--format=%B") + "".join(
        p.read_text() for p in (example_repo / "rollouts").glob("*.state.json"))
    assert "[redacted]" in recorded, recorded
    for text in (printed, recorded):
        for word in ("secret", "abc"):  # ("abc" alone: a digest may hold those letters)
            found = re.search(rf"(?<![0-9a-f]){word}(?![0-9a-f])", text)
            assert found is None, text[max(found.start() - 300, 0):found.end() + 100]
        assert "secret" not in text
        assert base64.b64encode(b"u:secret").decode() not in text
