"""FlagClient.from_url against a real nginx serving published files: conditional polls,
outages, corrupt bodies, tokens and redirects, on_change, close; from_repo hot reload; the
ROLLOUT_FLAGS_URL default client. Waits are loops with generous deadlines, never sleeps
that must be long enough."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import runner.sdk.sources as sources
from runner import FlagClient
from runner.evaluate import ArtifactError, render_artifact, write_atomic
from runner.sdk import changed_keys
from tests.conftest import PROJECT, cli_env
from tests.evaluate.conftest import RepoWriter
from tests.nginx_server import NginxServer

MakeRepo = Callable[..., RepoWriter]
StartNginx = Callable[..., NginxServer]
U = {"targetingKey": "u"}
POLL = 0.2


def _artifact(make_repo: MakeRepo, name: str, **color_fields: object) -> bytes:
    w = make_repo(name).flag("feature", percentage=50, targeting={"users": ["vip"]})
    w.flag("color", variants={"red": "r", "blue": "b"}, default_variant="red",
           rollout_variant="blue", **color_fields)
    w.flag("gated", percentage=100, requires=["color"])
    return render_artifact(w.load(), source_commit=name)


class Published:
    """A published folder: ``flags.json`` written atomically, each version with its own
    modification time (nginx's ETag and Last-Modified have a one-second resolution)."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / "flags.json"
        self._mtime = time.time() - 10_000

    def publish(self, data: bytes, name: str = "flags.json") -> None:
        path = self.root / name
        write_atomic(path, data)
        self._mtime += 5
        os.utime(path, (self._mtime, self._mtime))

    def corrupt(self, data: bytes) -> None:
        self.path.write_bytes(data)
        self._mtime += 5
        os.utime(self.path, (self._mtime, self._mtime))


def wait_for(cond: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def published(tmp_path: Path) -> Published:
    return Published(tmp_path / "public")


def test_from_url_loads_then_unchanged_polls_are_304s_and_a_change_is_served(
        make_repo: MakeRepo, published: Published, nginx: StartNginx) -> None:
    published.publish(_artifact(make_repo, "v1"))
    server = nginx(published.root)
    with FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={}) as client:
        assert client.ready and client.source_commit == "v1"
        assert client.value("color", U) == "r" and client.is_enabled("feature", {"targetingKey": "vip"})
        wait_for(lambda: len(server.requests()) >= 5, "a few polls")
        first, *polls = server.requests()
        assert (first.status, first.if_none_match) == (200, "")
        assert first.body_bytes == published.path.stat().st_size
        assert first.user_agent.startswith("rollout-runner-sdk/")
        assert {r.status for r in polls} == {304}
        assert all(r.body_bytes == 0 and r.bytes_sent < 1024 for r in polls), polls
        assert all(r.if_none_match and r.if_modified_since for r in polls)
        assert client.staleness < 5

        published.publish(_artifact(make_repo, "v2", percentage=100))
        wait_for(lambda: client.value("color", U) == "b", "the new artifact")
        assert client.source_commit == "v2" and client.is_enabled("gated", U)
        n = len(server.requests())
        wait_for(lambda: len(server.requests()) >= n + 3, "polls after the change")
        after = server.requests()
        assert [r.status for r in after].count(200) == 2  # one full body per version
        assert after[-1].status == 304


def test_nginx_down_keeps_the_last_good_flags_staleness_grows_and_restart_catches_up(
        make_repo: MakeRepo, published: Published, nginx: StartNginx,
        caplog: pytest.LogCaptureFixture) -> None:
    published.publish(_artifact(make_repo, "v1"))
    server = nginx(published.root)
    client = FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={},
                                 max_backoff=1.0)
    try:
        with caplog.at_level(logging.DEBUG, logger="runner.sdk"):
            server.stop()
            wait_for(lambda: client.staleness > 1.5 and client._poller.failures >= 3,
                     "failed polls while nginx is down")
            assert client.value("color", U) == "r" and client.ready
            assert client.last_error is not None and "cannot reach" in client.last_error
            assert "Connection refused" in client.last_error
            published.publish(_artifact(make_repo, "v2", percentage=100))
            stale = client.staleness
            server.start()
            wait_for(lambda: client.value("color", U) == "b", "catching up after the restart")
        assert client.staleness < stale and client.last_error is None
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]  # once per failure streak
        assert "keeping the last good flags" in errors[0].getMessage()
        assert any("back after" in r.getMessage() for r in caplog.records)
    finally:
        client.close()


