"""The first hour, end to end (issue 21): an existing service repository → ``rollout init`` →
the scaffolded flag and plan → ``rollout validate`` → a bare remote → the scaffolded advance
step of ``.github/workflows/advance.yml`` run as the workflow runs it (its ``run:`` script by
``bash -eo pipefail``, its ``env:`` filled in from the repository variable and secrets it
names) against a real Prometheus on loopback, the default metric source of the scaffold →
advances, a breach, a rollback, the published artifact → an application on
``FlagClient.from_url`` serving the rollback.

The one liberty taken: the job's clock. A workflow runs ``rollout advance`` at the real time,
five minutes apart; here a ``rollout`` on PATH adds ``--now`` (the simulated time the
Prometheus data was written for) to ``advance``, and runs this checkout's code.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runner import FlagClient
from runner.load.yamlsafe import load_text
from runner.onboarding.demo import serving
from tests.conftest import cli_env, git, run_cli
from tests.prometheus_server import (
    PrometheusServer,
    Series,
    prometheus,  # noqa: F401  (the fixture)
)

FLAG = "new_checkout"
T0 = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
SPIKE = T0 + timedelta(minutes=22)
TOKEN = "e2e-prometheus-token"
SERVICE_PYPROJECT = ('[project]\nname = "checkout-service"\nversion = "2.3.1"\n'
                     'dependencies = ["fastapi>=0.110"]\n')
#: the secrets and variables the scaffolded step reads, as a repository would set them
CONTEXT = {"vars.PROMETHEUS_URL || secrets.PROMETHEUS_URL": "@URL@",
           "secrets.PROMETHEUS_TOKEN": TOKEN}
BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1", "+Inf")


def recorder_series(start: datetime, end: datetime) -> list[Series]:
    """What runner.telemetry.prometheus's RequestRecorder exports for the flag, as counters
    every 15 s: 600 requests a minute, 0.1 % errors and all within 100 ms until SPIKE, then
    6 % errors."""
    step = timedelta(seconds=15)
    per = 150.0
    t, total, errors = start, 0.0, 0.0
    req: list[tuple[datetime, float]] = []
    err: list[tuple[datetime, float]] = []
    while t <= end:
        req.append((t, total))
        err.append((t, errors))
        total += per
        errors += per * (0.06 if t >= SPIKE else 0.001)
        t += step
    labels = {"flag": FLAG, "variant": "on", "reason": "SPLIT"}
    series = [Series("rollout_requests_total", labels, req),
              Series("rollout_request_errors_total", labels, err),
              Series("rollout_request_duration_seconds_count", labels, req)]
    for le in BUCKETS:  # every request within 0.1 s
        share = 0.0 if le == "0.05" else 1.0
        series.append(Series("rollout_request_duration_seconds_bucket", {**labels, "le": le},
                             [(at, n * share) for at, n in req]))
    return series


def advance_step(workflow: Path) -> tuple[str, dict[str, str]]:
    """The scaffolded Advance step: its script and its env expressions."""
    doc = load_text(workflow.read_text(encoding="utf-8"))
    step = next(s for s in doc["jobs"]["advance"]["steps"] if s.get("name") == "Advance")
    return step["run"], step["env"]


def test_first_hour(tmp_path: Path, prometheus: Callable[..., PrometheusServer]) -> None:  # noqa: F811
    # 1. a team's service repository, default branch master, its own pyproject.toml
    service = tmp_path / "service"
    service.mkdir()
    git(service, "init", "-q", "-b", "master")
    (service / "pyproject.toml").write_text(SERVICE_PYPROJECT)
    (service / "app.py").write_text("print('checkout')\n")
    git(service, "add", "-A")
    git(service, "commit", "-q", "-m", "the service")

    # 2. rollout init: merged, the workflows on master
    out = run_cli(["init"], cwd=service)
    assert out.returncode == 0, out.stderr
    pyproject = (service / "pyproject.toml").read_text()
    assert pyproject.startswith(SERVICE_PYPROJECT)
    config = tomllib.loads(pyproject)
    assert config["project"]["dependencies"] == ["fastapi>=0.110"]
    assert config["tool"]["rollout"]["metrics"]["type"] == "prometheus"
    workflow = service / ".github/workflows/advance.yml"
    assert load_text(workflow.read_text())["on"]["push"]["branches"] == ["master"]
    assert "git push -u origin master" in out.stderr

    # 3. the scaffolded flag and plan (gates on the Prometheus source), validated
    assert (service / f"flags/{FLAG}.yaml").is_file() and (service / f"rollouts/{FLAG}.yaml").is_file()
    valid = run_cli(["validate"], cwd=service)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    git(service, "add", "-A")
    git(service, "commit", "-q", "-m", "Set up Rollout Runner")

    # 4. a bare remote, and the workflow's checkout of it (fetch-depth 0)
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "master", str(remote))
    git(service, "remote", "add", "origin", str(remote))
    git(service, "push", "-q", "-u", "origin", "master")
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(remote), str(checkout))

    # 5. Prometheus on loopback with the recorder's series; the step's env as GitHub fills it
    server = prometheus(recorder_series(T0 - timedelta(minutes=10), T0 + timedelta(minutes=40)))
    script, env_exprs = advance_step(checkout / ".github/workflows/advance.yml")
    assert "rollout advance" in script
    step_env: dict[str, str] = {}
    for name, expr in env_exprs.items():
        m = re.fullmatch(r"\$\{\{ (.+) \}\}", expr)
        assert m and m[1] in CONTEXT, f"{name}: {expr} is not a variable or secret of this test"
        step_env[name] = CONTEXT[m[1]].replace("@URL@", server.url)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "rollout"
    shim.write_text("#!/bin/bash\n"
                    '[ "$1" = advance ] && set -- "$@" --now "$E2E_NOW"\n'
                    f'exec {shlex.quote(sys.executable)} -m runner "$@"\n')
    shim.chmod(0o755)
    (tmp_path / "step.sh").write_text(script)
    outputs = tmp_path / "github-output"

    def run_step(minute: float) -> dict[str, str]:
        outputs.write_text("")
        env = cli_env({**step_env, "PATH": f"{bin_dir}:{cli_env()['PATH']}",
                       "GITHUB_OUTPUT": str(outputs), "GITHUB_ACTIONS": "true",
                       "E2E_NOW": (T0 + timedelta(minutes=minute)).isoformat()})
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail",
                               str(tmp_path / "step.sh")], cwd=checkout, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert TOKEN not in done.stdout + done.stderr
        return dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)

    def state() -> dict[str, object]:
        git(checkout, "pull", "-q", "--ff-only")
        return json.loads((checkout / f"rollouts/{FLAG}.state.json").read_text())

    def published(folder: Path) -> None:
        """The published branch as the application's web server holds it."""
        folder.mkdir(exist_ok=True)
        for name in ("flags.json",):
            text = subprocess.run(["git", f"--git-dir={remote}", "show", f"rollout-published:{name}"],
                                  capture_output=True, check=True, timeout=30).stdout
            (folder / name).write_bytes(text)

    # 6. the runs every 5 minutes while healthy: the rollout advances, in commits pushed
    for minute in (0, 5, 10, 15, 20):
        assert run_step(minute).get("status") == "0"
    before = state()
    assert isinstance(before["current_percentage"], int | float)
    assert before["current_percentage"] >= 10, before
    site = tmp_path / "site"
    published(site)
    users = ["qa-user-1", *(f"user-{i}" for i in range(400))]
    with serving(site) as url:
        client = FlagClient.from_url(f"{url}/flags.json", poll_interval=0.05, env={})
        try:
            assert sum(client.is_enabled(FLAG, {"targetingKey": u}) for u in users) > 0
        finally:
            client.close()

    # 7. the errors spike: the next run rolls back (status 4: the job fails after the summary)
    got = run_step(25)
    assert got.get("status") == "4", got
    assert got.get("rolled_back") == FLAG
    after = state()
    assert after["current_percentage"] == 0 and after["phase"] == "rolled_back", after
    message = git(checkout, "log", "-1", "--format=%B")
    assert "error_rate" in message and TOKEN not in message

    # 8. the published artifact, served over HTTP: the application serves the rollback
    published(site)
    with serving(site) as url:
        client = FlagClient.from_url(f"{url}/flags.json", poll_interval=0.05, env={})
        try:
            assert not any(client.is_enabled(FLAG, {"targetingKey": u}) for u in users)
        finally:
            client.close()
    # the service's own files are untouched by all of it
    git(checkout, "pull", "-q", "--ff-only")
    assert (checkout / "pyproject.toml").read_text() == pyproject
    assert (checkout / "app.py").read_text() == "print('checkout')\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-p", "no:xdist"]))
