"""Clients with a public key: only an artifact that the publication's signature
(``flags.sig``) signs is served. A signed ``rollout publish --to dir:`` served by a real
nginx; a tampered artifact, an older artifact swapped in beside the newer signature, a
missing signature: each refused like a bad artifact (the last good flags stay,
``last_error`` says why). Files likewise. Verification at load only."""

from __future__ import annotations

import gzip
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner import FlagClient
from runner.evaluate import ArtifactError
from runner.signing import new_keypair, sign_publication
from tests.conftest import git, run_cli
from tests.evaluate.test_sdk_url import Events, wait_for
from tests.nginx_server import NginxServer

StartNginx = Callable[..., NginxServer]
PRIVATE, PUBLIC = new_keypair()
OTHER_PRIVATE, OTHER_PUBLIC = new_keypair()
VAR = "ROLLOUT_SIGNING_KEY"
POLL = 0.2
FLAG = "phase_4_deployment"


def signed_repo(repo: Path) -> Path:
    with (repo / "pyproject.toml").open("a") as f:
        f.write(f'\n[tool.rollout.publish]\nsigning_key_env = "{VAR}"\n')
    git(repo, "commit", "-qam", "sign publications")
    return repo


def publish(repo: Path, public: Path, key: str = PRIVATE) -> None:
    out = run_cli(["publish", "--to", f"dir:{public}"], cwd=repo, env={VAR: key})
    assert out.returncode == 0, out.stdout + out.stderr
    # nginx's validators have a one-second resolution: each publication its own time
    later = time.time() + 100 * _bump()
    for name in ("flags.json", "flags.flagd.json", "flags.sig", "flags.json.gz",
                 "flags.flagd.json.gz"):  # nginx serves the .gz copy to a client asking gzip
        os.utime(public / name, (later, later))


_bumps = [0]


def _bump() -> int:
    """A new number each call: seconds ahead for the next file's modification time."""
    _bumps[0] += 1
    return _bumps[0]


def shut_down(repo: Path) -> None:
    """A commit that changes what is served: every flag at its default."""
    text = (repo / "pyproject.toml").read_text().replace(
        "[tool.rollout]\n", "[tool.rollout]\nemergency_shutdown = true\n", 1)
    (repo / "pyproject.toml").write_text(text)
    git(repo, "commit", "-qam", "emergency shutdown")


def replace(path: Path, data: bytes) -> None:
    """Swap what is served at ``path``: the file, and its gzip copy when one is beside it
    (nginx serves the copy to clients that ask for gzip, as the SDK does)."""
    packed = path.with_name(path.name + ".gz")
    later = time.time() + 100 * _bump()
    for where, content in ((packed, gzip.compress(data, mtime=0)), (path, data)):
        if where == packed and not packed.exists():
            continue
        tmp = where.with_name(where.name + ".tmp")
        tmp.write_bytes(content)
        os.utime(tmp, (later, later))
        tmp.rename(where)


def served_signed(example_repo: Path, tmp_path: Path, nginx: StartNginx
                  ) -> tuple[Path, Path, Any, FlagClient]:
    """A signed publication of the example repository served by nginx, and a client of it
    holding the public key: (repository, published folder, server, client)."""
    repo, public = signed_repo(example_repo), tmp_path / "public"
    publish(repo, public)
    server = nginx(public)
    client = FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={},
                                 max_backoff=0.4, public_key=PUBLIC)
    return repo, public, server, client


