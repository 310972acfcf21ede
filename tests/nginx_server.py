"""A real static web server for tests: Debian's ``nginx`` serving a folder.

``nginx`` is started as the current user on a free loopback port (127.0.0.1 only), in the
foreground (``daemon off;``), with a temporary prefix holding its configuration, pid file,
error and access logs and temporary folders: nothing outside the test's folder is touched.
When the current user is root, the workers run as root too (nginx would otherwise switch
them to ``nobody``, who cannot read a test's private folder).

If ``nginx`` is missing, the fixture FAILS (never skips) with a message saying how to
install it (``apt-get install nginx``).

API
---
``NginxServer``
    ``.url`` (``http://127.0.0.1:PORT``), ``.root`` (the folder served at ``/``),
    ``.stop()`` (stop it mid-test: requests then fail with connection refused),
    ``.start()`` (start it again, same port and configuration), ``.running``,
    ``.requests()`` (the access log so far, as :class:`Request` records; what was served,
    with status and bytes), ``.error_log`` (its path).
``Request``
    One access log line: ``method``, ``uri``, ``status``, ``body_bytes`` (the body sent),
    ``bytes_sent`` (headers included), ``if_none_match``, ``if_modified_since``,
    ``authorization`` (``""`` when none was sent), ``user_agent``.
``running_nginx(root, workdir, extra_config="", gzip=False)``
    Context manager yielding a started server; stops it on exit.
pytest fixture ``nginx``
    A factory: ``server = nginx(root)`` (same keyword arguments) starts a server on a
    folder; every server is stopped at teardown. Make it visible to your tests with
    ``from tests.nginx_server import nginx  # noqa: F401`` in a ``conftest.py``.

``extra_config`` is pasted into the ``server`` block: ``location`` blocks for redirects or
a token check, say. ``gzip=True`` compresses JSON responses (then nginx's ETags are weak).
``gzip_static`` is always on (Debian's nginx has the module): a client that accepts gzip is
served ``NAME.gz`` when it exists beside ``NAME`` (as a ``dir:`` publication writes them),
with ``Content-Encoding: gzip`` and that file's own strong ``ETag``.

Example::

    server = nginx(published)               # published/flags.json
    client = FlagClient.from_url(f"{server.url}/flags.json", poll_interval=0.2)
    ...
    assert {r.status for r in server.requests()} == {200, 304}
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

INSTALL_HINT = "install the Debian package: apt-get install nginx"
READY_TIMEOUT = 30.0
_FIELDS = ("method", "uri", "status", "body_bytes", "bytes_sent", "if_none_match",
           "if_modified_since", "authorization", "user_agent")
_SEP = "\x1f"  # never in a line nginx logs: it escapes control characters (and quotes)
_ESCAPED = re.compile(r"\\x([0-9A-Fa-f]{2})")


class NginxUnavailable(RuntimeError):
    """The nginx binary is missing or the server did not start."""


@dataclass(frozen=True)
class Request:
    """One request, as the access log has it."""

    method: str
    uri: str
    status: int
    body_bytes: int
    bytes_sent: int
    if_none_match: str
    if_modified_since: str
    authorization: str
    user_agent: str


def _binary() -> str:
    path = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
    if path is None:
        raise NginxUnavailable(f"nginx not found on PATH: {INSTALL_HINT}")
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _user_directive() -> str:
    if os.geteuid() != 0:
        return ""  # nginx runs as whoever starts it
    import grp
    import pwd

    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    return f"user {user} {group};"


def _config(prefix: Path, root: Path, port: int, extra: str, gzip: bool) -> str:
    fields = _SEP.join(["$request_method", "$request_uri", "$status", "$body_bytes_sent",
                        "$bytes_sent", "$http_if_none_match", "$http_if_modified_since",
                        "$http_authorization", "$http_user_agent"])
    gzip_block = ("gzip on; gzip_types application/json; gzip_min_length 1; gzip_proxied any;"
                  if gzip else "gzip off;")
    return f"""
{_user_directive()}
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    types {{ application/json json; text/plain txt; }}
    default_type application/octet-stream;
    log_format tests escape=default '{fields}';
    access_log {prefix}/access.log tests;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    sendfile on;
    etag on;
    if_modified_since exact;
    {gzip_block}
    gzip_static on;
    gzip_vary on;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {root};
        location = /__ready {{ access_log off; return 204; }}
        {extra}
    }}
}}
"""


class NginxServer:
    """A configured ``nginx``; :meth:`start` runs it. Use :func:`running_nginx` or the fixture."""

    def __init__(self, root: Path, prefix: Path, *, extra_config: str = "", gzip: bool = False):
        self.root = Path(root).resolve()
        self.prefix = Path(prefix).resolve()
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        self.access_log = self.prefix / "access.log"
        self.error_log = self.prefix / "error.log"
        self.config = self.prefix / "nginx.conf"
        self._extra = extra_config
        self._gzip = gzip
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start (or start again, on the same port) and wait until it answers."""
        if self.running:
            return
        binary = _binary()
        attempts = 1 if self.port else 3  # a restart keeps its port
        problem = ""
        for _attempt in range(attempts):
            port = self.port or _free_port()
            self.config.write_text(_config(self.prefix, self.root, port, self._extra,
                                           self._gzip))
            out = (self.prefix / "stderr.log").open("ab")
            with out:
                self.process = subprocess.Popen(
                    [binary, "-p", f"{self.prefix}/", "-c", str(self.config),
                     "-e", str(self.error_log)],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            self.port, self.url = port, f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    with urllib.request.urlopen(f"{self.url}/__ready", timeout=1) as resp:
                        if resp.status == 204:
                            return
                except OSError:
                    pass
                time.sleep(0.02)
            self.stop()
            problem = self._logs()
            if "Address already in use" not in problem or attempts == 1:
                break
            self.port = 0
        raise NginxUnavailable(f"nginx did not become ready; its logs:\n{problem}")

    def _logs(self) -> str:
        text = ""
        for path in (self.prefix / "stderr.log", self.error_log):
            if path.exists():
                text += path.read_text(errors="replace")[-2000:]
        return text

    def stop(self) -> None:
        """Stop the server (fast shutdown, then SIGKILL after 10 s). Idempotent."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def requests(self) -> list[Request]:
        """Every request logged so far (the readiness probe is not logged)."""
        if not self.access_log.exists():
            return []
        out = []
        for line in self.access_log.read_text(errors="replace").splitlines():
            values = line.split(_SEP)
            if len(values) != len(_FIELDS):
                continue
            v = ["" if x == "-" else _ESCAPED.sub(lambda m: chr(int(m[1], 16)), x)
                 for x in values]
            out.append(Request(v[0], v[1], int(v[2]), int(v[3] or 0), int(v[4] or 0), v[5],
                               v[6], v[7], v[8]))
        return out


@contextmanager
def running_nginx(root: Path, workdir: Path, *, extra_config: str = "",
                  gzip: bool = False) -> Iterator[NginxServer]:
    """Serve ``root`` from a server whose files live in ``workdir``; stop it after."""
    server = NginxServer(root, workdir, extra_config=extra_config, gzip=gzip)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[..., NginxServer]]:
    """Factory: ``nginx(root, extra_config="", gzip=False) -> NginxServer``; fails (never
    skips) without nginx."""
    servers: list[NginxServer] = []

    def start(root: Path, *, extra_config: str = "", gzip: bool = False) -> NginxServer:
        server = NginxServer(root, tmp_path / f"nginx-{len(servers)}",
                             extra_config=extra_config, gzip=gzip)
        servers.append(server)
        try:
            server.start()
        except NginxUnavailable as e:
            problem = str(e)
        else:
            return server
        pytest.fail(f"real nginx needed: {problem}", pytrace=False)

    yield start
    for server in servers:
        server.stop()
