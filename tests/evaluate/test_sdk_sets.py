"""The SDK's side of flag sets and compressed delivery: a gzip copy served by a real nginx
(``gzip_static``) is read and bounded (a decompression bomb is refused, never inflated
past the artifact cap), and ``ROLLOUT_FLAG_SET`` points the default client at a set."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

import runner.sdk.sources as sources
from runner import FlagClient
from runner.evaluate import ArtifactError, render_artifact, write_atomic
from runner.sdk import default_client, set_default_client
from tests.evaluate.conftest import RepoWriter
from tests.nginx_server import NginxServer

MakeRepo = Callable[..., RepoWriter]
StartNginx = Callable[..., NginxServer]
U = {"targetingKey": "u"}


def _publication(make_repo: MakeRepo, folder: Path) -> None:
    """A whole artifact and a set ``small`` of one flag, each with its gzip copy."""
    w = make_repo("whole").flag("feature", percentage=100).flag("other", percentage=0)
    whole = render_artifact(w.load(), source_commit=None)
    small = render_artifact(make_repo("small").flag("feature", percentage=100).load(),
                            source_commit=None)
    for path, data in ((folder / "flags.json", whole),
                       (folder / "sets/small/flags.json", small)):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
        write_atomic(path.with_name(path.name + ".gz"), gzip.compress(data, mtime=0))


def test_a_gzip_copy_is_read_and_a_decompression_bomb_is_refused(
        make_repo: MakeRepo, nginx: StartNginx, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    public = tmp_path / "public"
    _publication(make_repo, public)
    server = nginx(public)
    with FlagClient.from_url(f"{server.url}/flags.json", set="small", env={}) as client:
        assert client.flag_keys() == ["feature"] and client.is_enabled("feature", U)
    (req,) = server.requests()
    assert req.uri == "/sets/small/flags.json" and req.status == 200
    assert req.body_bytes == (public / "sets/small/flags.json.gz").stat().st_size
    # a copy that inflates far past the cap: refused once the cap is passed
    monkeypatch.setattr(sources, "MAX_ARTIFACT_BYTES", 100_000)
    bomb = gzip.compress(b" " * 50_000_000, mtime=0)
    assert len(bomb) < 100_000  # its own size passes the Content-Length check
    write_atomic(public / "flags.json.gz", bomb)
    with pytest.raises(ArtifactError, match="larger than 100000 bytes"):
        FlagClient.from_url(f"{server.url}/flags.json", env={})


def test_rollout_flag_set_points_the_default_client_at_a_set(
        make_repo: MakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    public = tmp_path / "public"
    _publication(make_repo, public)
    monkeypatch.setenv("ROLLOUT_FLAGS_FILE", str(public / "flags.json"))
    monkeypatch.delenv("ROLLOUT_FLAGS_URL", raising=False)
    try:
        set_default_client(None)
        assert default_client().flag_keys() == ["feature", "other"]
        monkeypatch.setenv("ROLLOUT_FLAG_SET", "small")
        set_default_client(None)
        assert default_client().flag_keys() == ["feature"]
        assert default_client().source == str(public / "sets/small/flags.json")
        monkeypatch.setenv("ROLLOUT_FLAG_SET", "../small")
        set_default_client(None)
        with caplog.at_level(logging.ERROR, logger="runner.sdk"):
            assert default_client().value("feature", U, "dflt") == "dflt"
        assert any("ROLLOUT_FLAG_SET" in r.getMessage() for r in caplog.records)
    finally:
        set_default_client(None)
