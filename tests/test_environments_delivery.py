"""Issue 20, delivery: flags' environments: blocks resolved per environment, the artifact of
an environment naming it, clients that read one environment's artifact and refuse
another's, the default client's ROLLOUT_ENVIRONMENT, and the publish targets chosen per
environment (the end-to-end proof with nginx is tests/test_environments_delivery_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import FlagClient
from runner.cli.publishing import plan_targets
from runner.errors import UsageError
from runner.evaluate.compile import ArtifactError
from runner.evaluate.render import render_artifact
from runner.load import check_repository, load_repository
from runner.model import Targeting, resolve_flag
from runner.review.plan import flag_fields
from runner.sdk import default as sdk_default
from runner.sdk.sources import environment_file, environment_url
from tests.conftest import git, make_example_repo

ENVIRONMENTS = """
[tool.rollout.environments.staging]
publish = ["dir:{public}/staging"]

[tool.rollout.environments.production]
publish = ["dir:{public}/production"]
"""
OVERRIDE = """environments:
  staging:
    percentage: 50
    targeting: {users: [qa-1]}
  production:
    enabled: false
"""


def envs_repo(tmp_path: Path) -> Path:
    repo = make_example_repo(tmp_path / "repo")
    with (repo / "pyproject.toml").open("a") as f:
        f.write(ENVIRONMENTS.format(public=tmp_path / "public"))
    with (repo / "flags/otel_enabled.yaml").open("a") as f:
        f.write(OVERRIDE)
    git(repo, "commit", "-qam", "two environments; otel differs per environment")
    return repo


def test_resolve_flag_applies_only_that_environments_override(tmp_path: Path) -> None:
    checked = check_repository(envs_repo(tmp_path))
    assert checked.problems == []
    flag = checked.salvaged.flags["otel_enabled"]
    assert set(flag.environments) == {"staging", "production"}
    staging, production = resolve_flag(flag, "staging"), resolve_flag(flag, "production")
    assert (staging.enabled, staging.percentage, staging.targeting) == (
        True, 50.0, Targeting(users=("qa-1",)))
    assert (production.enabled, production.percentage, production.targeting) == (
        False, None, flag.targeting)
    for resolved in (staging, production):  # an environment's flag knows only its own
        assert not resolved.environments
        assert (resolved.variants, resolved.owner, resolved.default_variant) == (
            flag.variants, flag.owner, flag.default_variant)
    assert resolve_flag(flag, None) is flag
    other = checked.salvaged.flags["phase_4_deployment"]
    assert resolve_flag(other, "production") is other  # no block: the flag itself


def test_the_flag_review_shows_the_block_and_nothing_without_it(tmp_path: Path) -> None:
    flag = check_repository(envs_repo(tmp_path)).salvaged.flags["otel_enabled"]
    fields = flag_fields(flag)
    assert fields["environments.production.enabled"] is False
    assert fields["environments.staging.percentage"] == 50
    assert fields["environments.staging.targeting.users"] == ["qa-1"]
    plain = load_repository(Path(__file__).resolve().parents[1]).flags["otel_enabled"]
    assert not any(k.startswith("environments.") for k in flag_fields(plain))


def test_an_environments_artifact_names_it_outside_the_digest(tmp_path: Path) -> None:
    repo = load_repository(make_example_repo(tmp_path / "repo"))
    plain = json.loads(render_artifact(repo, source_commit=None))
    named = json.loads(render_artifact(repo, source_commit=None, environment="staging"))
    assert "environment" not in plain and named["environment"] == "staging"
    assert named["digest"] == plain["digest"]  # what evaluation depends on is the same
    flagd = json.loads(render_artifact(repo, source_commit=None, fmt="flagd",
                                       environment="staging"))
    assert flagd["metadata"]["environment"] == "staging"


def _artifact(tmp_path: Path, environment: str | None, name: str) -> Path:
    repo = load_repository(Path(__file__).resolve().parents[1])
    out = tmp_path / name / "flags.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(render_artifact(repo, source_commit=None, environment=environment))
    return out


def test_a_client_of_one_environment_reads_its_folder_and_refuses_another(
        tmp_path: Path) -> None:
    _artifact(tmp_path, "staging", "staging")
    _artifact(tmp_path, "staging", "production")  # staging's flags where production's go
    client = FlagClient.from_file(tmp_path / "flags.json", environment="staging", env={})
    assert client.ready and client.environment == "staging"
    with pytest.raises(ArtifactError, match="made for environment 'staging', not for "
                       "'production'"):
        FlagClient.from_file(tmp_path / "flags.json", environment="production", env={})
    lenient = FlagClient.from_file(tmp_path / "production/flags.json", wait=False, env={},
                                   environment="production")
    assert not lenient.ready  # serving callers' defaults, not staging's flags
    # {environment} placeholder; no environment: the file as it is, any artifact
    assert FlagClient.from_file(tmp_path / "{environment}/flags.json", env={},
                                environment="staging").ready
    assert FlagClient.from_file(tmp_path / "production/flags.json", env={}).ready
    with pytest.raises(ValueError, match="an environment's name"):
        FlagClient.from_file(tmp_path / "flags.json", environment="../etc")


def test_an_artifact_without_environment_is_refused_by_an_environments_client(
        tmp_path: Path) -> None:
    _artifact(tmp_path, None, "staging")
    with pytest.raises(ArtifactError, match="a repository without environments"):
        FlagClient.from_file(tmp_path / "flags.json", environment="staging", env={})


def test_environment_urls_and_files() -> None:
    assert environment_url("https://h/x/flags.json", "staging") == \
        "https://h/x/staging/flags.json"
    assert environment_url("https://h/x/", "production") == "https://h/x/production/flags.json"
    assert environment_url("https://flags-{environment}.h/flags.json?v=1", "staging") == \
        "https://flags-staging.h/flags.json?v=1"
    assert environment_file(Path("/srv/flags/flags.json"), "prod") == \
        Path("/srv/flags/prod/flags.json")
    with pytest.raises(ValueError):
        environment_url("https://h/flags.json", "Prod")


def test_the_default_client_reads_rollout_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _artifact(tmp_path, "staging", "staging")
    _artifact(tmp_path, "production", "production")
    monkeypatch.delenv("ROLLOUT_FLAGS_URL", raising=False)
    monkeypatch.delenv("ROLLOUT_FLAG_SET", raising=False)
    monkeypatch.setenv("ROLLOUT_FLAGS_FILE", str(tmp_path / "flags.json"))
    try:
        for name in ("staging", "production"):
            monkeypatch.setenv("ROLLOUT_ENVIRONMENT", name)
            sdk_default.set_default_client(None)
            client = sdk_default.default_client()
            assert client.ready and client.environment == name
        monkeypatch.setenv("ROLLOUT_ENVIRONMENT", "Nope!")
        sdk_default.set_default_client(None)
        assert not sdk_default.default_client().ready  # logged; callers' defaults
    finally:
        sdk_default.set_default_client(None)


def test_publish_targets_per_environment(tmp_path: Path) -> None:
    repo = envs_repo(tmp_path)
    public = tmp_path / "public"
    own = plan_targets("--to", [""], repo)
    assert [(n, [str(t) for t in ts]) for n, ts in own] == [
        ("staging", [f"dir:{public}/staging"]), ("production", [f"dir:{public}/production"])]
    one = plan_targets("--to", [""], repo, environment="production")
    assert [n for n, _ in one] == ["production"]
    explicit = plan_targets("--to", [f"dir:{tmp_path}/x"], repo, environment="staging")
    assert [(n, [str(t) for t in ts]) for n, ts in explicit] == [
        ("staging", [f"dir:{tmp_path}/x"])]
    with pytest.raises(UsageError, match="declares environments \\(staging, production\\)"):
        plan_targets("--to", [f"dir:{tmp_path}/x"], repo)
    with pytest.raises(UsageError, match=r"not a declared environment.*did you mean production"):
        plan_targets("--to", [""], repo, environment="prodution")
    assert plan_targets("--publish", [], repo) == []  # no --publish: nothing published


def test_two_environments_may_not_share_a_target(tmp_path: Path) -> None:
    repo = envs_repo(tmp_path)
    text = (repo / "pyproject.toml").read_text()
    (repo / "pyproject.toml").write_text(text.replace("/production\"]", "/staging\"]"))
    with pytest.raises(UsageError, match="is also staging's"):
        plan_targets("--publish", [""], repo)


def test_without_environments_targets_are_as_always(tmp_path: Path) -> None:
    repo = make_example_repo(tmp_path / "repo")
    ((name, targets),) = plan_targets("--publish", [f"dir:{tmp_path}/p"], repo)
    assert name is None and [str(t) for t in targets] == [f"dir:{tmp_path}/p"]
    with pytest.raises(UsageError, match="empty"):  # a bare --publish: no target here
        plan_targets("--publish", [""], repo)
    with pytest.raises(UsageError, match="declares no environments"):
        plan_targets("--publish", [f"dir:{tmp_path}/p"], repo, environment="staging")
