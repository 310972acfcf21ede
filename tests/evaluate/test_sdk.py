"""The SDK: loading, hot reload (and refusing bad files), threads, the module-level client."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runner import FlagClient
from runner.evaluate import ArtifactError, Resolution, render_artifact, write_atomic
from tests.conftest import PROJECT, run_cli
from tests.evaluate.conftest import RepoWriter

MakeRepo = Callable[..., RepoWriter]


def _artifact(make_repo: MakeRepo, name: str, **color_fields: object) -> bytes:
    w = make_repo(name).flag("feature", percentage=50, targeting={"users": ["vip"]})
    w.flag("color", variants={"red": "r", "blue": "b"}, default_variant="red",
           rollout_variant="blue", **color_fields)
    return render_artifact(w.load(), source_commit=name)


def test_from_file_and_from_repo_agree(make_repo: MakeRepo, tmp_path: Path) -> None:
    w = make_repo().flag("feature", percentage=50, targeting={"regions": ["us-west-2"]})
    path = tmp_path / "flags.json"
    write_atomic(path, render_artifact(w.load(), source_commit="abc123"))
    from_file, from_repo = FlagClient.from_file(path, env={}), FlagClient.from_repo(w.root, env={})
    assert from_file.source_commit == "abc123" and from_file.digest == from_repo.digest
    for i in range(500):
        ctx = {"targetingKey": f"user-{i}", "region": "eu-west-1" if i % 3 else "us-west-2"}
        assert from_file.evaluate("feature", ctx) == from_repo.evaluate("feature", ctx)
    r = from_file.evaluate("feature", {"targetingKey": "x", "region": "us-west-2"})
    assert (r.value, r.variant, r.reason) == (True, "on", "TARGETING_MATCH")
    assert from_file.all_flags({"targetingKey": "x", "region": "us-west-2"}) == {"feature": True}
    assert from_file.get_all_flags == from_file.all_flags or \
        from_file.get_all_flags({}) == from_file.all_flags({})
    assert from_file.value("feature", {"targetingKey": "x", "region": "us-west-2"}, False) is True
    assert from_file.value("feature", {}, "str default") == "str default"  # wrong type
    assert from_file.is_enabled("ghost") is False


def test_a_missing_or_bad_file_is_a_clear_error_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="cannot read"):
        FlagClient.from_file(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "rollout-runner/resolved-flags", "version": 1, "flags": {')
    with pytest.raises(ArtifactError, match="not valid JSON"):
        FlagClient.from_file(bad)
    bad.write_text(json.dumps({"kind": "rollout-runner/resolved-flags", "version": 99}))
    with pytest.raises(ArtifactError, match="version 99"):
        FlagClient.from_file(bad)
    # not waiting: defaults with a reason, never an exception
    client = FlagClient.from_file(tmp_path / "absent.json", wait=False)
    r = client.evaluate("feature", {"targetingKey": "u"}, default=True)
    assert (r.value, r.reason, r.error_code) == (True, "ERROR", "PROVIDER_NOT_READY")


def test_hand_edited_artifact_is_refused_by_its_digest(make_repo: MakeRepo, tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    doc = json.loads(_artifact(make_repo, "v1"))
    doc["flags"]["feature"]["split"][0]["weight"] = 9000
    doc["flags"]["feature"]["split"][1]["weight"] = 1000
    path.write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="digest"):
        FlagClient.from_file(path)


def test_reload_picks_up_a_new_file_and_keeps_the_last_good_on_a_corrupt_one(
        make_repo: MakeRepo, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "flags.json"
    v1 = _artifact(make_repo, "v1")
    v2 = _artifact(make_repo, "v2", percentage=100)
    write_atomic(path, v1)
    client = FlagClient.from_file(path, env={}, reload_interval=0.05)
    assert client.value("color", {"targetingKey": "u"}) == "r"
    write_atomic(path, v2)
    deadline = time.monotonic() + 5
    while client.value("color", {"targetingKey": "u"}) != "b":
        assert time.monotonic() < deadline, "the new artifact was never picked up"
        time.sleep(0.01)
    assert client.source_commit == "v2"
    with caplog.at_level(logging.WARNING, logger="runner.sdk"):
        path.write_bytes(v1[: len(v1) // 2])  # a careless writer, caught half-way
        for _ in range(30):
            time.sleep(0.01)
            assert client.value("color", {"targetingKey": "u"}) == "b"
        path.write_bytes(b"\x00garbage")
        for _ in range(30):
            time.sleep(0.01)
            assert client.value("color", {"targetingKey": "u"}) == "b"
        os.unlink(path)
        for _ in range(10):
            time.sleep(0.01)
            assert client.value("color", {"targetingKey": "u"}) == "b"
    refused = [m for m in caplog.messages if "keeping the last good" in m]
    assert len(refused) == 3, refused  # once per bad file, not once per look
    assert "not valid JSON" in refused[0]
    write_atomic(path, v1)
    deadline = time.monotonic() + 5
    while client.value("color", {"targetingKey": "u"}) != "r":
        assert time.monotonic() < deadline, "recovery to a good file was never picked up"
        time.sleep(0.01)


def test_no_stat_on_every_call(make_repo: MakeRepo, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "flags.json"
    write_atomic(path, _artifact(make_repo, "v1"))
    client = FlagClient.from_file(path, env={}, reload_interval=3600)
    looks = []
    real_stat = Path.stat

    def counting_stat(self: Path, *a: object, **k: object) -> os.stat_result:
        # only this client's looks: another test's reloading client may still be polling
        # its own repository in a thread of this process
        if tmp_path in self.parents:
            looks.append(self)
        return real_stat(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "stat", counting_stat)
    for i in range(10_000):
        client.is_enabled("feature", {"targetingKey": f"u{i}"})
    assert looks == []
    client.reload()
    assert looks == [path]


def test_threads_evaluating_while_a_writer_replaces_the_file(
        make_repo: MakeRepo, tmp_path: Path) -> None:
    """No torn or failed reads: every answer is one a complete version of the file gives."""
    path = tmp_path / "flags.json"
    versions = [_artifact(make_repo, f"v{i}", percentage=p)
                for i, p in enumerate((0, 25, 50, 75, 100))]
    allowed = {"r", "b"}
    write_atomic(path, versions[0])
    client = FlagClient.from_file(path, env={}, reload_interval=0.001)
    stop = threading.Event()
    errors: list[str] = []
    seen_commits: set[str | None] = set()
    counts = [0]

    def reader(n: int) -> None:
        i = 0
        while not stop.is_set():
            ctx = {"targetingKey": f"user-{n}-{i % 500}"}
            r = client.evaluate("color", ctx)
            if r.error_code is not None or r.value not in allowed:
                errors.append(f"{r}")
            if client.evaluate("feature", {"targetingKey": "vip"}).value is not True:
                errors.append("canary lost during reload")
            seen_commits.add(client.source_commit)
            i += 1
        counts.append(i)

    def writer() -> None:
        i = 0
        while not stop.is_set():
            write_atomic(path, versions[i % len(versions)])
            i += 1
            time.sleep(0.002)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    started = time.monotonic()
    # at least a second of overlap, and until several versions were served (or 20 s)
    while time.monotonic() - started < 1.0 or (
            len(seen_commits) < 3 and time.monotonic() - started < 20):
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert errors[:5] == []
    assert len(seen_commits) >= 3, seen_commits  # reloads really happened under the readers
    assert sum(counts) > 1000


def test_module_level_functions_use_rollout_flags_file(make_repo: MakeRepo,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    write_atomic(path, _artifact(make_repo, "v1", percentage=100))
    script = (
        "import runner, runner.sdk, json\n"
        "print(json.dumps([runner.is_enabled('feature', {'targetingKey': 'vip'}),\n"
        "                  runner.value('color', {'targetingKey': 'u'}, 'none'),\n"
        "                  runner.sdk.evaluate('ghost', {}, 7).error_code,\n"
        "                  runner.get_all_flags({'targetingKey': 'vip'})]))\n"
    )
    import subprocess
    import sys

    from tests.conftest import cli_env

    def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", script], env=cli_env(env), cwd=PROJECT,
                              capture_output=True, text=True, timeout=60)

    out = run({"ROLLOUT_FLAGS_FILE": str(path)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [True, "b", "FLAG_NOT_FOUND",
                                      {"color": "b", "feature": True}]
    out = run({"ROLLOUT_FLAGS_FILE": str(path), "COLOR": "red", "FEATURE": "off"})
    assert json.loads(out.stdout)[:2] == [False, "r"]
    out = run({"ROLLOUT_FLAGS_FILE": str(path), "EMERGENCY_SHUTDOWN": "true"})
    assert json.loads(out.stdout)[:2] == [False, "r"]
    out = run({"ROLLOUT_FLAGS_FILE": str(tmp_path / "missing.json")})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [False, "none", "PROVIDER_NOT_READY", {}]
    assert "missing.json" in out.stderr


def test_in_process_environment_changes_apply_at_the_next_look(
        make_repo: MakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "flags.json"
    write_atomic(path, _artifact(make_repo, "v1", percentage=100))
    monkeypatch.delenv("EMERGENCY_SHUTDOWN", raising=False)
    client = FlagClient.from_file(path, reload_interval=0.01)
    assert client.value("color", {"targetingKey": "u"}) == "b"
    monkeypatch.setenv("EMERGENCY_SHUTDOWN", "true")
    time.sleep(0.03)
    r = client.evaluate("color", {"targetingKey": "u"})
    assert (r.value, r.reason) == ("r", "DISABLED")


def test_cli_eval_reports_value_variant_reason(make_repo: MakeRepo, tmp_path: Path) -> None:
    w = make_repo().flag("feature", percentage=50, targeting={"regions": ["eu-west-1"]})
    out = run_cli(["eval", "feature", "--key", "u1", "--attr", "region=eu-west-1"], cwd=w.root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("feature = true  variant on  reason TARGETING_MATCH")
    out = run_cli(["eval", "feature", "--key", "u1", "--attr", "region=eu-west-1",
                   "--format", "json"], cwd=w.root, env={"FEATURE": "false"})
    doc = json.loads(out.stdout)
    assert (doc["value"], doc["variant"], doc["reason"]) == (False, "off", "STATIC")
    out = run_cli(["eval", "nope"], cwd=w.root)
    assert out.returncode == 1 and "no flag 'nope'" in out.stderr
    out = run_cli(["eval", "feature", "--attr", "region"], cwd=w.root)
    assert out.returncode == 2 and "NAME=VALUE" in out.stderr
    artifact = tmp_path / "a.json"
    assert run_cli(["build", "--out", str(artifact)], cwd=w.root).returncode == 0
    out = run_cli(["eval", "feature", "--file", str(artifact), "--key", "u1", "--attr",
                   "region=eu-west-1", "--format", "json"], cwd=tmp_path)
    assert json.loads(out.stdout)["reason"] == "TARGETING_MATCH"


def test_reload_reads_and_compiles_off_the_callers_thread(
        make_repo: MakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import runner.sdk.sources as sources

    path = tmp_path / "flags.json"
    write_atomic(path, _artifact(make_repo, "v1"))
    client = FlagClient.from_file(path, env={}, reload_interval=0.01)
    loaded_in: list[str] = []
    real_load = sources.load_artifact

    def observed_load(p: Path) -> object:
        loaded_in.append(threading.current_thread().name)
        return real_load(p)

    monkeypatch.setattr(sources, "load_artifact", observed_load)
    write_atomic(path, _artifact(make_repo, "v2", percentage=100))
    deadline = time.monotonic() + 5
    while client.value("color", {"targetingKey": "u"}) != "b":
        assert time.monotonic() < deadline, "the new artifact was never picked up"
        time.sleep(0.005)
    assert loaded_in and threading.current_thread().name not in loaded_in
    assert set(loaded_in) == {"rollout-flags-reload"}


def test_runner_sdk_keeps_every_name_applications_import() -> None:
    """The SDK is a package of one module per job; what applications, the CLI, the
    telemetry modules and the benchmarks import from ``runner.sdk`` stays there."""
    import runner.sdk as sdk

    names = {
        "ArtifactError", "DEFAULT", "DEFAULT_POLL_INTERVAL", "DEFAULT_RELOAD_INTERVAL",
        "DEFAULT_TIMEOUT", "ERROR", "EvaluationHook", "FLAGS_FILE_VAR", "FLAGS_TOKEN_VAR",
        "FLAGS_URL_VAR", "FLAG_NOT_FOUND", "FlagClient", "FlagSet", "GENERAL", "JITTER",
        "MAX_ARTIFACT_BYTES", "MAX_BACKOFF_INTERVALS", "POLL_INTERVAL_VAR",
        "PROVIDER_NOT_READY", "RELOAD_INTERVAL_VAR", "Resolution", "TYPE_MISMATCH",
        "all_flags", "changed_keys", "default_client", "evaluate", "get_all_flags",
        "is_enabled", "load_artifact", "set_default_client", "value",
    }
    assert names <= set(dir(sdk)) and set(sdk.__all__) <= set(dir(sdk))
    assert sdk.FLAGS_FILE_VAR == "ROLLOUT_FLAGS_FILE" and sdk.FLAGS_URL_VAR == "ROLLOUT_FLAGS_URL"
    import runner

    assert runner.FlagClient is sdk.FlagClient and runner.is_enabled is sdk.is_enabled


def test_hooks_are_a_list_the_client_calls_and_stop_with_the_last_removed(
        make_repo: MakeRepo) -> None:
    """Every evaluation path calls the hooks while there are some, and none after."""
    client = FlagClient.from_document(
        json.loads(render_artifact(make_repo("h").flag("feature", percentage=100).load(),
                                   source_commit=None)), env={})
    seen: list[tuple[str, object]] = []

    def hook(key: str, context: object, r: Resolution) -> None:
        seen.append((key, r.value))

    client.on_evaluation(hook)
    assert client.is_enabled("feature", {"targetingKey": "u"}) is True
    assert client.value("ghost", {"targetingKey": "u"}, "d") == "d"
    assert client.evaluate("feature", None).value is True
    assert seen == [("feature", True), ("ghost", "d"), ("feature", True)]
    assert client.remove_evaluation_hook(hook) and not client.remove_evaluation_hook(hook)
    client.is_enabled("feature", {"targetingKey": "u"})
    client.evaluate("feature", {"targetingKey": "u"})
    assert len(seen) == 3 and client.evaluation_hooks == ()