def test_a_corrupt_or_oversized_body_keeps_the_last_good_flags(
        make_repo: MakeRepo, published: Published, nginx: StartNginx,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    v1 = _artifact(make_repo, "v1")
    published.publish(v1)
    server = nginx(published.root)
    client = FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={},
                                 max_backoff=0.5)
    try:
        with caplog.at_level(logging.WARNING, logger="runner.sdk"):
            published.corrupt(v1[: len(v1) // 2])
            wait_for(lambda: client._poller.failures >= 3, "polls of the corrupt body")
            assert client.value("color", U) == "r" and "not valid JSON" in str(client.last_error)
            # a refused body's validators are not kept: it is fetched again, never a 304
            bodies = [r for r in server.requests()[1:] if r.body_bytes]
            assert len(bodies) >= 3 and all(r.status == 200 for r in bodies)
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1, [r.getMessage() for r in errors]
            published.publish(_artifact(make_repo, "v2", percentage=100))
            wait_for(lambda: client.value("color", U) == "b", "the good artifact after the bad")
    finally:
        client.close()
    monkeypatch.setattr(sources, "MAX_ARTIFACT_BYTES", 1000)
    with pytest.raises(ArtifactError, match="larger than 1000 bytes"):
        FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL)


def test_a_failed_first_load_raises_or_serves_defaults_until_flags_arrive(
        make_repo: MakeRepo, published: Published, nginx: StartNginx) -> None:
    server = nginx(published.root)
    url = f"{server.url}/flags.json"
    with pytest.raises(ArtifactError, match="HTTP 404"):
        FlagClient.from_url(url, poll_interval=POLL)
    n = len(server.requests())
    time.sleep(3 * POLL)
    assert len(server.requests()) == n  # closed: no more polls from that client

    client = FlagClient.from_url(url, poll_interval=POLL, env={}, wait=False, max_backoff=0.4)
    try:
        seen: list[frozenset[str]] = []
        client.on_change(seen.append)
        assert not client.ready and "HTTP 404" in str(client.last_error)
        r = client.evaluate("color", U, "fallback")
        assert (r.value, r.reason, r.error_code) == ("fallback", "ERROR", "PROVIDER_NOT_READY")
        assert url in r.details
        published.publish(_artifact(make_repo, "v1"))
        wait_for(lambda: client.ready, "the first good artifact")
        assert client.value("color", U) == "r"
        wait_for(lambda: seen, "on_change")
        assert seen == [frozenset({"feature", "color", "gated"})]  # all added
    finally:
        client.close()
    with pytest.raises(ValueError, match="http"):
        FlagClient.from_url(f"file://{published.path}")


def test_on_change_gets_the_changed_keys_and_a_raising_callback_is_only_logged(
        make_repo: MakeRepo, published: Published, nginx: StartNginx,
        caplog: pytest.LogCaptureFixture) -> None:
    published.publish(_artifact(make_repo, "v1"))
    server = nginx(published.root)
    client = FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={})
    seen: list[frozenset[str]] = []
    lock = threading.Lock()

    def broken(keys: frozenset[str]) -> None:
        raise RuntimeError("a bug in the application's callback")

    def record(keys: frozenset[str]) -> None:
        with lock:
            seen.append(keys)

    client.on_change(broken)
    assert client.on_change(record) is record
    try:
        with caplog.at_level(logging.ERROR, logger="runner.sdk"):
            # color's split changes; gated requires color: its answers may change too
            published.publish(_artifact(make_repo, "v2", percentage=100))
            wait_for(lambda: seen, "the first change")
            assert seen[0] == {"color", "gated"}
            # a new commit serving the same flags: reloaded (source_commit), no change
            w = make_repo("v3").flag("feature", percentage=50, targeting={"users": ["vip"]})
            w.flag("color", variants={"red": "r", "blue": "b"}, default_variant="red",
                   rollout_variant="blue", percentage=100)
            w.flag("gated", percentage=100, requires=["color"])
            published.publish(render_artifact(w.load(), source_commit="v3"))
            wait_for(lambda: client.source_commit == "v3", "the new commit")
            w.flag("brand_new", percentage=0)
            (w.root / "flags" / "feature.yaml").unlink()
            published.publish(render_artifact(w.load(), source_commit="v4"))
            wait_for(lambda: len(seen) >= 2, "the second change")
        assert seen == [{"color", "gated"}, {"brand_new", "feature"}]
        assert any("a bug in the application's callback" in (r.exc_text or "")
                   for r in caplog.records)
    finally:
        client.close()


