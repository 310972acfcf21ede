"""Helpers for review tests: edit files in a real repository and commit like people and the runner."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import cli_env, git

DIGEST = "sha256:" + "ab" * 32


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def commit(root: Path, message: str, *paths: str) -> str:
    git(root, "add", "-A", *paths)
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def state_json(flag: str, pct: float, step: int, phase: str = "progressing",
               plan: str | None = None, started: str = "2026-11-27T04:00:00Z") -> str:
    return json.dumps({
        "flag": flag, "plan": plan or flag, "phase": phase, "step": step,
        "current_percentage": pct, "started_at": started, "step_started_at": started,
        "last_evaluated_at": None, "plan_digest": DIGEST, "consecutive_failures": 0,
        "consecutive_inconclusive": 0, "consecutive_errors": 0, "last_gates": [], "reason": "",
    }, indent=2, sort_keys=True) + "\n"


def runner_commit(root: Path, flag: str, action: str, before: float, after: float, step: int,
                  phase: str = "progressing", gates: tuple[str, ...] = (),
                  subject: str | None = None, extra: tuple[str, ...] = (),
                  date: str | None = None) -> str:
    """A commit shaped exactly as TRAILERS.md says the runner writes it."""
    write(root, f"rollouts/{flag}.state.json", state_json(flag, after, step, phase))
    subject = subject or {
        "rollback": f"rollout({flag}): rollback {before:g}% → {after:g}%",
        "pause": f"rollout({flag}): pause at {after:g}%",
        "hold": f"rollout({flag}): hold at {after:g}%",
    }.get(action, f"rollout({flag}): {before:g}% → {after:g}%")
    body = "\n".join(f"{g.split('=')[0]} = {g.split('=')[1].split()[0]}: "
                     f"{g.split()[1]}" for g in gates) or "no gates"
    trailers = [f"Rollout-Flag: {flag}", f"Rollout-Action: {action}", f"Rollout-From: {before:g}",
                f"Rollout-To: {after:g}", f"Rollout-Phase: {phase}", f"Rollout-Plan: {flag}",
                f"Rollout-Plan-Digest: {DIGEST}", *(f"Rollout-Gate: {g}" for g in gates),
                f"Rollout-Reason: {action} by test", *extra]
    message = f"{subject}\n\n{body}\n\n" + "\n".join(trailers) + "\n"
    git(root, "add", f"rollouts/{flag}.state.json")
    env_args = ["-c", "user.name=rollout-runner[bot]",
                "-c", "user.email=rollout-runner@users.noreply.github.com"]
    args = [*env_args, "commit", "-q", "--author",
            "rollout-runner[bot] <rollout-runner@users.noreply.github.com>", "-m", message]
    env = cli_env({"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else None)
    subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return git(root, "rev-parse", "HEAD")
