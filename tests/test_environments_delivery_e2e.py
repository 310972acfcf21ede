"""Issue 20's delivery proof with real parts: a repository declaring staging and production
publishes each environment's own signed artifact (``rollout publish``, ``advance
--publish``) into its own folder, Debian's nginx serves both, and clients of each
environment (``environment=``, and the default client's ``ROLLOUT_ENVIRONMENT``) see that
environment's overrides: a flag turned off in production only, a static 50 % and a canary in
staging only. A production client given staging's (validly signed) files refuses them.

Every wait is a loop with a generous deadline; nothing asserts how long anything took."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runner import FlagClient
from runner.sdk import default as sdk_default
from runner.signing import new_keypair, verify_publication
from tests.conftest import git, make_example_repo, run_cli
from tests.nginx_server import NginxServer, nginx  # noqa: F401  (the fixture)
from tests.runner.helpers import advance, write_metrics

PRIVATE, PUBLIC = new_keypair()
VAR = "ROLLOUT_SIGNING_KEY"
POLL = 0.2
USERS = [f"user-{i}" for i in range(400)]
StartNginx = Callable[..., NginxServer]
OVERRIDE = """environments:
  staging:
    percentage: 50
    targeting: {users: [qa-1]}
  production:
    enabled: false
"""


def wait_for(cond: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def two_environments(tmp_path: Path) -> tuple[Path, Path]:
    repo = make_example_repo(tmp_path / "repo")
    public = tmp_path / "public"
    with (repo / "pyproject.toml").open("a") as f:
        f.write(f'\n[tool.rollout.publish]\nsigning_key_env = "{VAR}"\n'
                f'\n[tool.rollout.environments.staging]\npublish = ["dir:{public}/staging"]\n'
                f'\n[tool.rollout.environments.production]\n'
                f'publish = ["dir:{public}/production"]\n')
    flag = repo / "flags/otel_enabled.yaml"
    flag.write_text(flag.read_text().replace("default_variant: on\n", "default_variant: off\n")
                    + OVERRIDE)
    git(repo, "commit", "-qam", "staging and production; otel differs per environment")
    write_metrics(repo)
    return repo, public


def _signed(folder: Path, environment: str) -> dict:
    files = {n: (folder / n).read_bytes() for n in ("flags.json", "flags.flagd.json")}
    verify_publication((folder / "flags.sig").read_bytes(), files, (PUBLIC,))
    doc = json.loads(files["flags.json"])
    assert doc["environment"] == environment
    assert json.loads(files["flags.flagd.json"])["metadata"]["environment"] == environment
    return doc


def test_each_environment_publishes_its_own_signed_artifact_and_clients_see_their_own(
        tmp_path: Path, nginx: StartNginx, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    repo, public = two_environments(tmp_path)
    out = run_cli(["publish"], cwd=repo, env={VAR: PRIVATE})
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"staging: published dir:{public}/staging" in out.stdout
    assert f"production: published dir:{public}/production" in out.stdout
    staging, production = _signed(public / "staging", "staging"), \
        _signed(public / "production", "production")
    # one source commit, one generation: each folder has its own order
    assert (staging["source_commit"], staging["generation"]) == (
        production["source_commit"], production["generation"])
    assert staging["flags"]["otel_enabled"]["enabled"] is True
    assert production["flags"]["otel_enabled"]["enabled"] is False
    assert (public / "staging/flags.json.gz").exists()  # issue 19's copies, per environment

    # rollout build --env gives what was published there, without the publication's stamp
    built = run_cli(["build", "--env", "production"], cwd=repo)
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["digest"] == production["digest"] != staging["digest"]
    refused = run_cli(["build"], cwd=repo)
    assert refused.returncode == 2 and "name the environment with --env: staging, production" \
        in refused.stderr
    said = run_cli(["eval", "otel_enabled", "--key", "qa-1", "--env", "staging"], cwd=repo)
    assert said.returncode == 0 and "reason TARGETING_MATCH" in said.stdout, said.stderr
    said = run_cli(["eval", "otel_enabled", "--key", "qa-1", "--env", "production"], cwd=repo)
    assert said.returncode == 0 and "reason DISABLED" in said.stdout, said.stderr

    server = nginx(public)
    base = f"{server.url}/flags.json"
    clients = {name: FlagClient.from_url(base, environment=name, public_key=PUBLIC,
                                         poll_interval=POLL, env={})
               for name in ("staging", "production")}
    try:
        ctx = [{"targetingKey": u} for u in USERS]
        on = [c for c in ctx if clients["staging"].is_enabled("otel_enabled", c)]
        assert len(USERS) * 0.35 < len(on) < len(USERS) * 0.65  # staging's static 50 %
        assert clients["staging"].evaluate("otel_enabled", {"targetingKey": "qa-1"}).reason \
            == "TARGETING_MATCH"
        assert not any(clients["production"].is_enabled("otel_enabled", c)
                       for c in [*ctx, {"targetingKey": "qa-1"}])
        assert clients["production"].evaluate("otel_enabled", ctx[0]).reason == "DISABLED"
        # a flag without an override serves alike in both
        for c in ctx[:50]:
            assert clients["staging"].value("security_hardening_enabled", c) == \
                clients["production"].value("security_hardening_enabled", c)

        # the default client: ROLLOUT_FLAGS_URL the folder nginx serves, ROLLOUT_ENVIRONMENT
        for name in ("staging", "production"):
            monkeypatch.setenv("ROLLOUT_FLAGS_URL", f"{server.url}/")
            monkeypatch.setenv("ROLLOUT_ENVIRONMENT", name)
            monkeypatch.delenv("ROLLOUT_FLAGS_FILE", raising=False)
            sdk_default.set_default_client(None)
            client = sdk_default.default_client()
            try:
                wait_for(lambda c=client: c.ready, f"the default client of {name}")
                assert client.is_enabled("otel_enabled", {"targetingKey": "qa-1"}) is (
                    name == "staging")
            finally:
                client.close()
                sdk_default.set_default_client(None)

        # staging's files, validly signed, put where production's are: refused, the last
        # good (production's) flags kept
        served_before = clients["production"].digest
        newest = max(p.stat().st_mtime for p in public.rglob("*") if p.is_file())
        # nginx's validators have a one-second resolution (see test_delivery_e2e.py)
        wait_for(lambda: time.time() >= int(newest) + 1.05, "the next second")
        for name in ("flags.json", "flags.flagd.json", "flags.sig"):
            shutil.copy(public / "staging" / name, public / "production" / name)
            (public / "production" / f"{name}.gz").unlink(missing_ok=True)
        wait_for(lambda: clients["production"].last_error is not None, "the refusal")
        assert "made for environment 'staging', not for 'production'" in \
            clients["production"].last_error
        assert clients["production"].digest == served_before
        assert not clients["production"].is_enabled("otel_enabled", {"targetingKey": "qa-1"})

        # the next publication puts production's own back (it serves otherwise)
        out = advance(repo, 0, "--publish", env={VAR: PRIVATE})
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"production: published dir:{public}/production" in out.stdout
        wait_for(lambda: clients["production"].last_error is None, "production's own again")
        _signed(public / "production", "production")
    finally:
        for c in clients.values():
            c.close()


def test_publish_one_environment_and_refusals(tmp_path: Path) -> None:
    repo, public = two_environments(tmp_path)
    out = run_cli(["publish", "--env", "staging"], cwd=repo, env={VAR: PRIVATE})
    assert out.returncode == 0, out.stdout + out.stderr
    assert (public / "staging/flags.json").exists()
    assert not (public / "production").exists()
    other = tmp_path / "elsewhere"
    out = run_cli(["publish", "--to", f"dir:{other}"], cwd=repo, env={VAR: PRIVATE})
    assert out.returncode == 2 and not other.exists()
    assert "each published to its own targets: name one with --env NAME" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = run_cli(["publish", "--env", "production", "--to", f"dir:{other}"], cwd=repo,
                  env={VAR: PRIVATE})
    assert out.returncode == 0, out.stderr
    _signed(other, "production")
    out = run_cli(["advance", "--publish", f"dir:{other}"], cwd=repo, env={VAR: PRIVATE})
    assert out.returncode == 2 and "--env NAME" in out.stderr
