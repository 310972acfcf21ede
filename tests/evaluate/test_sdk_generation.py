"""Clients accept no older artifact (issue 17): a FlagClient on a URL (a real nginx on
loopback), on a file, on a checkout, and the OpenFeature provider, refuse an artifact whose
generation is lower than the one they serve, or equal with other content, or missing once
one was served; the last good flags stay, ``last_error`` names both generations, and
``allow_generation_reset=True`` accepts a rebuilt history.

The publications are ``rollout build`` output with ``generation`` and ``source_commit``
added, as publishing writes them (``generation`` is not part of the digest)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from runner import FlagClient
from runner.evaluate import ArtifactError, FlagSet, render_artifact, write_atomic
from runner.sdk.client import generation_refusal
from tests.evaluate.conftest import RepoWriter
from tests.evaluate.test_sdk_url import Events, Published, wait_for
from tests.nginx_server import NginxServer

MakeRepo = Callable[..., RepoWriter]
StartNginx = Callable[..., NginxServer]
POLL = 0.2
USERS = [{"targetingKey": f"user-{i}"} for i in range(2000)]


def publication(w: RepoWriter, generation: int | None, commit: str) -> bytes:
    """``rollout build``'s document for the checkout, published at ``commit`` as the
    ``generation``-th commit of the branch (None: no generation, as 0.2 wrote)."""
    doc = json.loads(render_artifact(w.load(), source_commit=None))
    doc["source_commit"] = commit
    if generation is not None:
        doc["generation"] = generation
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def checkout_repo(make_repo: MakeRepo, name: str = "repo") -> RepoWriter:
    w = make_repo(name)
    w.flag("checkout", risk="high", targeting={"users": ["canary-user-1"]})
    w.plan("checkout")
    return w


def rollout_at_5(w: RepoWriter, generation: int = 6) -> bytes:
    return publication(w.state("checkout", 5), generation, f"c{generation}")


def rolled_back(w: RepoWriter, generation: int = 7) -> bytes:
    return publication(w.state("checkout", 0, phase="rolled_back", step=0), generation,
                       f"c{generation}")


def switched_on(client: FlagClient) -> int:
    return sum(client.is_enabled("checkout", u) for u in USERS)


# --- the rule ---------------------------------------------------------------------------

def test_compiled_flags_carry_the_generation_and_refuse_a_bad_one(make_repo: MakeRepo) -> None:
    w = checkout_repo(make_repo).state("checkout", 5)
    assert FlagSet.from_bytes(publication(w, 7, "c7")).generation == 7
    assert FlagSet.from_bytes(publication(w, None, "c7")).generation is None
    assert FlagSet.from_bytes(render_artifact(w.load(), source_commit=None)).generation is None
    doc = json.loads(publication(w, 7, "c7"))
    for bad in (-1, 1.5, "7", True, [7], {"n": 7}):
        doc["generation"] = bad
        with pytest.raises(ArtifactError, match="generation"):
            FlagSet.from_bytes(json.dumps(doc).encode(), "flags.json")
    text = publication(w, 7, "c7").replace(b'"generation": 7', b'"generation": ' + b"9" * 5000)
    with pytest.raises(ArtifactError, match="too long"):  # never a bare ValueError
        FlagSet.from_bytes(text, "flags.json")
    big = 10**4000  # a whole number nonetheless: compared, and named in one line
    doc["generation"] = big
    assert FlagSet.from_bytes(json.dumps(doc).encode()).generation == big


def test_generation_refusal_table(make_repo: MakeRepo) -> None:
    w = checkout_repo(make_repo)
    five = {g: FlagSet.from_bytes(rollout_at_5(w, g)) for g in (6, 7)}
    back = {g: FlagSet.from_bytes(rolled_back(w, g)) for g in (6, 7, 8)}
    unpublished = FlagSet.from_bytes(publication(w, None, "x"))
    assert generation_refusal(back[7], back[8]) is None  # forward
    assert generation_refusal(back[7], back[7]) is None  # the same publication again
    assert generation_refusal(unpublished, five[6]) is None  # nothing ordered served yet
    assert generation_refusal(unpublished, unpublished) is None  # never a generation
    older = generation_refusal(back[7], five[6])
    assert older is not None and "generation 6" in older and "generation 7" in older
    assert "\n" not in older and "allow_generation_reset" in older
    same = generation_refusal(back[7], five[7])
    assert same is not None and "other content" in same and back[7].digest in same
    none = generation_refusal(back[7], unpublished)
    assert none is not None and "without a generation" in none and "generation 7" in none


# --- from_url, against a real HTTP server -----------------------------------------------

def test_a_replayed_older_artifact_is_refused_and_nobody_is_switched_back_on(
        make_repo: MakeRepo, tmp_path: Path, nginx: StartNginx,
        caplog: pytest.LogCaptureFixture) -> None:
    """The issue's case: a client serving the rollback (generation 7) is served the
    previous 5 % artifact (generation 6) by a stale edge; 2,000 users stay off."""
    w = checkout_repo(make_repo)
    at_5, back = rollout_at_5(w), rolled_back(w)
    published = Published(tmp_path / "public")
    published.publish(at_5)
    server = nginx(published.root)
    with FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={},
                             max_backoff=0.4) as client:
        assert client.generation == 6
        on_at_5 = switched_on(client)
        assert 60 < on_at_5 < 140  # about 5 % of 2,000
        published.publish(back)
        wait_for(lambda: client.generation == 7, "the rollback")
        assert switched_on(client) == 0

        with caplog.at_level(logging.ERROR, logger="runner.sdk"):
            published.publish(at_5)  # the replay
            wait_for(lambda: client.last_error is not None, "the replay refused")
            n = len(server.requests())
            wait_for(lambda: len(server.requests()) >= n + 2, "more looks at the replay")
        assert client.generation == 7 and client.source_commit == "c7"
        assert switched_on(client) == 0
        error = client.last_error
        assert error is not None and "\n" not in error
        assert "generation 6" in error and "generation 7" in error
        assert error.startswith(f"{server.url}/flags.json: ")
        assert client.staleness > 0.3  # a refused body is no successful look
        # said once for the streak, not once per look
        refusals = [r for r in caplog.records if "generation 6" in r.getMessage()]
        assert len(refusals) == 1, [r.getMessage() for r in refusals]
        # refused bodies are fetched in full again, never taken for unchanged (no 304)
        assert [r.status for r in server.requests()[n:]] == [200] * len(server.requests()[n:])

        published.publish(rolled_back(w, 8))  # the next publication is taken
        wait_for(lambda: client.generation == 8, "generation 8")
        assert client.last_error is None and switched_on(client) == 0


def test_equal_generation_other_content_and_a_missing_generation_are_refused(
        make_repo: MakeRepo, tmp_path: Path, nginx: StartNginx) -> None:
    w = checkout_repo(make_repo)
    back = rolled_back(w)
    published = Published(tmp_path / "public")
    published.publish(back)
    server = nginx(published.root)
    with FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={},
                             max_backoff=0.4) as client:
        published.publish(rollout_at_5(w, 7))  # generation 7 again, the flag at 5 %
        wait_for(lambda: client.last_error is not None, "refused")
        assert "generation 7 again" in client.last_error  # type: ignore[operator]
        assert switched_on(client) == 0
        published.publish(publication(w, None, "c9"))  # rollout build output (or 0.2)
        wait_for(lambda: "without a generation" in (client.last_error or ""), "refused")
        assert "generation 7" in client.last_error  # type: ignore[operator]
        assert switched_on(client) == 0 and client.generation == 7
        # the same publication again (another upload of the same bytes' content) is fine
        published.publish(rolled_back(w))
        wait_for(lambda: client.last_error is None, "the same publication accepted")
        assert client.generation == 7


def test_allow_generation_reset_accepts_a_rebuilt_history(
        make_repo: MakeRepo, tmp_path: Path, nginx: StartNginx) -> None:
    w = checkout_repo(make_repo)
    published = Published(tmp_path / "public")
    published.publish(rolled_back(w, 70))
    server = nginx(published.root)
    with FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={},
                             allow_generation_reset=True) as client:
        assert client.allow_generation_reset and client.generation == 70
        published.publish(rollout_at_5(w, 3))  # a rebuilt (squashed) history
        wait_for(lambda: client.generation == 3, "the lower generation")
        assert client.last_error is None and switched_on(client) > 0
        published.publish(publication(w, None, "unpublished"))
        wait_for(lambda: client.generation is None, "no generation")


def test_a_first_load_takes_any_generation_and_wait_false_too(
        make_repo: MakeRepo, tmp_path: Path, nginx: StartNginx) -> None:
    w = checkout_repo(make_repo)
    published = Published(tmp_path / "public")
    server = nginx(published.root)
    client = FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={},
                                 wait=False, max_backoff=0.4)
    try:
        published.publish(rollout_at_5(w, 2))
        wait_for(lambda: client.ready, "the first artifact")
        assert client.generation == 2
    finally:
        client.close()


# --- from_file, from_repo ---------------------------------------------------------------

def test_a_file_client_refuses_an_older_file_the_same_way(make_repo: MakeRepo,
                                                         tmp_path: Path) -> None:
    w = checkout_repo(make_repo)
    path = tmp_path / "flags.json"
    write_atomic(path, rolled_back(w))
    client = FlagClient.from_file(path, env={}, reload_interval=3600)
    assert client.generation == 7 and client.last_error is None
    write_atomic(path, rollout_at_5(w))
    assert client.reload() is False
    assert client.generation == 7 and switched_on(client) == 0
    error = client.last_error
    assert error is not None and error.startswith(f"{path}: ")
    assert "generation 6" in error and "generation 7" in error
    assert client.reload() is False and client.last_error == error  # the same file: same why
    write_atomic(path, rollout_at_5(w, 7))
    assert client.reload() is False and "generation 7 again" in (client.last_error or "")
    write_atomic(path, rolled_back(w, 8))
    assert client.reload() is True and client.generation == 8 and client.last_error is None

    reset = FlagClient.from_file(path, env={}, reload_interval=3600, allow_generation_reset=True)
    write_atomic(path, rollout_at_5(w, 1))
    assert reset.reload() is True and reset.generation == 1 and switched_on(reset) > 0


def test_a_file_is_looked_at_from_the_evaluation_path_and_still_refused(
        make_repo: MakeRepo, tmp_path: Path) -> None:
    w = checkout_repo(make_repo)
    path = tmp_path / "flags.json"
    write_atomic(path, rolled_back(w))
    client = FlagClient.from_file(path, env={}, reload_interval=0.01)
    write_atomic(path, rollout_at_5(w))
    # each evaluation may look (at most once per interval); the read happens on another thread
    wait_for(lambda: client.evaluate("checkout", USERS[0]) and client.last_error is not None,
             "refused")
    assert switched_on(client) == 0 and client.generation == 7


def test_a_checkout_has_no_generation_and_keeps_reloading(make_repo: MakeRepo) -> None:
    w = checkout_repo(make_repo).state("checkout", 5)
    client = FlagClient.from_repo(w.root, env={}, reload_interval=0.05)
    try:
        assert client.generation is None and switched_on(client) > 0
        w.state("checkout", 0, phase="rolled_back", step=0)
        wait_for(lambda: switched_on(client) == 0, "the rollback")
        w.state("checkout", 5)  # a checkout moved back by hand is what it serves
        wait_for(lambda: switched_on(client) > 0, "the checkout again")
        assert client.last_error is None
    finally:
        client.close()


# --- OpenFeature ------------------------------------------------------------------------

def test_the_provider_goes_stale_on_a_replay_and_ready_at_the_next_publication(
        make_repo: MakeRepo, tmp_path: Path, nginx: StartNginx) -> None:
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.provider import ProviderStatus

    from runner.openfeature import RolloutProvider

    w = checkout_repo(make_repo)
    published = Published(tmp_path / "public")
    published.publish(rolled_back(w))
    server = nginx(published.root)
    client = FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={},
                                 max_backoff=0.4)
    domain = f"rollout-{uuid.uuid4()}"
    of = api.get_client(domain)
    events = Events(of)
    try:
        api.set_provider(RolloutProvider(client, stale_after=0.6), domain=domain)
        wait_for(lambda: events.names() == ["PROVIDER_READY"], "READY")
        published.publish(rollout_at_5(w))
        wait_for(lambda: "PROVIDER_STALE" in events.names(), "STALE")
        assert of.get_provider_status() == ProviderStatus.STALE
        message = str(events.last("PROVIDER_STALE").message)  # type: ignore[attr-defined]
        assert "generation 6" in message and "generation 7" in message
        assert not any(of.get_boolean_value("checkout", True, EvaluationContext(u["targetingKey"]))
                       for u in USERS)
        published.publish(rolled_back(w, 8))
        wait_for(lambda: events.names()[-1] == "PROVIDER_READY", "READY again")
        assert events.names() == ["PROVIDER_READY", "PROVIDER_STALE", "PROVIDER_READY"]
    finally:
        api.clear_providers()


def test_the_provider_can_allow_a_generation_reset(make_repo: MakeRepo, tmp_path: Path) -> None:
    from runner.openfeature import RolloutProvider

    w = checkout_repo(make_repo)
    path = tmp_path / "flags.json"
    write_atomic(path, rolled_back(w))
    client = FlagClient.from_file(path, env={}, reload_interval=3600)
    assert RolloutProvider(client).client.allow_generation_reset is False
    RolloutProvider(client, allow_generation_reset=True)
    write_atomic(path, rollout_at_5(w))
    assert client.reload() is True and client.generation == 6


def test_a_url_client_nobody_holds_is_still_collected(make_repo: MakeRepo, tmp_path: Path,
                                                      nginx: StartNginx) -> None:
    """The source's say on each artifact (the client's rule) holds the client weakly: the
    poller's thread must not keep it alive."""
    import gc
    import weakref

    w = checkout_repo(make_repo)
    published = Published(tmp_path / "public")
    published.publish(rolled_back(w))
    server = nginx(published.root)
    client = FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={})
    poller = client._poller
    assert poller is not None and poller.thread is not None
    ref = weakref.ref(client)
    del client
    gc.collect()
    wait_for(lambda: ref() is None, "the client collected", timeout=5)
    wait_for(lambda: not poller.thread.is_alive(), "its thread ended")  # type: ignore[union-attr]
