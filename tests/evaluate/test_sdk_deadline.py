"""Whole-request deadlines of the SDK's URL source (issue 17): ``timeout`` bounds connecting,
the headers and the body together, so a server trickling its answer a byte a second is cut
at ``timeout`` (said in ``last_error``; the provider goes STALE), and ``close()`` returns
at once even while a poll is in flight. Against a real trickling server on loopback, which
stops itself (each answer at most ``TRICKLE_FOR`` seconds, the server at the test's end)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress

import pytest

from runner import FlagClient
from runner.evaluate import ArtifactError, render_artifact
from runner.evaluate.artifact import MAX_ARTIFACT_BYTES
from runner.remote import FetchError, UrlSource
from tests.evaluate.conftest import RepoWriter
from tests.evaluate.test_sdk_url import Events, wait_for

MakeRepo = Callable[..., RepoWriter]
#: The longest one trickled answer lasts: the server gives up after that whatever happens.
TRICKLE_FOR = 20.0


class TrickleServer:
    """An HTTP server on loopback answering each request as ``mode`` says at that moment:

    * ``ok``: the artifact, at once;
    * ``body``: the headers at once (``Content-Length`` the artifact's), then the body one
      byte a second;
    * ``headers``: the status line and headers one byte a second;
    * ``silent``: reads the request and says nothing;
    * ``cut``: the headers and half the body, then the connection closed.
    """

    def __init__(self, body: bytes):
        self.body = body
        self.mode = "ok"
        self.started = threading.Event()  # a trickled answer is under way
        self.requests = 0
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/flags.json"
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._answer, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(TRICKLE_FOR)
            head = b""
            with suppress(OSError):
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    head += chunk
            self.requests += 1
            mode = self.mode
            headers = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n").encode()
            with suppress(OSError):
                if mode == "ok":
                    conn.sendall(headers + self.body)
                elif mode == "cut":
                    conn.sendall(headers + self.body[: len(self.body) // 2])
                elif mode == "silent":
                    self.started.set()
                    self._stop.wait(TRICKLE_FOR)
                else:
                    slow = headers + self.body if mode == "headers" else self.body
                    if mode == "body":
                        conn.sendall(headers)
                    self.started.set()
                    deadline = time.monotonic() + TRICKLE_FOR
                    for i in range(len(slow)):  # a closed client ends it (send fails)
                        if self._stop.is_set() or time.monotonic() > deadline:
                            return
                        conn.sendall(slow[i:i + 1])
                        self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        self._accepting.join(5)
        for t in self._threads:
            t.join(5)


@pytest.fixture
def trickle(make_repo: MakeRepo) -> Iterator[TrickleServer]:
    w = make_repo().flag("feature", percentage=100)
    server = TrickleServer(render_artifact(w.load(), source_commit="v1"))
    yield server
    server.stop()


@pytest.mark.parametrize("mode", ["body", "headers", "silent"])
def test_a_trickling_or_silent_answer_is_cut_at_the_timeout(trickle: TrickleServer,
                                                              mode: str) -> None:
    trickle.mode = mode
    source = UrlSource(trickle.url, timeout=1.5, max_bytes=MAX_ARTIFACT_BYTES)
    start = time.monotonic()
    with pytest.raises(FetchError) as e:
        source.get()
    elapsed = time.monotonic() - start
    # a byte a second: without the deadline, no read would ever time out (20 s and more)
    assert 1.4 <= elapsed < 4.5, elapsed
    assert str(e.value) == (f"{trickle.url}: timed out after 1.5 s (the whole request: "
                            "connecting, the headers and the body)")
    trickle.mode = "ok"
    got = source.get()  # the next request has its own deadline
    assert got is not None and got[0] == trickle.body


def test_a_client_keeps_its_flags_says_why_and_the_provider_goes_stale(
        trickle: TrickleServer) -> None:
    from openfeature import api
    from openfeature.provider import ProviderStatus

    from runner.openfeature import RolloutProvider

    client = FlagClient.from_url(trickle.url, poll_interval=0.2, timeout=1.0, env={},
                                 max_backoff=0.4)
    domain = f"rollout-{uuid.uuid4()}"
    of = api.get_client(domain)
    events = Events(of)
    try:
        api.set_provider(RolloutProvider(client, stale_after=1.5), domain=domain)
        wait_for(lambda: events.names() == ["PROVIDER_READY"], "READY")
        trickle.mode = "body"
        start = time.monotonic()
        wait_for(lambda: client.last_error is not None, "the cut", timeout=10)
        assert time.monotonic() - start < 5.0
        assert "timed out after 1 s (the whole request" in client.last_error  # type: ignore[operator]
        assert client.is_enabled("feature", {"targetingKey": "u"})  # the last good flags
        wait_for(lambda: "PROVIDER_STALE" in events.names(), "STALE", timeout=15)
        assert of.get_provider_status() == ProviderStatus.STALE
        assert "timed out" in str(events.last("PROVIDER_STALE").message)  # type: ignore[attr-defined]
        trickle.mode = "ok"
        wait_for(lambda: events.names()[-1] == "PROVIDER_READY", "READY again", timeout=15)
        assert client.last_error is None
    finally:
        api.clear_providers()


@pytest.mark.parametrize("mode", ["body", "silent"])
def test_close_returns_at_once_while_a_poll_is_in_flight(trickle: TrickleServer,
                                                         mode: str) -> None:
    client = FlagClient.from_url(trickle.url, poll_interval=0.2, timeout=8.0, env={})
    trickle.mode = mode
    trickle.started.clear()
    assert trickle.started.wait(10), "no poll reached the server"
    start = time.monotonic()
    client.close()
    elapsed = time.monotonic() - start
    assert elapsed < 3.0, elapsed  # far within the 8 s timeout: the request was cut
    poller = client._poller
    assert poller is not None and poller.thread is not None and not poller.thread.is_alive()
    assert client.last_error is None  # a cut by close() is not a failure of the source
    assert client.is_enabled("feature", {"targetingKey": "u"})  # the flags stay served


def test_a_trickled_first_load_raises_within_the_timeout(trickle: TrickleServer) -> None:
    trickle.mode = "body"
    start = time.monotonic()
    with pytest.raises(ArtifactError, match=r"timed out after 1\.5 s"):
        FlagClient.from_url(trickle.url, timeout=1.5, env={})
    assert time.monotonic() - start < 5.0


def test_a_body_cut_short_is_refused_not_taken_as_it_is(trickle: TrickleServer) -> None:
    trickle.mode = "cut"
    source = UrlSource(trickle.url, timeout=5, max_bytes=MAX_ARTIFACT_BYTES)
    with pytest.raises(FetchError, match=r"the body ended early \(\d+ of \d+ bytes"):
        source.get()


def test_a_servers_reason_phrase_never_writes_a_control_character_into_a_message() -> None:
    """The reason phrase of an HTTP status line is the server's text: escaped in the
    FetchError (and so in `last_error`, the log line and the exception a first load raises)."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    def serve() -> None:
        with suppress(OSError):
            while True:
                conn, _ = sock.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 503 \x1b[31mgone\xe2\x80\xae\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    try:
        with pytest.raises(FetchError) as caught:
            UrlSource(f"http://127.0.0.1:{port}/flags.json", timeout=3,
                      max_bytes=MAX_ARTIFACT_BYTES).get()
        message = str(caught.value)
        assert "HTTP 503" in message and "\\x1b[31mgone" in message
        assert message.isprintable() and "\x1b" not in message and "\x80" not in message
    finally:
        sock.close()