def test_changed_keys_unit(make_repo: MakeRepo) -> None:
    from runner.evaluate.compile import FlagSet

    def flags(name: str, **color: object) -> FlagSet:
        return FlagSet.from_bytes(_artifact(make_repo, name, **color))

    a, b = flags("a"), flags("b", targeting={"rules": [
        {"attribute": "plan", "equals": "pro", "variant": "blue"}]})
    assert changed_keys(None, a) == {"feature", "color", "gated"}
    assert changed_keys(a, flags("a2")) == frozenset()
    assert changed_keys(a, b) == {"color", "gated"}
    killed = FlagSet(dict(a.flags), emergency_shutdown=True, digest="x", source_commit=None)
    assert changed_keys(a, killed) == {"feature", "color", "gated"}


def test_close_stops_polling_and_is_idempotent(
        make_repo: MakeRepo, published: Published, nginx: StartNginx) -> None:
    published.publish(_artifact(make_repo, "v1"))
    server = nginx(published.root)
    client = FlagClient.from_url(f"{server.url}/flags.json", poll_interval=0.05, env={})
    wait_for(lambda: len(server.requests()) >= 3, "polls")
    assert client._poller is not None
    thread = client._poller.thread
    assert thread is not None and thread.is_alive() and thread.daemon
    client.close()
    assert not thread.is_alive()
    n = len(server.requests())
    time.sleep(0.5)
    assert len(server.requests()) == n
    client.close()
    assert client.value("color", U) == "r"  # what was loaded is still served


