"""A tiny local HTTP server speaking the Prometheus query API's answer shape.

Used only where a real Prometheus cannot show the behaviour: which headers the runner
sends (Prometheus does not check bearer tokens itself) and a server that answers too late.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Stub:
    url: str = ""
    #: The answer's JSON body and status.
    answer: Any = field(default_factory=lambda: {
        "status": "success", "data": {"resultType": "vector",
                                      "result": [{"metric": {}, "value": [0, "1"]}]}})
    status: int = 200
    delay: float = 0.0
    #: Every request seen: (path, headers dict, body text).
    seen: list[tuple[str, dict[str, str], str]] = field(default_factory=list)


@contextmanager
def prometheus_stub(**kw: Any) -> Iterator[Stub]:
    stub = Stub(**kw)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            stub.seen.append((self.path, dict(self.headers.items()), body))
            if stub.delay:
                time.sleep(stub.delay)
            payload = json.dumps(stub.answer).encode()
            try:
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (timeout test)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
