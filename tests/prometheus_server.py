"""A real Prometheus server for tests, holding deterministic, backfilled data.

The Debian ``prometheus`` binary is started on a free loopback port with a temporary data
directory. Data is written beforehand with ``promtool tsdb create-blocks-from openmetrics``
at fixed timestamps, so a query at a given ``time=`` always gives the same answer. Query at
those timestamps (pass them to the runner as its injected ``now``); retention is set to 100
years so that Prometheus never deletes the old blocks.

If ``prometheus`` or ``promtool`` is missing, the fixture FAILS (never skips) with a message
saying how to install them (``apt-get install prometheus``).

API
---
``Series(name, labels, samples)``
    One time series: metric name, label dict, ``[(time, value), ...]`` where time is an
    aware ``datetime`` or epoch seconds.
``traffic(flag, start=, end=, requests_per_minute=, error_percent=, p95_ms=, p99_ms=)``
    The series of one flag's HTTP traffic that :data:`QUERIES` reads: counters
    ``http_requests_total{flag=..., code="200"|"500"}`` and gauges
    ``rollout:http_request_duration_ms:p95{flag=...}`` / ``:p99``, one sample every 15 s from
    ``start`` to ``end`` inclusive. ``error_percent``, ``p95_ms`` and ``p99_ms`` are numbers
    or functions of the sample time (for "healthy, then a spike" scenarios).
``QUERIES``
    Gate name -> PromQL template (``flag``, ``window``) for ``error_rate`` (percent),
    ``request_count``, ``p95_latency_ms``, ``p99_latency_ms`` over :func:`traffic`'s series:
    put it in a plan's ``metrics.queries``.
``metrics_block(url, window="5m", timeout="5s")``
    The ``metrics:`` mapping of a plan using :data:`QUERIES` against that server (dump it
    into the plan's YAML; JSON is valid YAML).
``running_prometheus(series, workdir)``
    Context manager yielding a started :class:`PrometheusServer`; stops it on exit.
``scraping_prometheus(targets, workdir, interval="1s")``
    Context manager yielding a Prometheus without data that scrapes ``targets`` (job
    name -> metrics URL, a loopback server of the test) every ``interval``.
``PrometheusServer``
    ``.url`` (``http://127.0.0.1:PORT``), ``.stop()`` (stop it mid-test: queries then fail
    with connection refused), ``.running``, ``.query(promql, at)`` (the parsed JSON
    ``data`` of an instant query, to check a scenario).
pytest fixture ``prometheus``
    A factory: ``server = prometheus(series)`` starts a server with those series (an empty
    list: a server with no data); every server is stopped at teardown. Make it visible to
    your tests with ``from tests.prometheus_server import prometheus  # noqa: F401`` in a
    ``conftest.py``.

Example::

    start = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
    server = prometheus(traffic("checkout", start=start, end=start + timedelta(minutes=30),
                                requests_per_minute=600, error_percent=0.2, p95_ms=180))
    metrics = {"type": "prometheus", "url": server.url, "queries": QUERIES, "window": "5m"}
    # evaluate at now = start + timedelta(minutes=20): error_rate ~0.2, request_count ~3000
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest

INSTALL_HINT = "install the Debian package: apt-get install prometheus"
SAMPLE_INTERVAL = timedelta(seconds=15)
READY_TIMEOUT = 30.0

QUERIES: Mapping[str, str] = MappingProxyType({
    "error_rate": (
        '100 * sum(increase(http_requests_total{flag="{{ flag }}",code=~"5.."}[{{ window }}]))'
        ' / sum(increase(http_requests_total{flag="{{ flag }}"}[{{ window }}]))'
    ),
    "request_count": 'sum(increase(http_requests_total{flag="{{ flag }}"}[{{ window }}]))',
    "p95_latency_ms": 'max_over_time(rollout:http_request_duration_ms:p95{flag="{{ flag }}"}[{{ window }}])',
    "p99_latency_ms": 'max_over_time(rollout:http_request_duration_ms:p99{flag="{{ flag }}"}[{{ window }}])',
})


def metrics_block(url: str, window: str = "5m", timeout: str = "5s") -> dict[str, object]:
    """A plan's ``metrics:`` for :func:`traffic`'s series on the server at ``url``."""
    return {"type": "prometheus", "url": url, "queries": dict(QUERIES), "window": window,
            "timeout": timeout}


Number = float | int
TimeLike = datetime | float | int


@dataclass(frozen=True)
class Series:
    """One time series with its samples: ``Series("up", {"job": "x"}, [(t, 1.0), ...])``."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    samples: Sequence[tuple[TimeLike, Number]] = ()


def _epoch(t: TimeLike) -> float:
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError(f"{t!r}: use an aware datetime (tzinfo=UTC)")
        return t.timestamp()
    return float(t)


def _at(value: Number | Callable[[datetime], Number], t: datetime) -> float:
    return float(value(t) if callable(value) else value)