def test_no_io_on_the_evaluation_path_and_jittered_backed_off_schedule(
        make_repo: MakeRepo, published: Published, nginx: StartNginx,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.remote import UrlSource

    published.publish(_artifact(make_repo, "v1"))
    server = nginx(published.root)
    fetched_in: list[str] = []
    real_get = UrlSource.get

    def observed(self: UrlSource) -> object:
        fetched_in.append(threading.current_thread().name)
        return real_get(self)

    monkeypatch.setattr(UrlSource, "get", observed)
    client = FlagClient.from_url(f"{server.url}/flags.json", poll_interval=0.05, env={})
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            client.is_enabled("feature", U)
            client.evaluate("color", U)
        assert len(fetched_in) >= 3
        assert set(fetched_in) == {f"rollout-flags-poll {server.url}/flags.json"}
    finally:
        client.close()
    # the schedule: the interval less up to 15 % (never more: pickup within one interval),
    # doubled per failure, capped, Retry-After honoured
    assert client._poller is not None
    schedule = dataclasses.replace(client._poller.schedule, interval=30.0, max_backoff=300.0)
    delays = [schedule.next_delay(0, None) for _ in range(50)]
    assert all(25.5 <= d <= 30.0 for d in delays) and len(set(delays)) > 40
    for failures, base in ((1, 30), (2, 60), (3, 120), (4, 240), (5, 300), (40, 300)):
        assert all(base * 0.85 <= schedule.next_delay(failures, None) <= base for _ in range(20))
    assert schedule.next_delay(1, 200.0) >= 170


def test_bearer_token_goes_to_its_origin_only_and_is_never_logged(
        make_repo: MakeRepo, published: Published, nginx: StartNginx, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    published.publish(_artifact(make_repo, "v1"))
    other = nginx(published.root)  # another origin (another port)
    guarded = f"""
        location = /private/flags.json {{
            if ($http_authorization != "Bearer s3cret-token") {{ return 401; }}
            alias {published.root}/flags.json;
        }}
        location = /moved.json {{ return 302 /private/flags.json; }}
        location = /elsewhere.json {{ return 302 {other.url}/flags.json; }}
    """
    server = nginx(published.root, extra_config=guarded)
    monkeypatch.setenv("FLAGS_TOKEN", "s3cret-token")
    with caplog.at_level(logging.DEBUG):
        for path in ("/private/flags.json", "/moved.json"):
            with FlagClient.from_url(f"{server.url}{path}?sig=abc", poll_interval=POLL, env={},
                                     bearer_token_env="FLAGS_TOKEN") as client:
                assert client.value("color", U) == "r"
                assert client.source == f"{server.url}{path}?…"
        with FlagClient.from_url(f"{server.url}/elsewhere.json", poll_interval=POLL, env={},
                                 bearer_token_env="FLAGS_TOKEN") as client:
            assert client.value("color", U) == "r"
        with pytest.raises(ArtifactError, match="HTTP 401"):
            FlagClient.from_url(f"{server.url}/private/flags.json", poll_interval=POLL)
        monkeypatch.setenv("FLAGS_TOKEN", "wrong")
        with pytest.raises(ArtifactError, match="HTTP 401"):
            FlagClient.from_url(f"{server.url}/private/flags.json", poll_interval=POLL,
                                bearer_token_env="FLAGS_TOKEN")
        monkeypatch.delenv("FLAGS_TOKEN")
        with pytest.raises(ArtifactError, match=r"\$FLAGS_TOKEN .* is not set"):
            FlagClient.from_url(f"{server.url}/private/flags.json", poll_interval=POLL,
                                bearer_token_env="FLAGS_TOKEN")
    private = [r for r in server.requests() if r.uri.startswith("/private/")]
    assert {r.authorization for r in private if r.status == 200} == {"Bearer s3cret-token"}
    moved = [r for r in server.requests() if r.uri.startswith("/moved.json")]
    assert moved and all(r.status == 302 for r in moved)
    assert {r.authorization for r in other.requests()} == {""}  # never across origins
    assert all("s3cret" not in r.getMessage() and "sig=abc" not in r.getMessage()
               for r in caplog.records)


def test_gzip_responses_are_read_and_stay_conditional(
        make_repo: MakeRepo, published: Published, nginx: StartNginx) -> None:
    published.publish(_artifact(make_repo, "v1"))
    server = nginx(published.root, gzip=True)
    with FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={}) as client:
        assert client.value("color", U) == "r"
        wait_for(lambda: len(server.requests()) >= 3, "polls")
        first, *polls = server.requests()
        assert first.body_bytes < published.path.stat().st_size  # compressed
        assert {r.status for r in polls} == {304}
        published.publish(_artifact(make_repo, "v2", percentage=100))
        wait_for(lambda: client.value("color", U) == "b", "the new artifact")


# --- from_repo hot reload ----------------------------------------------------------------

def test_from_repo_hot_reloads_and_keeps_the_last_good_state(
        make_repo: MakeRepo, caplog: pytest.LogCaptureFixture) -> None:
    w = make_repo().flag("color", variants={"red": "r", "blue": "b"}, default_variant="red",
                         rollout_variant="blue", percentage=0)
    w.flag("feature", percentage=100)
    client = FlagClient.from_repo(w.root, env={}, reload_interval=0.05)
    seen: list[frozenset[str]] = []
    client.on_change(seen.append)
    try:
        assert client.value("color", U) == "r" and client.poll_interval == 0.05
        w.flag("color", variants={"red": "r", "blue": "b"}, default_variant="red",
               rollout_variant="blue", percentage=100)
        wait_for(lambda: client.value("color", U) == "b", "the edited flag")
        assert seen == [{"color"}]
        with caplog.at_level(logging.ERROR, logger="runner.sdk"):
            (w.root / "flags" / "color.yaml").write_text("key: color\nvariants: [oops\n")
            wait_for(lambda: client.last_error is not None, "the invalid edit")
            time.sleep(0.3)
            assert client.value("color", U) == "b"
        refused = [r.getMessage() for r in caplog.records if "not a valid repository" in r.getMessage()]
        assert len(refused) == 1, refused
        w.flag("color", variants={"red": "r", "blue": "b"}, default_variant="red",
               rollout_variant="blue", percentage=0)
        wait_for(lambda: client.value("color", U) == "r", "the fixed flag")
        assert client.last_error is None
        w.flag("extra", percentage=100)
        wait_for(lambda: client.is_enabled("extra", U), "a new flag file")
    finally:
        client.close()
    static = FlagClient.from_repo(w.root, env={}, reload_interval=None)
    assert static._poller is None and static.is_enabled("extra", U)


# --- the module-level default client -----------------------------------------------------

SCRIPT = """
import json, sys, time, runner, runner.sdk
client = runner.sdk.default_client()
print(json.dumps([client.source, runner.value('color', {'targetingKey': 'u'}, 'none')]), flush=True)
want, deadline = sys.argv[1], time.monotonic() + 30
while runner.value('color', {'targetingKey': 'u'}, 'none') != want:
    if time.monotonic() > deadline:
        sys.exit('never served ' + want)
    time.sleep(0.02)
"""


def test_rollout_flags_url_configures_the_default_client(
        make_repo: MakeRepo, published: Published, nginx: StartNginx, tmp_path: Path) -> None:
    published.publish(_artifact(make_repo, "v1"))
    server = nginx(published.root)
    url = f"{server.url}/flags.json"
    other = tmp_path / "other.json"
    write_atomic(other, _artifact(make_repo, "file", percentage=100))

    def run(env: dict[str, str], want: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", SCRIPT, want], env=cli_env(env),
                              cwd=PROJECT, capture_output=True, text=True, timeout=60)

    out = run({"ROLLOUT_FLAGS_URL": url, "ROLLOUT_POLL_INTERVAL": "0.1"}, "r")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[0]) == [url, "r"]
    # both set: the URL wins, and says so
    out = run({"ROLLOUT_FLAGS_URL": url, "ROLLOUT_FLAGS_FILE": str(other)}, "r")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[0]) == [url, "r"]
    assert "ROLLOUT_FLAGS_URL" in out.stderr and "ignoring ROLLOUT_FLAGS_FILE" in out.stderr
    # unreachable: defaults, then the flags once they are served
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, "b"], cwd=PROJECT, text=True,
                            env=cli_env({"ROLLOUT_FLAGS_URL": f"{server.url}/later.json",
                                         "ROLLOUT_POLL_INTERVAL": "0.1"}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    assert first == [f"{server.url}/later.json", "none"]
    published.publish(_artifact(make_repo, "v2", percentage=100), name="later.json")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "HTTP 404" in err
    out = run({"ROLLOUT_FLAGS_URL": "ftp://example.com/flags.json"}, "none")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[0])[1] == "none" and "http" in out.stderr


