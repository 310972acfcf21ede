"""``[tool.rollout] bucketing``: read and checked, recorded in the artifact and its digest,
honoured by FlagClient and ``rollout eval``; a 0.1 artifact (no field) buckets as it did."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import pytest

from runner import FlagClient
from runner.evaluate import render_artifact
from runner.evaluate.artifact import canonical_json
from runner.evaluate.bucket import bucket_v2, bucket_v3, weight
from runner.evaluate.compile import ArtifactError, FlagSet
from tests.conftest import run_cli
from tests.evaluate.conftest import RepoWriter

#: rollout runs in this process (tests/conftest.py run_cli_inprocess): no start-up per call
pytestmark = pytest.mark.cli_inprocess


def _repo(make_repo: Callable[..., RepoWriter], bucketing: str | None) -> RepoWriter:
    w = make_repo().flag("half", percentage=50).flag("acct", percentage=30, bucket_by="account")
    if bucketing is not None:
        w.config(f'[tool.rollout]\nbucketing = "{bucketing}"\n')
    return w


def _user(flag: str, inside_v2: bool, inside_v3: bool, pct: float = 50) -> str:
    return next(f"u{i}" for i in range(10_000)
                if (bucket_v2(flag, f"u{i}") < weight(pct)) == inside_v2
                and (bucket_v3(flag, f"u{i}") < weight(pct)) == inside_v3)


@pytest.mark.parametrize(("bucketing", "scheme"),
                         [(None, "flagd-v2"), ("flagd-v2", "flagd-v2"), ("flagd-v3", "flagd-v3")])
def test_the_scheme_is_recorded_in_the_artifact_and_honoured(
        make_repo: Callable[..., RepoWriter], bucketing: str | None, scheme: str) -> None:
    w = _repo(make_repo, bucketing)
    repo = w.load()
    assert repo.config.bucketing == scheme
    doc = json.loads(render_artifact(repo, source_commit=None))
    assert doc["bucketing"] == scheme
    client = FlagClient.from_document(doc, env={})
    v2_only, v3_only = _user("half", True, False), _user("half", False, True)
    expected = {"flagd-v2": ("on", "off"), "flagd-v3": ("off", "on")}[scheme]
    assert (client.evaluate("half", {"targetingKey": v2_only}).variant,
            client.evaluate("half", {"targetingKey": v3_only}).variant) == expected
    # from_repo and rollout eval too
    from_repo = FlagClient.from_repo(w.root, env={})
    assert from_repo.evaluate("half", {"targetingKey": v2_only}).variant == expected[0]
    out = run_cli(["eval", "half", "--key", v3_only, "--format", "json"], cwd=w.root)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["variant"] == expected[1]
    # the flagd export says which implementations agree with it
    flagd = json.loads(render_artifact(repo, source_commit=None, fmt="flagd"))
    assert flagd["metadata"]["bucketing"] == scheme


def test_the_digest_covers_the_scheme(make_repo: Callable[..., RepoWriter]) -> None:
    data = render_artifact(_repo(make_repo, None).load(), source_commit=None)
    doc = json.loads(data)
    doc["bucketing"] = "flagd-v3"  # edited by hand: the digest no longer matches
    with pytest.raises(ArtifactError, match="does not match its digest"):
        FlagSet.from_bytes(json.dumps(doc).encode())
    v3 = json.loads(render_artifact(_repo(make_repo, "flagd-v3").load(), source_commit=None))
    assert v3["digest"] != json.loads(data)["digest"]


def test_an_artifact_without_the_field_is_read_as_flagd_v3(make_repo: Callable[..., RepoWriter]) -> None:
    # what 0.1 wrote: no "bucketing", and a digest taken without it
    doc = json.loads(render_artifact(_repo(make_repo, "flagd-v3").load(), source_commit=None))
    del doc["bucketing"]
    content = {k: doc[k] for k in ("emergency_shutdown", "total_weight", "flags")}
    doc["digest"] = "sha256:" + hashlib.sha256(canonical_json(content)).hexdigest()
    flags = FlagSet.from_bytes(json.dumps(doc).encode())
    assert flags.bucketing == "flagd-v3"
    client = FlagClient(flags, env={})
    for tk in (_user("half", True, False), _user("half", False, True)):
        inside = bucket_v3("half", tk) < weight(50)
        assert client.evaluate("half", {"targetingKey": tk}).variant == ("on" if inside else "off")


def test_an_unknown_scheme_is_refused(make_repo: Callable[..., RepoWriter]) -> None:
    doc = json.loads(render_artifact(_repo(make_repo, None).load(), source_commit=None))
    doc["bucketing"] = "murmur"
    with pytest.raises(ArtifactError, match="bucketing: 'murmur' is not a bucketing scheme"):
        FlagSet.from_document(doc)
    w = make_repo().flag("half", percentage=50)
    (w.root / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.rollout]\nbucketing = "murmur"\n', encoding="utf-8")
    out = run_cli(["validate"], cwd=w.root)
    assert out.returncode == 1
    assert "pyproject.toml:5:1: tool.rollout.bucketing: 'murmur' is not one of flagd-v2, " \
           "flagd-v3" in out.stdout + out.stderr


def test_numbers_and_booleans_are_bucketed_as_the_schemes_implementation_writes_them(
        make_repo: Callable[..., RepoWriter]) -> None:
    for scheme, text in (("flagd-v2", "true"), ("flagd-v3", "True")):
        client = FlagClient.from_repo(_repo(make_repo, scheme).root, env={})
        bucket = bucket_v2 if scheme == "flagd-v2" else bucket_v3
        inside = bucket("acct", text) < weight(30)
        r = client.evaluate("acct", {"targetingKey": "x", "account": True})
        assert r.variant == ("on" if inside else "off")
