"""The deadline of one whole HTTP exchange over urllib: connecting, the headers and the body.

urllib bounds each socket operation, not the exchange: a server that trickles one byte a
second never times out. An :class:`Exchange` holds the sockets of one request (a redirect's
included) and shuts them down when its deadline passes or it is aborted, so that a read
blocked anywhere returns at once; each connection opened is given only the time left.
Used by the SDK's artifact reader (``runner/remote.py``) and the Prometheus gate source.
A side module: standard library only, importing none of the layers.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

__all__ = ["Exchange", "handlers"]


class Exchange:
    """The sockets of one request and its deadline. When the deadline passes (or the
    request is aborted) they are shut down, so that a read blocked in the middle of the
    headers or a trickling body returns at once; a connection opened later (a redirect)
    gets only the time left."""

    def __init__(self, timeout: float):
        self.deadline = time.monotonic() + timeout
        self.sockets: list[socket.socket] = []
        self.expired = False  # the deadline passed, or abort()
        self.aborted = False
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.001)

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self.sockets.append(sock)
            if self.expired:
                self._shut(sock)

    def expire(self, *, aborted: bool = False) -> None:
        with self._lock:
            self.expired = True
            self.aborted = self.aborted or aborted
            for sock in self.sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The request's deadline, armed while the block runs."""
        timer = threading.Timer(self.remaining(), self.expire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()


def handlers(exchange: Exchange) -> list[urllib.request.BaseHandler]:
    """urllib's HTTP and HTTPS handlers, each connection given the time left and handing
    its socket to ``exchange`` (which shuts it down at the deadline)."""

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.timeout = exchange.remaining()  # of each operation: never past the deadline
            super().connect()
            exchange.add(self.sock)

    class TlsConnection(http.client.HTTPSConnection):
        def connect(self) -> None:
            self.timeout = exchange.remaining()
            super().connect()
            exchange.add(self.sock)

    class Plain(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Connection, req)

    class Tls(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            # the context HTTPSHandler made (undocumented, so not in typeshed's stub)
            return self.do_open(TlsConnection, req, context=self._context)  # type: ignore[attr-defined]

    return [Plain(), Tls()]