# --- OpenFeature events ------------------------------------------------------------------

class Events:
    """Every event an OpenFeature client's handlers receive, in order."""

    def __init__(self, of_client: object):
        from openfeature.event import ProviderEvent

        self.seen: list[tuple[str, object]] = []
        self._lock = threading.Lock()
        for event in ProviderEvent:
            of_client.add_handler(event, self._handler(event.value))  # type: ignore[attr-defined]

    def _handler(self, name: str) -> Callable[[object], None]:
        from runner.openfeature import PROVIDER_NAME

        def handle(details: object) -> None:
            # not the immediate READY of the no-op provider the client had before ours
            if getattr(details, "provider_name", None) == PROVIDER_NAME:
                with self._lock:
                    self.seen.append((name, details))
        return handle

    def names(self) -> list[str]:
        with self._lock:
            return [n for n, _ in self.seen]

    def last(self, name: str) -> object:
        with self._lock:
            return next(d for n, d in reversed(self.seen) if n == name)


def test_openfeature_events_follow_the_source(
        make_repo: MakeRepo, published: Published, nginx: StartNginx) -> None:
    import uuid

    from openfeature import api
    from openfeature.provider import ProviderStatus

    from runner.openfeature import RolloutProvider

    published.publish(_artifact(make_repo, "v1"))
    server = nginx(published.root)
    client = FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={},
                                 max_backoff=0.4)
    provider = RolloutProvider(client, stale_after=0.8)
    domain = f"rollout-{uuid.uuid4()}"
    of = api.get_client(domain)
    events = Events(of)
    try:
        api.set_provider(provider, domain=domain)
        wait_for(lambda: events.names() == ["PROVIDER_READY"], "READY")
        assert of.get_provider_status() == ProviderStatus.READY
        assert of.get_string_value("color", "x", None) == "r"

        published.publish(_artifact(make_repo, "v2", percentage=100))
        wait_for(lambda: "PROVIDER_CONFIGURATION_CHANGED" in events.names(), "CHANGED")
        changed = events.last("PROVIDER_CONFIGURATION_CHANGED")
        assert changed.flags_changed == ["color", "gated"]  # type: ignore[attr-defined]
        assert of.get_string_value("color", "x", None) == "b"

        server.stop()
        wait_for(lambda: "PROVIDER_STALE" in events.names(), "STALE")
        assert of.get_provider_status() == ProviderStatus.STALE
        assert client.staleness >= 0.8
        assert of.get_string_value("color", "x", None) == "b"  # the last good flags
        assert "cannot reach" in str(events.last("PROVIDER_STALE").message)  # type: ignore[attr-defined]
        server.start()
        wait_for(lambda: events.names()[-1] == "PROVIDER_READY", "READY again")
        assert of.get_provider_status() == ProviderStatus.READY
        assert events.names() == ["PROVIDER_READY", "PROVIDER_CONFIGURATION_CHANGED",
                                  "PROVIDER_STALE", "PROVIDER_READY"]
    finally:
        api.clear_providers()
    wait_for(lambda: client._poller is not None and client._poller.thread is not None
             and not client._poller.thread.is_alive(),
             "shutdown closing the client")


