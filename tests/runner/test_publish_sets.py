"""Flag sets (``[tool.rollout.publish.sets]``) and the gzip copies of a publication: which
flags a set holds, its files' stamps, signatures and order, the copies' bytes and rename
order, on folder and branch targets."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from runner import FlagClient
from runner.reconcile.publish import Target, _unit_order, compress, publish_at
from runner.sdk.sources import set_file, set_url
from runner.signing import new_keypair, verify_publication
from tests.conftest import git, run_cli
from tests.runner.helpers import advance, write_metrics

SETS = '\n[tool.rollout.publish.sets]\nllm = ["llm_*"]\nmobile = []\n'


def _with_sets(repo: Path, *, signed: bool = False) -> None:
    with (repo / "pyproject.toml").open("a") as f:
        f.write('\n[tool.rollout.publish]\nsigning_key_env = "KEY"\n' if signed else "")
        f.write(SETS)
    flag = repo / "flags" / "otel_enabled.yaml"
    flag.write_text(flag.read_text().replace("risk: low\n", "risk: low\nsets: [mobile]\n"))
    git(repo, "commit", "-qam", "flag sets")


def _doc(path: Path) -> dict:
    return json.loads(path.read_text())


def test_a_set_holds_its_flags_with_their_prerequisites_stamped_as_the_whole(
        example_repo: Path, tmp_path: Path) -> None:
    _with_sets(example_repo)
    public = tmp_path / "public"
    out = run_cli(["publish", "--to", f"dir:{public}"], cwd=example_repo)
    assert out.returncode == 0, out.stderr
    assert ("published dir:" in out.stdout and "sets/llm/flags.json, sets/llm/flags.flagd.json"
            in out.stdout)
    whole = _doc(public / "flags.json")
    llm, mobile = _doc(public / "sets/llm/flags.json"), _doc(public / "sets/mobile/flags.json")
    # by glob, with the prerequisite it requires; by the flag's own sets: field
    assert sorted(llm["flags"]) == ["llm_integration_enabled", "phase_4_deployment"]
    assert sorted(mobile["flags"]) == ["otel_enabled"]
    for doc in (llm, mobile):
        assert (doc["source_commit"], doc["generation"]) == (whole["source_commit"],
                                                              whole["generation"])
        assert all(doc["flags"][k] == whole["flags"][k] for k in doc["flags"])
        assert doc["digest"] != whole["digest"]  # its own content
    flagd = _doc(public / "sets/llm/flags.flagd.json")
    assert sorted(flagd["flags"]) == sorted(llm["flags"])
    assert flagd["metadata"]["generation"] == whole["generation"]
    # a client of the set, from the file or the folder
    client = FlagClient.from_file(public / "flags.json", set="llm", env={})
    assert client.flag_keys() == sorted(llm["flags"])
    assert FlagClient.from_file(public, set="mobile", env={}).flag_keys() == ["otel_enabled"]


def test_the_gzip_copies_are_deterministic_and_rewritten_only_when_not_the_file(
        example_repo: Path, tmp_path: Path) -> None:
    _with_sets(example_repo)
    public = tmp_path / "public"
    assert run_cli(["publish", "--to", f"dir:{public}"], cwd=example_repo).returncode == 0
    for plain in ("flags.json", "flags.flagd.json", "sets/llm/flags.json",
                  "sets/mobile/flags.flagd.json"):
        packed = (public / f"{plain}.gz").read_bytes()
        assert packed == compress((public / plain).read_bytes())
        assert gzip.decompress(packed) == (public / plain).read_bytes()
        assert packed[4:8] == b"\0\0\0\0" and not packed[3] & 0x08  # mtime 0, no file name
    assert not (public / "flags.sig.gz").exists()
    before = {p: p.stat().st_ino for p in public.rglob("*.gz")}
    out = run_cli(["publish", "--to", f"dir:{public}"], cwd=example_repo)
    assert f"dir:{public} unchanged" in out.stdout
    assert {p: p.stat().st_ino for p in public.rglob("*.gz")} == before
    # a copy missing, or not the file's (a stale copy would serve gzip clients old flags)
    (public / "sets/llm/flags.json.gz").unlink()
    (public / "flags.flagd.json.gz").write_bytes(gzip.compress(b"{}"))
    out = run_cli(["publish", "--to", f"dir:{public}"], cwd=example_repo)
    assert out.stdout.strip().endswith(": flags.flagd.json.gz, sets/llm/flags.json.gz"), out.stdout
    assert gzip.decompress((public / "flags.flagd.json.gz").read_bytes()) == (
        public / "flags.flagd.json").read_bytes()


def test_rename_order_sets_first_each_copy_before_its_file_the_native_then_the_signature(
        ) -> None:
    paths = ["flags.sig", "flags.json", "flags.json.gz", "flags.flagd.json",
             "flags.flagd.json.gz", "sets/b/flags.json", "sets/b/flags.json.gz",
             "sets/a/flags.sig", "sets/a/flags.json", "sets/a/flags.flagd.json.gz",
             "sets/a/flags.flagd.json", "sets/a/flags.json.gz"]
    assert sorted(paths, key=_unit_order) == [
        "sets/a/flags.flagd.json.gz", "sets/a/flags.flagd.json", "sets/a/flags.json.gz",
        "sets/a/flags.json", "sets/a/flags.sig", "sets/b/flags.json.gz", "sets/b/flags.json",
        "flags.flagd.json.gz", "flags.flagd.json", "flags.json.gz", "flags.json", "flags.sig"]


def test_a_rollback_republishes_every_set_holding_the_flag_the_others_keep_their_bytes(
        example_repo: Path, tmp_path: Path) -> None:
    _with_sets(example_repo)
    write_metrics(example_repo)
    public = tmp_path / "public"
    for minutes in (0, 5):
        assert advance(example_repo, minutes, "--publish", f"dir:{public}").returncode == 0
    mobile = {p: (p.read_bytes(), p.stat().st_ino) for p in (public / "sets/mobile").iterdir()}
    out = run_cli(["rollback", "phase_4_deployment", "--reason", "latency", "--publish",
                   f"dir:{public}"], cwd=example_repo)
    assert out.returncode == 0, out.stdout + out.stderr
    head = git(example_repo, "rev-parse", "HEAD")
    llm = _doc(public / "sets/llm/flags.json")
    assert llm["source_commit"] == head
    assert llm["flags"]["phase_4_deployment"]["rollout"]["phase"] == "rolled_back"
    assert _doc(public / "sets/llm/flags.flagd.json")["metadata"]["sourceCommit"] == head
    assert {p: (p.read_bytes(), p.stat().st_ino)
            for p in (public / "sets/mobile").iterdir()} == mobile


def test_an_older_publication_writes_no_set_either(example_repo: Path, tmp_path: Path) -> None:
    _with_sets(example_repo)
    older = git(example_repo, "rev-parse", "HEAD")
    (example_repo / "NOTES.md").write_text("later\n")
    git(example_repo, "add", "NOTES.md")
    git(example_repo, "commit", "-qm", "a later commit")
    public = tmp_path / "public"
    assert run_cli(["publish", "--to", f"dir:{public}"], cwd=example_repo).returncode == 0
    # only a set's file carries the newer stamp: still newer, nothing written anywhere
    for name in ("flags.json", "flags.flagd.json"):
        (public / name).unlink()
    before = sorted(os.listdir(public / "sets/llm"))
    (outcome,) = publish_at(example_repo, [Target("dir", str(public))], older, {})
    assert outcome.ok and outcome.newer and "sets/llm/" in outcome.newer, outcome
    assert not (public / "flags.json").exists() and not (public / "flags.flagd.json").exists()
    assert sorted(os.listdir(public / "sets/llm")) == before


def test_signed_sets_each_carry_their_own_signature_and_the_branch_holds_the_sets(
        example_repo: Path, tmp_path: Path) -> None:
    private, public_key = new_keypair()
    _with_sets(example_repo, signed=True)
    public = tmp_path / "public"
    out = run_cli(["publish", "--to", f"dir:{public}", "branch:rollout-published"],
                  cwd=example_repo, env={"KEY": private})
    assert out.returncode == 0, out.stdout + out.stderr
    for folder in (public / "sets/llm", public / "sets/mobile"):
        files = {n: (folder / n).read_bytes() for n in ("flags.json", "flags.flagd.json")}
        verify_publication((folder / "flags.sig").read_bytes(), files, [public_key])
    client = FlagClient.from_file(public, set="llm", env={}, public_key=public_key)
    assert "phase_4_deployment" in client.flag_keys()
    tree = git(example_repo, "ls-tree", "-r", "--name-only", "rollout-published").splitlines()
    assert sorted(tree) == sorted(["flags.json", "flags.flagd.json", "flags.sig",
                                   *(f"sets/{s}/{n}" for s in ("llm", "mobile")
                                     for n in ("flags.json", "flags.flagd.json", "flags.sig"))])
    assert git(example_repo, "show", "rollout-published:sets/llm/flags.json").strip() == (
        public / "sets/llm/flags.json").read_text().strip()


def test_set_locations_and_names() -> None:
    assert set_url("https://h/x/flags.json?t=1", "checkout") == \
        "https://h/x/sets/checkout/flags.json?t=1"
    assert set_url("https://h/x/", "a-b_1") == "https://h/x/sets/a-b_1/flags.json"
    assert set_file(Path("/srv/flags/flags.json"), "m") == Path("/srv/flags/sets/m/flags.json")
    for bad in ("Checkout", "../x", "", "a/b", "x" * 65):
        with pytest.raises(ValueError, match="set="):
            set_url("https://h/flags.json", bad)
        with pytest.raises(ValueError, match="set="):
            FlagClient.from_url("https://h/flags.json", set=bad)
