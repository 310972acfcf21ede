"""No input makes an evaluation raise, and no path makes loading an artifact hang.

Every public entry point (FlagClient methods, the module-level functions, the pure
``evaluate`` and the OpenFeature provider) against every hostile context and key, on flags
that exercise every step of the resolver: prerequisites, canary users and regions, each rule
operator, dotted attributes, splits bucketed by an attribute.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import runner
import runner.sdk
from runner import FlagClient
from runner.evaluate import ArtifactError, FlagSet, render_artifact
from runner.evaluate import evaluate as pure_evaluate
from runner.evaluate.artifact import MAX_ARTIFACT_BYTES
from runner.evaluate.resolution import ERROR, FLAG_NOT_FOUND
from tests.conftest import PROJECT
from tests.evaluate.conftest import RepoWriter

MakeRepo = Callable[..., RepoWriter]


class Boom(Exception):
    """An exception whose message cannot even be made."""

    def __str__(self) -> str:
        raise RuntimeError("str() fails too")


class RaisingMapping(Mapping[str, Any]):
    """A mapping every method of which raises."""

    def __getitem__(self, key: str) -> Any:
        raise Boom

    def __iter__(self) -> Iterator[str]:
        raise Boom

    def __len__(self) -> int:
        raise Boom

    def __contains__(self, key: object) -> bool:
        raise Boom

    def get(self, key: str, default: Any = None) -> Any:
        raise Boom


class RaisingOnSome(dict[str, Any]):
    """A dict that answers for the targeting key and raises for every other attribute."""

    def get(self, key: str, default: Any = None) -> Any:
        if key in ("targetingKey", "targeting_key"):
            return "u1"
        raise Boom

    def __iter__(self) -> Iterator[str]:
        raise Boom


class Hostile:
    """A value that breaks every comparison, hash and conversion."""

    def __eq__(self, other: object) -> bool:
        raise Boom

    def __hash__(self) -> int:
        raise Boom

    def __str__(self) -> str:
        raise Boom

    def __repr__(self) -> str:
        raise Boom


def _nested(depth: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(depth):
        out = [out]
    return out


CONTEXTS: dict[str, Any] = {
    "a string": "u1",
    "a number": 5,
    "a list": ["u1"],
    "bytes": b"u1",
    "every method raises": RaisingMapping(),
    "get raises for attributes": RaisingOnSome(),
    "non-str keys": {1: "x", None: "y", ("t",): "z", b"targetingKey": "u1"},
    "hostile values": {"targetingKey": Hostile(), "region": Hostile(), "plan": Hostile(),
                       "email": Hostile(), "country": Hostile(), "account": Hostile()},
    "hostile nested values": {"targetingKey": "u1", "account": {"id": Hostile()}},
    "huge values": {"targetingKey": "x" * 5_000_000, "region": "y" * 1_000_000,
                    "plan": "p" * 1_000_000, "account": {"id": "a" * 1_000_000}},
    "huge int": {"targetingKey": 10 ** 5000, "account": {"id": 10 ** 5000}},
    "deeply nested": {"targetingKey": _nested(50_000), "account": {"id": _nested(50_000)}},
    "bytes values": {"targetingKey": b"u1", "region": b"us-west-2", "plan": b"pro"},
}
KEYS: list[Any] = ["base", "child", "color", "split_by", "nope", ["unhashable"], None, 5,
                   Hostile(), "k" * 1_000_000]


@pytest.fixture(scope="module")
def flags(tmp_path_factory: pytest.TempPathFactory) -> FlagSet:
    root = tmp_path_factory.mktemp("hostile") / "repo"
    repo = (RepoWriter(root)
            .flag("base", default_variant="off", percentage=50,
                  targeting={"users": ["vip"], "regions": ["us-west-2"]})
            .flag("child", default_variant="off", percentage=100, requires=["base"])
            .flag("color", variants={"red": "#f00", "green": "#0f0", "blue": "#00f"},
                  default_variant="red", rollout_variant="green",
                  targeting={"rules": [
                      {"attribute": "plan", "in": ["pro", "team"], "variant": "blue"},
                      {"attribute": "email", "ends_with": "@example.com", "variant": "green"},
                      {"attribute": "email", "starts_with": "admin", "variant": "green"},
                      {"attribute": "account.tier", "equals": "gold", "variant": "blue"},
                      {"attribute": "country", "not_in": ["FR"], "variant": "red"},
                  ]},
                  percentage={"red": 20, "green": 30, "blue": 50})
            .flag("split_by", default_variant="off", percentage=50, bucket_by="account.id")
            .load())
    return FlagSet.from_repository(repo)


def _calls(client: FlagClient, fs: FlagSet) -> dict[str, Callable[[Any, Any], Any]]:
    return {
        "is_enabled": lambda k, c: client.is_enabled(k, c),
        "evaluate": lambda k, c: client.evaluate(k, c),
        "evaluate with a default": lambda k, c: client.evaluate(k, c, default=False),
        "value": lambda k, c: client.value(k, c, default="x"),
        "all_flags": lambda k, c: client.all_flags(c),
        "get_all_flags": lambda k, c: client.get_all_flags(c),
        "flag_type": lambda k, c: client.flag_type(k),
        "runner.is_enabled": lambda k, c: runner.is_enabled(k, c),
        "runner.value": lambda k, c: runner.value(k, c, default=1),
        "runner.sdk.evaluate": lambda k, c: runner.sdk.evaluate(k, c),
        "runner.all_flags": lambda k, c: runner.all_flags(c),
        "pure evaluate": lambda k, c: pure_evaluate(fs, k, c),
    }


@pytest.mark.parametrize("context_name", list(CONTEXTS))
def test_no_context_and_no_key_makes_an_evaluation_raise(flags: FlagSet,
                                                         context_name: str) -> None:
    client = FlagClient(flags, env={})
    runner.sdk.set_default_client(client)
    ctx = CONTEXTS[context_name]
    try:
        for name, call in _calls(client, flags).items():
            for key in KEYS:
                try:
                    out = call(key, ctx)
                except Exception as e:  # pragma: no cover - the failure being tested
                    pytest.fail(f"{name}({type(key).__name__}, {context_name}) raised {e!r}")
                details = getattr(out, "details", None)
                assert details is None or len(details) <= 300, (name, context_name)
                if name.endswith("all_flags"):
                    assert isinstance(out, dict) and set(out) == set(flags.flags)
    finally:
        runner.sdk.set_default_client(None)


def test_a_context_that_is_no_mapping_gives_defaults_with_reason_error(flags: FlagSet) -> None:
    client = FlagClient(flags, env={})
    for ctx in ("u1", 5, RaisingMapping()):
        r = client.evaluate("base", ctx, default=True)  # type: ignore[arg-type]
        assert (r.value, r.reason, r.error_code) == (True, ERROR, "GENERAL"), r
        assert client.value("color", ctx, default="#000") == "#000"  # type: ignore[arg-type]
        assert client.is_enabled("base", ctx) is False  # type: ignore[arg-type]
        assert client.all_flags(ctx) == dict.fromkeys(flags.flags)  # type: ignore[arg-type]
    r = client.evaluate(["x"], {"targetingKey": "u1"}, default=1)  # type: ignore[arg-type]
    assert (r.value, r.reason, r.error_code) == (1, ERROR, FLAG_NOT_FOUND)
    # attributes that raise spoil the flags that read them, not the call
    out = client.all_flags(RaisingOnSome(targetingKey="u1"))
    assert set(out) == set(flags.flags) and out["color"] is None


def test_openfeature_provider_against_hostile_contexts(flags: FlagSet) -> None:
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.exception import OpenFeatureError

    from runner.openfeature import RolloutProvider

    provider = RolloutProvider(FlagClient(flags, env={}))
    contexts: list[Any] = [None, "u1", {"targetingKey": "u1"}, 5,
                           EvaluationContext("u1", {"plan": Hostile(), "region": Hostile()}),
                           EvaluationContext(Hostile(), {}),  # type: ignore[arg-type]
                           EvaluationContext("u1", RaisingMapping())]  # type: ignore[arg-type]
    methods = [(provider.resolve_boolean_details, False), (provider.resolve_string_details, ""),
               (provider.resolve_integer_details, 0), (provider.resolve_float_details, 0.0),
               (provider.resolve_object_details, {})]
    for ctx in contexts:
        for method, default in methods:
            for key in ("base", "color", "nope", ["x"], None):
                try:
                    method(key, default, ctx)  # type: ignore[operator]
                except OpenFeatureError:
                    pass  # how a provider reports an error: the SDK returns the default
                except Exception as e:  # pragma: no cover - the failure being tested
                    pytest.fail(f"{method.__name__}({key!r}, {ctx!r}) raised {e!r}")


# --- artifacts that are not files --------------------------------------------------------


def _not_files(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    (tmp_path / "folder.json").mkdir()
    for name, target in (("zero-link.json", "/dev/zero"), ("fifo-link.json", str(fifo))):
        (tmp_path / name).symlink_to(target)
    return {"a FIFO": fifo, "/dev/zero": Path("/dev/zero"), "/dev/full": Path("/dev/full"),
            "a folder": tmp_path / "folder.json", "a symlink to /dev/zero":
            tmp_path / "zero-link.json", "a symlink to a FIFO": tmp_path / "fifo-link.json"}


def test_from_file_on_a_device_fifo_or_folder_is_a_clear_error(tmp_path: Path) -> None:
    """Run in a child process with a timeout and a memory limit: before the fix these hung
    (a FIFO without writer) or read /dev/zero until MemoryError."""
    for what, path in _not_files(tmp_path).items():
        code = ("import resource, sys\n"
                "resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))\n"
                "from runner import FlagClient\n"
                "from runner.evaluate import ArtifactError\n"
                "try:\n"
                f"    FlagClient.from_file({str(path)!r})\n"
                "except ArtifactError as e:\n"
                "    print(e)\n"
                "    sys.exit(0)\n"
                "sys.exit(1)\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=30, cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT)})
        assert out.returncode == 0, (what, out.stdout, out.stderr)
        assert str(path) in out.stdout and "not a regular file" in out.stdout, (what, out.stdout)
        assert out.stdout.count("\n") == 1


def test_from_file_wait_false_and_reload_keep_serving(make_repo: MakeRepo, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    fifo = _not_files(tmp_path)["a FIFO"]
    client = FlagClient.from_file(fifo, wait=False, reload_interval=0)
    assert client.evaluate("x", {}).error_code == "PROVIDER_NOT_READY"
    good = tmp_path / "good.json"
    good.write_bytes(render_artifact(make_repo().flag("f", percentage=100).load(),
                                     source_commit=None))
    client = FlagClient.from_file(good, reload_interval=0)
    good.unlink()
    os.mkfifo(good)  # replaced by a FIFO: refused, the last good flags kept
    with caplog.at_level(logging.ERROR, logger="runner.sdk"):
        assert client.reload() is False
    assert client.is_enabled("f", {"targetingKey": "u"}) is True
    assert stat.S_ISFIFO(good.stat().st_mode)


def test_an_oversized_artifact_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as f:  # sparse: no disk used
        f.truncate(MAX_ARTIFACT_BYTES + 1)
    with pytest.raises(ArtifactError, match="larger than 64 MiB"):
        FlagClient.from_file(big)
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ArtifactError, match="nested too deeply"):
        FlagClient.from_file(nested)