def test_openfeature_error_when_the_first_load_fails_then_ready(
        make_repo: MakeRepo, published: Published, nginx: StartNginx) -> None:
    import uuid

    from openfeature import api
    from openfeature.exception import ErrorCode
    from openfeature.provider import ProviderStatus

    from runner.openfeature import RolloutProvider

    server = nginx(published.root)
    client = FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={},
                                 wait=False, max_backoff=0.4)
    domain = f"rollout-{uuid.uuid4()}"
    of = api.get_client(domain)
    events = Events(of)
    try:
        api.set_provider(RolloutProvider(client), domain=domain)
        wait_for(lambda: events.names() == ["PROVIDER_ERROR"], "ERROR")
        error = events.last("PROVIDER_ERROR")
        assert error.error_code == ErrorCode.PROVIDER_NOT_READY  # type: ignore[attr-defined]
        assert "HTTP 404" in str(error.message)  # type: ignore[attr-defined]
        assert of.get_provider_status() == ProviderStatus.ERROR
        d = of.get_string_details("color", "fallback", None)
        assert (d.value, d.error_code) == ("fallback", ErrorCode.PROVIDER_NOT_READY)

        published.publish(_artifact(make_repo, "v1"))
        wait_for(lambda: events.names() == ["PROVIDER_ERROR", "PROVIDER_READY"], "READY")
        assert of.get_provider_status() == ProviderStatus.READY
        assert of.get_string_value("color", "x", None) == "r"
        # later changes are CONFIGURATION_CHANGED, not READY again
        published.publish(_artifact(make_repo, "v2", percentage=100))
        wait_for(lambda: len(events.names()) == 3, "CHANGED")
        assert events.names()[-1] == "PROVIDER_CONFIGURATION_CHANGED"
    finally:
        api.clear_providers()


def test_openfeature_configuration_changed_for_a_hot_reloaded_checkout(
        make_repo: MakeRepo) -> None:
    import uuid

    from openfeature import api

    from runner.openfeature import RolloutProvider

    w = make_repo().flag("feature", percentage=0)
    client = FlagClient.from_repo(w.root, env={}, reload_interval=0.05)
    domain = f"rollout-{uuid.uuid4()}"
    of = api.get_client(domain)
    events = Events(of)
    try:
        api.set_provider(RolloutProvider(client), domain=domain)
        wait_for(lambda: events.names() == ["PROVIDER_READY"], "READY")
        assert of.get_boolean_value("feature", True, None) is False
        w.flag("feature", percentage=100)
        wait_for(lambda: "PROVIDER_CONFIGURATION_CHANGED" in events.names(), "CHANGED")
        assert events.last("PROVIDER_CONFIGURATION_CHANGED").flags_changed == ["feature"]  # type: ignore[attr-defined]
        assert of.get_boolean_value("feature", False, None) is True
    finally:
        api.clear_providers()