def test_a_signed_folder_served_by_nginx_and_what_is_refused(
        example_repo: Path, tmp_path: Path, nginx: StartNginx) -> None:
    repo, public, server, client = served_signed(example_repo, tmp_path, nginx)
    try:
        first = client.digest
        assert client.ready and client.last_error is None
        assert client.source_commit == git(repo, "rev-parse", "HEAD")
        # unchanged polls are 304s of the artifact, and fetch no signature
        wait_for(lambda: sum(r.uri == "/flags.json" and r.status == 304
                             for r in server.requests()) >= 3, "three 304s")
        assert [r.status for r in server.requests() if r.uri == "/flags.sig"] == [200]

        # a served change, signed: picked up, its signature fetched fresh (not conditional)
        older = (public / "flags.json").read_bytes()
        shut_down(repo)
        publish(repo, public)
        wait_for(lambda: client.digest != first, "the new publication")
        newer = client.digest
        sig_requests = [r for r in server.requests() if r.uri == "/flags.sig"]
        assert len(sig_requests) >= 2 and all(r.status == 200 and not r.if_none_match
                                              and not r.if_modified_since
                                              for r in sig_requests)

        # a replay: the older flags.json swapped in beside the newer signature
        replace(public / "flags.json", older)
        wait_for(lambda: client.last_error is not None, "the replay refused")
        assert "refused" in client.last_error and "flags.json is not the file signed" \
            in client.last_error, client.last_error
        assert client.digest == newer

        # a tampered artifact: one byte changed
        doc = json.loads(older)
        doc["flags"][FLAG]["enabled"] = not doc["flags"][FLAG]["enabled"]
        replace(public / "flags.json", json.dumps(doc).encode())
        wait_for(lambda: client._poller.failures >= 3, "polls of the tampered artifact")
        assert client.digest == newer and "not the file signed" in str(client.last_error)

        # the signature gone (a server that drops it): refused too
        shut = (public / "flags.sig").read_bytes()
        (public / "flags.sig").unlink()
        replace(public / "flags.json", older)
        wait_for(lambda: "no signature" in str(client.last_error), "refused: no signature")
        assert client.digest == newer

        # back to a good pair: served again
        (public / "flags.sig").write_bytes(shut)
        publish(repo, public)
        wait_for(lambda: client.last_error is None, "good again")
        assert client.digest == newer
    finally:
        client.close()
    # a client with another key never starts on it
    with pytest.raises(ArtifactError, match="does not verify"):
        FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL,
                            public_key=OTHER_PUBLIC, timeout=2)
    # rotation: a client with both keys accepts it
    FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL,
                        public_key=[OTHER_PUBLIC, PUBLIC]).close()


def test_an_unsigned_folder_is_refused_by_a_client_with_a_key(
        example_repo: Path, tmp_path: Path, nginx: StartNginx) -> None:
    public = tmp_path / "public"
    assert run_cli(["publish", "--to", f"dir:{public}"], cwd=example_repo).returncode == 0
    server = nginx(public)
    url = f"{server.url}/flags.json"
    with pytest.raises(ArtifactError, match=r"refused: no signature .*HTTP 404"):
        FlagClient.from_url(url, poll_interval=POLL, public_key=PUBLIC, timeout=2)
    client = FlagClient.from_url(url, poll_interval=POLL, public_key=PUBLIC, wait=False)
    try:
        assert not client.ready and "no signature" in str(client.last_error)
        assert client.is_enabled(FLAG, {"targetingKey": "u"}) is False  # the caller's default
    finally:
        client.close()
    FlagClient.from_url(url, poll_interval=POLL).close()  # without a key: served as ever


