"""Helpers of the runner's end-to-end tests: real repositories, real CLI runs."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import git, run_cli

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
STATE = "rollouts/phase_4_deployment.state.json"
HEALTHY = {"error_rate": 0.2, "p95_latency_ms": 120.0, "p99_latency_ms": 200.0,
           "request_count": 500, "error_count": 1}


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def write_metrics(repo: Path, **values: Any) -> None:
    (repo / "logs").mkdir(exist_ok=True)
    (repo / "logs" / "metrics.json").write_text(json.dumps({**HEALTHY, **values}))


def rollout(repo: Path, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), cwd=repo, env=env)


def advance(repo: Path, minutes: float, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return rollout(repo, "advance", "--now", at(minutes), *args, env=env)


def state(repo: Path, path: str = STATE) -> dict[str, Any]:
    return json.loads((repo / path).read_text())


def status(repo: Path, flag: str = "phase_4_deployment") -> dict[str, Any]:
    out = rollout(repo, "status", flag, "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def subjects(repo: Path, n: int = 50) -> list[str]:
    return git(repo, "log", f"-{n}", "--format=%s").splitlines()


def trailer(repo: Path, key: str, rev: str = "HEAD") -> str:
    return git(repo, "log", "-1", f"--format=%(trailers:key={key},valueonly)", rev).strip()


def write_plan(repo: Path, text: str, name: str = "phase_4_deployment") -> None:
    (repo / "rollouts" / f"{name}.yaml").write_text(text)


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A", "flags", "rollouts")
    git(repo, "commit", "-q", "-m", message)


def is_clean(repo: Path) -> bool:
    return git(repo, "status", "--porcelain", "--", "flags", "rollouts") == ""
