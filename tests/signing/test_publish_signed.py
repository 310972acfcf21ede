"""Signed publications: with ``[tool.rollout.publish] signing_key_env`` every target holds a
``flags.sig`` (``NAME.sig`` beside a ``file:`` target) that verifies with the public key;
the key is checked before anything is published and never printed or written. Real git,
the CLI in this process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from runner.signing import new_keypair, verify_publication
from tests.conftest import git, run_cli
from tests.runner.helpers import advance, write_metrics

pytestmark = pytest.mark.cli_inprocess

PRIVATE, PUBLIC = new_keypair()
VAR = "ROLLOUT_SIGNING_KEY"


def configure_signing(repo: Path, var: str = VAR) -> None:
    with (repo / "pyproject.toml").open("a") as f:
        f.write(f'\n[tool.rollout.publish]\nsigning_key_env = "{var}"\n')
    git(repo, "commit", "-qam", "sign publications")


def _generation(repo: Path, rev: str = "HEAD") -> int:
    return int(git(repo, "rev-list", "--count", "--first-parent", rev))


def _check_folder(folder: Path, repo: Path, keys: tuple[str, ...] = (PUBLIC,)) -> dict:
    sig = (folder / "flags.sig").read_bytes()
    files = {n: (folder / n).read_bytes() for n in ("flags.json", "flags.flagd.json")}
    verify_publication(sig, files, keys)
    doc = json.loads(sig)
    source = json.loads(files["flags.json"])["source_commit"]
    assert doc["source_commit"] == source
    assert doc["generation"] == _generation(repo, source)
    return doc


def test_every_target_is_signed_and_an_unchanged_publication_keeps_its_signature(
        example_repo: Path, tmp_path: Path) -> None:
    configure_signing(example_repo)
    write_metrics(example_repo)
    env = {VAR: PRIVATE}
    public, single = tmp_path / "public", tmp_path / "single" / "prod.json"
    single.parent.mkdir()
    targets = ["--publish", f"dir:{public}", "--publish", "branch:rollout-published",
               "--publish", f"file:{single}"]
    out = advance(example_repo, 0, *targets, env=env)
    assert out.returncode == 0, out.stderr
    assert f"published dir:{public}: flags.json, flags.flagd.json, flags.sig" in out.stdout
    assert sorted(p.name for p in public.iterdir()) == ["flags.flagd.json", "flags.flagd.json.gz",
                                                        "flags.json", "flags.json.gz",
                                                        "flags.sig"]
    _check_folder(public, example_repo)
    # the branch's tree holds the three files, the signature over the other two
    tree = git(example_repo, "ls-tree", "--name-only", "rollout-published").splitlines()
    assert sorted(tree) == ["flags.flagd.json", "flags.json", "flags.sig"]
    shown = {n: subprocess.run(["git", "show", f"rollout-published:{n}"], cwd=example_repo,
                               capture_output=True, check=True).stdout for n in tree}
    verify_publication(shown["flags.sig"], {n: shown[n] for n in ("flags.json",
                                                                  "flags.flagd.json")}, [PUBLIC])
    # a file: target signs the native artifact alone, in NAME.sig beside it
    file_sig = single.with_name("prod.json.sig").read_bytes()
    verify_publication(file_sig, {"flags.json": single.read_bytes()}, [PUBLIC])
    assert list(json.loads(file_sig)["files"]) == ["flags.json"]
    # nothing served changed: nothing rewritten, the signature included (Ed25519 is
    # deterministic), no new branch commit
    before = (public / "flags.sig").stat()
    tip = git(example_repo, "rev-parse", "rollout-published")
    (example_repo / "NOTES.md").write_text("unrelated\n")
    git(example_repo, "add", "NOTES.md")
    git(example_repo, "commit", "-qm", "unrelated change")
    out = advance(example_repo, 1, *targets, env=env)
    assert out.returncode == 0, out.stderr
    assert f"dir:{public} unchanged" in out.stdout and f"{single} unchanged" in out.stdout
    assert (public / "flags.sig").stat().st_ino == before.st_ino
    assert git(example_repo, "rev-parse", "rollout-published") == tip
    # a step: the three files replaced together, the signature naming the new commit
    out = advance(example_repo, 5, *targets, env=env)
    assert out.returncode == 0, out.stderr
    doc = _check_folder(public, example_repo)
    assert doc["source_commit"] == git(example_repo, "rev-parse", "HEAD")
    assert doc["generation"] == _generation(example_repo)


def test_a_new_key_rewrites_only_the_signature(example_repo: Path, tmp_path: Path) -> None:
    configure_signing(example_repo)
    public = tmp_path / "public"
    assert run_cli(["publish", "--to", f"dir:{public}"], cwd=example_repo,
                   env={VAR: PRIVATE}).returncode == 0
    inodes = {n: (public / n).stat().st_ino for n in ("flags.json", "flags.flagd.json")}
    new_private, new_public = new_keypair()
    out = run_cli(["publish", "--to", f"dir:{public}"], cwd=example_repo,
                  env={VAR: new_private})
    assert out.returncode == 0, out.stderr
    assert f"published dir:{public}: flags.sig" in out.stdout
    assert {n: (public / n).stat().st_ino for n in inodes} == inodes
    _check_folder(public, example_repo, (new_public,))
    _check_folder(public, example_repo, (PUBLIC, new_public))  # clients during a rotation


@pytest.mark.parametrize("value, why", [
    (None, "is not set or empty"),
    ("", "is not set or empty"),
    ("c2VjcmV0LW5vdC1hLWtleQ==", "no usable Ed25519 private key"),
    ("this is not base64 at all!", "no usable Ed25519 private key"),
])
def test_an_unusable_key_is_a_usage_error_before_anything_is_published(
        example_repo: Path, tmp_path: Path, value: str | None, why: str) -> None:
    configure_signing(example_repo)
    write_metrics(example_repo)
    env = {} if value is None else {VAR: value}
    public = tmp_path / "public"
    head = git(example_repo, "rev-parse", "HEAD")
    for out in (run_cli(["publish", "--to", f"dir:{public}"], cwd=example_repo, env=env),
                advance(example_repo, 0, "--publish", f"dir:{public}", env=env)):
        assert out.returncode == 2, out.stdout + out.stderr
        assert VAR in out.stderr and why in out.stderr
        if value:
            assert value not in out.stdout + out.stderr
    assert not public.exists()
    assert git(example_repo, "rev-parse", "HEAD") == head  # the run did not start


def test_the_key_is_never_printed_nor_written(example_repo: Path, tmp_path: Path) -> None:
    configure_signing(example_repo)
    write_metrics(example_repo)
    git(example_repo, "branch", "people-work", "main")  # not a publication branch: refused
    public = tmp_path / "public"
    out = advance(example_repo, 0, "--publish", "branch:people-work", "--publish",
                  f"dir:{public}", env={VAR: PRIVATE, "ROLLOUT_DEBUG": "1"})
    assert out.returncode == 1, out.stdout + out.stderr
    assert "not a publication branch" in out.stderr
    assert PRIVATE not in out.stdout + out.stderr
    for path in public.iterdir():
        assert PRIVATE.encode() not in path.read_bytes()
    objects = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"],
                             cwd=example_repo, capture_output=True, check=True).stdout
    assert PRIVATE.encode() not in objects
    assert PRIVATE not in git(example_repo, "log", "--all", "--format=%B")


def test_the_config_field_is_validated_at_its_line(example_repo: Path) -> None:
    with (example_repo / "pyproject.toml").open("a") as f:
        f.write('\n[tool.rollout.publish]\nsigning_key_env = "1 BAD"\nkey = "x"\n')
    lines = (example_repo / "pyproject.toml").read_text().splitlines()
    at = lines.index('signing_key_env = "1 BAD"') + 1
    out = run_cli(["validate"], cwd=example_repo)
    assert out.returncode == 1
    assert (f"pyproject.toml:{at}:1: tool.rollout.publish.signing_key_env: '1 BAD' is not an "
            "environment variable name") in out.stdout, out.stdout
    assert f"pyproject.toml:{at + 1}:1: tool.rollout.publish.key: unknown field" in out.stdout


def test_keygen_prints_a_pair_and_writes_nothing(tmp_path: Path) -> None:
    out = run_cli(["keygen"], cwd=tmp_path)
    assert out.returncode == 0 and out.stderr == ""
    private, public = out.stdout.splitlines()
    assert private.startswith("private: ") and public.startswith("public: ")
    from runner.signing import sign_publication

    files = {"flags.json": b"{}"}
    verify_publication(sign_publication(files, generation=1, source_commit="s",
                                        private_key_b64=private.split(" ", 1)[1]),
                       files, [public.split(" ", 1)[1]])
    assert list(tmp_path.iterdir()) == []


def test_a_signed_file_publication_served_over_http_verifies_from_its_url(
        example_repo: Path, tmp_path: Path) -> None:
    """A ``file:`` target named other than flags.json writes ``NAME.sig``; a URL client
    looks for the signature by the same name (it looked for ``flags.sig`` and refused it)."""
    import functools
    import http.server
    import threading

    from runner.sdk.client import FlagClient

    configure_signing(example_repo)
    site = tmp_path / "site"
    out = run_cli(["publish", "--to", f"file:{site / 'prod.json'}"], cwd=example_repo,
                  env={VAR: PRIVATE})
    assert out.returncode == 0, out.stderr
    assert (site / "prod.json.sig").is_file()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = FlagClient.from_url(f"http://127.0.0.1:{server.server_port}/prod.json",
                                     public_key=PUBLIC, poll_interval=60, timeout=5)
        try:
            assert client.last_error is None, client.last_error
            assert client.generation == _generation(example_repo)
        finally:
            client.close()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("forgery", ['"generation": 999999', '"generation": "2"',
                                     '"generation": 2.0'])
def test_a_forged_generation_in_place_is_replaced_never_signed(example_repo: Path,
                                                                 tmp_path: Path,
                                                                 forgery: str) -> None:
    """A file in place whose generation is not its source commit's (hand-edited, forged to
    999999) serves the same flags: it was kept as unchanged and signed by CI's key, after
    which clients refuse every later publication, a rollback included, as older."""
    import re

    configure_signing(example_repo)
    public, single = tmp_path / "public", tmp_path / "single" / "prod.json"
    targets = ["--to", f"dir:{public}", "--to", f"file:{single}"]
    assert run_cli(["publish", *targets], cwd=example_repo, env={VAR: PRIVATE}).returncode == 0
    for path in (public / "flags.json", public / "flags.flagd.json", single):
        text = path.read_text()
        forged = re.sub(r'"generation":\s*\d+', forgery, text)
        assert forged != text
        path.write_text(forged)
    (example_repo / "NOTES.md").write_text("unrelated\n")
    git(example_repo, "add", "NOTES.md")
    git(example_repo, "commit", "-qm", "unrelated change")
    out = run_cli(["publish", *targets], cwd=example_repo, env={VAR: PRIVATE})
    assert out.returncode == 0, out.stderr
    doc = _check_folder(public, example_repo)
    assert doc["generation"] == _generation(example_repo) < 999999
    assert json.loads((public / "flags.flagd.json").read_bytes())["metadata"]["generation"] \
        == doc["generation"]
    file_sig = single.with_name("prod.json.sig").read_bytes()
    verify_publication(file_sig, {"flags.json": single.read_bytes()}, [PUBLIC])
    assert json.loads(single.read_bytes())["generation"] == json.loads(file_sig)["generation"] \
        == _generation(example_repo)