def test_openfeature_provider_goes_stale_on_a_refused_signature(
        example_repo: Path, tmp_path: Path, nginx: StartNginx) -> None:
    from openfeature import api
    from openfeature.provider import ProviderStatus

    from runner.openfeature import RolloutProvider

    repo, public, _server, client = served_signed(example_repo, tmp_path, nginx)
    provider = RolloutProvider(client, stale_after=0.8)
    domain = f"rollout-{uuid.uuid4()}"
    of = api.get_client(domain)
    events = Events(of)
    try:
        api.set_provider(provider, domain=domain)
        wait_for(lambda: events.names() == ["PROVIDER_READY"], "READY")
        before = of.get_boolean_value(FLAG, False, None)
        sign_other = sign_publication({"flags.json": (public / "flags.json").read_bytes()},
                                      generation=1, source_commit="x",
                                      private_key_b64=OTHER_PRIVATE)
        replace(public / "flags.sig", sign_other)
        shut_down(repo)  # a new artifact, signed by a key the client does not have
        out = run_cli(["publish", "--to", f"dir:{public}"], cwd=repo,
                      env={VAR: OTHER_PRIVATE})
        assert out.returncode == 0, out.stderr
        later = time.time() + 1000
        for name in ("flags.json", "flags.json.gz", "flags.sig"):
            os.utime(public / name, (later, later))
        wait_for(lambda: "PROVIDER_STALE" in events.names(), "STALE")
        assert of.get_provider_status() == ProviderStatus.STALE
        assert "does not verify" in str(events.last("PROVIDER_STALE").message)  # type: ignore[attr-defined]
        assert of.get_boolean_value(FLAG, False, None) == before  # the last good flags
    finally:
        api.clear_providers()


# --- files ----------------------------------------------------------------------------


def test_from_file_with_a_key(example_repo: Path, tmp_path: Path) -> None:
    repo, public = signed_repo(example_repo), tmp_path / "public"
    publish(repo, public)
    path = public / "flags.json"
    client = FlagClient.from_file(path, public_key=PUBLIC, reload_interval=0.0, env={})
    first = client.digest
    assert client.ready and first
    older, older_sig = path.read_bytes(), (public / "flags.sig").read_bytes()
    # a tampered file: refused at the reload, the last good flags stay
    doc = json.loads(older)
    doc["flags"][FLAG]["enabled"] = not doc["flags"][FLAG]["enabled"]
    replace(path, json.dumps(doc).encode())
    assert client.reload() is False and client.digest == first
    # the new publication's artifact before its signature (a reader between two renames):
    # refused, then served when the signature arrives
    shut_down(repo)
    staging = tmp_path / "staging"
    publish(repo, staging)
    replace(path, (staging / "flags.json").read_bytes())
    assert client.reload() is False and client.digest == first
    replace(public / "flags.sig", (staging / "flags.sig").read_bytes())
    assert client.reload() is True and client.digest != first
    # the older artifact swapped back in beside the newer signature: refused
    newer = client.digest
    replace(path, older)
    assert client.reload() is False and client.digest == newer
    # the first load: refused outright, or defaults with wait=False
    with pytest.raises(ArtifactError, match="not the file signed"):
        FlagClient.from_file(path, public_key=PUBLIC)
    (public / "flags.sig").unlink()
    with pytest.raises(ArtifactError, match=r"refused: no signature \(flags.sig"):
        FlagClient.from_file(path, public_key=PUBLIC)
    waiting = FlagClient.from_file(path, public_key=PUBLIC, wait=False, reload_interval=0.0)
    assert not waiting.ready
    replace(public / "flags.sig", older_sig)
    assert waiting.reload() is True and waiting.digest == first
    # a file not named flags.json: NAME.sig beside it; rotation: either key
    other = tmp_path / "prod.json"
    other.write_bytes(older)
    (tmp_path / "prod.json.sig").write_bytes(older_sig)
    assert FlagClient.from_file(other, public_key=[OTHER_PUBLIC, PUBLIC]).digest == first
    with pytest.raises(ValueError, match="public key"):
        FlagClient.from_file(other, public_key="too short")


def test_verification_is_at_load_never_per_evaluation(
        example_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import runner.signing as signing

    repo, public = signed_repo(example_repo), tmp_path / "public"
    publish(repo, public)
    calls = []
    real = signing.verify_publication
    monkeypatch.setattr(signing, "verify_publication",
                        lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    client = FlagClient.from_file(public / "flags.json", public_key=PUBLIC)
    for i in range(2000):
        client.is_enabled(FLAG, {"targetingKey": f"u{i}"})
    assert calls == [1]
