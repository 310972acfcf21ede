"""Real HTTP receivers on loopback for the notification tests: a webhook receiver that
records what it is sent, a socket that accepts and never answers, a closed port, and a fake
of the few GitHub REST API calls ``rollout issue`` makes."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    status: int = 200
    #: The answer's body; "{path}" is replaced by the request's path (a receiver that echoes
    #: what it was sent, as some do in their error pages).
    answer: str = "ok"
    #: Answer only once this many requests are open at the same time (0: at once).
    barrier: int = 0
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def receiver(**kw: Any) -> Iterator[Receiver]:
    rec = Receiver(**kw)
    gate = threading.Barrier(rec.barrier) if rec.barrier else None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with rec.lock:
                rec.seen.append(Seen(self.path, dict(self.headers.items()), body))
            if gate is not None:
                gate.wait(timeout=30)
            payload = rec.answer.replace("{path}", self.path).encode()
            self.send_response(rec.status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Silent:
    """A listening socket that accepts connections and never answers, until released."""

    url: str
    accepted: threading.Event
    release: threading.Event
    #: Whether a connection was still held, unanswered, when the test looked.
    connections: list[socket.socket]


@contextmanager
def silent_receiver() -> Iterator[Silent]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    s = Silent(f"http://127.0.0.1:{listener.getsockname()[1]}/hook", threading.Event(),
               threading.Event(), [])

    def accept() -> None:
        listener.settimeout(0.2)
        while not s.release.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            s.connections.append(conn)
            s.accepted.set()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield s
    finally:
        s.release.set()
        t.join()
        for c in s.connections:
            c.close()
        listener.close()


def closed_port_url() -> str:
    """A URL on a loopback port nothing listens on (connections are refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/hook"


@dataclass
class FakeGitHub:
    url: str = ""
    token: str = ""
    issues: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    unauthorized: int = 0


@contextmanager
def fake_github(token: str, repository: str = "acme/flags") -> Iterator[FakeGitHub]:
    """The list issues (labels filter), create issue, list and create comments endpoints of
    the GitHub REST API, for ``repository``, requiring ``Bearer token``."""
    gh = FakeGitHub(token=token)
    base = f"/repos/{repository}"

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, doc: Any) -> None:
            payload = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {gh.token}":
                gh.unauthorized += 1
                self._send(401, {"message": "Bad credentials"})
                return False
            return True

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            gh.calls.append(("GET", parts.path))
            if not self._authorized():
                return
            q = parse_qs(parts.query)
            page, per = int(q.get("page", ["1"])[0]), int(q.get("per_page", ["30"])[0])
            if parts.path == f"{base}/issues":
                labels = set(q.get("labels", [""])[0].split(","))
                found = [i for i in gh.issues if i["state"] == q.get("state", ["open"])[0]
                         and labels <= {lb["name"] for lb in i["labels"]}]
            elif m := re.fullmatch(rf"{base}/issues/(\d+)/comments", parts.path):
                found = gh.comments.get(int(m[1]), [])
            else:
                self._send(404, {"message": "Not Found"})
                return
            self._send(200, found[(page - 1) * per: page * per])

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            gh.calls.append(("POST", parts.path))
            if not self._authorized():
                return
            doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if parts.path == f"{base}/issues":
                number = len(gh.issues) + 1
                issue = {"number": number, "title": doc["title"], "body": doc.get("body"),
                         "state": "open", "labels": [{"name": n} for n in doc.get("labels", [])]}
                gh.issues.append(issue)
                self._send(201, issue)
            elif m := re.fullmatch(rf"{base}/issues/(\d+)/comments", parts.path):
                comment = {"id": len(gh.calls), "body": doc["body"]}
                gh.comments.setdefault(int(m[1]), []).append(comment)
                self._send(201, comment)
            else:
                self._send(404, {"message": "Not Found"})

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    gh.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield gh
    finally:
        server.shutdown()
        server.server_close()