def traffic(flag: str, *, start: datetime, end: datetime, requests_per_minute: float,
            error_percent: Number | Callable[[datetime], Number] = 0.0,
            p95_ms: Number | Callable[[datetime], Number] = 100.0,
            p99_ms: Number | Callable[[datetime], Number] | None = None,
            interval: timedelta = SAMPLE_INTERVAL) -> list[Series]:
    """One flag's request counters and latency gauges, as :data:`QUERIES` expects them."""
    ok: list[tuple[TimeLike, Number]] = []
    errors: list[tuple[TimeLike, Number]] = []
    p95: list[tuple[TimeLike, Number]] = []
    p99: list[tuple[TimeLike, Number]] = []
    total_ok = total_err = 0.0
    per_sample = requests_per_minute * interval.total_seconds() / 60.0
    t = start
    first = True
    while t <= end:
        if not first:  # counters start at 0 and grow by what happened in the interval
            err = per_sample * _at(error_percent, t) / 100.0
            total_err += err
            total_ok += per_sample - err
        first = False
        ok.append((t, total_ok))
        errors.append((t, total_err))
        p95.append((t, _at(p95_ms, t)))
        p99.append((t, _at(p99_ms if p99_ms is not None else p95_ms, t)))
        t += interval
    return [
        Series("http_requests_total", {"flag": flag, "code": "200"}, ok),
        Series("http_requests_total", {"flag": flag, "code": "500"}, errors),
        Series("rollout:http_request_duration_ms:p95", {"flag": flag}, p95),
        Series("rollout:http_request_duration_ms:p99", {"flag": flag}, p99),
    ]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(series: Iterable[Series]) -> str:
    """The OpenMetrics text promtool backfills: samples grouped by metric, in time order."""
    lines: list[str] = []
    for s in sorted(series, key=lambda s: s.name):  # a metric's samples must be contiguous
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(s.labels.items()))
        selector = f"{s.name}{{{labels}}}" if labels else s.name
        for t, v in sorted(s.samples, key=lambda tv: _epoch(tv[0])):
            lines.append(f"{selector} {float(v)!r} {_epoch(t):.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PrometheusUnavailable(f"{name} not found on PATH: {INSTALL_HINT}")
    return path


class PrometheusUnavailable(RuntimeError):
    """The Prometheus binaries are missing or the server did not start."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusServer:
    """A started ``prometheus`` process. Use :func:`running_prometheus` or the fixture."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, data_dir: Path, log: Path) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.log = log

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s). Idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def query(self, promql: str, at: TimeLike) -> dict[str, object]:
        """An instant query at ``at``; returns the response's ``data``."""
        params = urllib.parse.urlencode({"query": promql, "time": f"{_epoch(at):.3f}"})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=10) as resp:
            body = json.load(resp)
        if body.get("status") != "success":
            raise AssertionError(f"query {promql!r} failed: {body}")
        return dict(body["data"])


def _start(workdir: Path, data_dir: Path, scrape: str = "scrape_configs: []\n",
           interval: str = "1h") -> PrometheusServer:
    config = workdir / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: {interval}\n{scrape}")
    log = workdir / "prometheus.log"
    binary = _binary("prometheus")
    last_problem = ""
    for _attempt in range(3):  # another test may take the free port between bind and listen
        port = _free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
                 "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}",
                 "--log.level=warn"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        server = PrometheusServer(process, port, data_dir, log)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return server
            except OSError:
                pass
            time.sleep(0.05)
        server.stop()
        last_problem = log.read_text(errors="replace")[-2000:]
        if "address already in use" not in last_problem:
            break
    raise PrometheusUnavailable(f"prometheus did not become ready; its log:\n{last_problem}")


def _backfill(series: Iterable[Series], workdir: Path) -> Path:
    """A fresh TSDB directory under ``workdir`` holding ``series``."""
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    data_dir.mkdir()
    series = list(series)
    if any(s.samples for s in series):  # promtool refuses an empty input; no data is an empty dir
        source = workdir / "backfill.om"
        source.write_text(openmetrics(series))
        done = subprocess.run([_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics",
                               str(source), str(data_dir)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PrometheusUnavailable(f"promtool backfill failed: {done.stderr or done.stdout}")
    return data_dir


@contextmanager
def scraping_prometheus(targets: Mapping[str, str], workdir: Path,
                        interval: str = "1s") -> Iterator[PrometheusServer]:
    """A Prometheus with no data that scrapes ``targets`` (job name -> URL of a metrics
    endpoint, e.g. a loopback HTTP server of the test) every ``interval``; stopped after.
    Query what it scraped with :meth:`PrometheusServer.query` at the current time."""
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    data_dir.mkdir()
    jobs = []
    for job, url in targets.items():
        parts = urllib.parse.urlsplit(url)
        jobs.append(f"  - job_name: {json.dumps(job)}\n    metrics_path: {json.dumps(parts.path)}\n"
                    f"    static_configs:\n      - targets: [{json.dumps(parts.netloc)}]\n")
    server = _start(workdir, data_dir, "scrape_configs:\n" + "".join(jobs), interval)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def running_prometheus(series: Iterable[Series], workdir: Path) -> Iterator[PrometheusServer]:
    """Backfill ``series`` into a fresh data dir under ``workdir``, start Prometheus, stop it after."""
    server = _start(workdir, _backfill(series, workdir))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[Iterable[Series]], PrometheusServer]]:
    """Factory: ``prometheus(series) -> PrometheusServer``; fails (never skips) without Prometheus."""
    servers: list[PrometheusServer] = []

    def start(series: Iterable[Series]) -> PrometheusServer:
        workdir = tmp_path / f"prometheus-{len(servers)}"
        try:
            server = _start(workdir, _backfill(series, workdir))
        except PrometheusUnavailable as e:
            problem = str(e)
        else:
            servers.append(server)
            return server
        pytest.fail(f"real Prometheus needed: {problem}", pytrace=False)

    yield start
    for server in servers:
        server.stop()
