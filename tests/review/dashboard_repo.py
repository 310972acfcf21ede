"""A real repository with a rollout in every phase, driven through the real CLI (advance,
rollback, a person's ``git revert``, the hold after it): what ``rollout status`` and
``scripts/check-mermaid`` show. Every commit is dated with the ``--now`` it ran at, as
when the runner runs in CI (commit time and ``now`` agree)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import cli_env, git, make_example_repo, run_cli

#: A rollback reason with Markdown, HTML, Mermaid and newline tricks.
HOSTILE = ('x"]\n  click A href "javascript:alert(1)" <img src=x onerror=alert(1)> '
           '@everyone | ``` %%{init: {"theme":"dark"}}%% :crit, 2026-01-01, 9d ; # ] end')

#: The time to judge the repository by, after everything below.
NOW = "2026-01-15T12:32:00Z"
GOOD = {"error_rate": 0.2, "p95_latency_ms": 120, "request_count": 500}

PLAN = """flag: {flag}
strategy: safe
wait: 5m
metrics:
  type: file
  path: metrics/{{{{ flag }}}}.json
gates:
  error_rate: 1.0
  p95_latency_ms: 500
  request_count: 100
{extra}"""

FLAG = """key: {flag}
description: {description}
owner: checkout-team
risk: low
enabled: true
default_variant: off
"""


def _dated(t: str) -> dict[str, str]:
    return {"GIT_AUTHOR_DATE": t, "GIT_COMMITTER_DATE": t}


def _cli(root: Path, t: str, *args: str, ok: tuple[int, ...] = (0,)) -> str:
    out = run_cli([*args, "--now", t], cwd=root, env=_dated(t))
    if out.returncode not in ok:
        raise AssertionError(f"rollout {' '.join(args)}: {out.returncode}\n{out.stdout}"
                             f"\n{out.stderr}")
    return out.stdout


def metrics(root: Path, flag: str, **values: float) -> None:
    (root / "metrics").mkdir(exist_ok=True)
    (root / "metrics" / f"{flag}.json").write_text(json.dumps({**GOOD, **values}))


def build(root: Path, hostile: str | None = None) -> Path:
    """The example repository, plus:

    - ``checkout_v2``: progressing at 25 % (three advances);
    - ``aatc_system_enabled``: rolled back by a person at 10 % (``rollout rollback``);
    - ``phase_4_deployment``: a person reverted its 5 % → 10 % advance, and the runner held
      (paused) at 5 %;
    - ``search_v3``: pending, its plan starts tomorrow.

    ``hostile``: a reason with Markdown, HTML, Mermaid and newline tricks, given to the
    rollback (it reaches the state, the commit and the dashboard)."""
    make_example_repo(root)
    for flag in ("checkout_v2", "search_v3"):
        (root / "flags" / f"{flag}.yaml").write_text(
            FLAG.format(flag=flag, description="The new checkout."))
    (root / "rollouts" / "phase_4_deployment.yaml").write_text(PLAN.format(
        flag="phase_4_deployment", extra=""))
    for flag in ("checkout_v2", "aatc_system_enabled"):
        (root / "rollouts" / f"{flag}.yaml").write_text(PLAN.format(flag=flag, extra=""))
    (root / "rollouts" / "search_v3.yaml").write_text(PLAN.format(
        flag="search_v3", extra="start_at: 2026-01-16T09:00:00Z\n"))
    for flag in ("checkout_v2", "aatc_system_enabled", "phase_4_deployment",
                 "search_v3"):
        metrics(root, flag)
    git(root, "add", "-A")
    subprocess.run(["git", "commit", "-q", "-m", "plans for the dashboard"], cwd=root,
                   env=cli_env(_dated("2026-01-15T11:50:00Z")), check=True)
    for t in ("12:00", "12:05", "12:10"):
        _cli(root, f"2026-01-15T{t}:00Z", "advance")
    # a person takes aatc back
    _cli(root, "2026-01-15T12:12:00Z", "rollback", "aatc_system_enabled", "--reason",
         hostile or "error budget burning on the canary hosts")
    # a person reverts phase_4's last advance (5 % -> 10 %); the next run holds
    sha = _advance_sha(root, "phase_4_deployment", "10")
    subprocess.run(["git", "revert", "--no-edit", sha], cwd=root, check=True,
                   capture_output=True, env=cli_env(_dated("2026-01-15T12:13:00Z")))
    for t in ("12:15", "12:20"):
        _cli(root, f"2026-01-15T{t}:00Z", "advance")
    return root


def _advance_sha(root: Path, flag: str, to: str) -> str:
    for line in git(root, "log", "--format=%H%x00%(trailers:key=Rollout-Flag,valueonly,separator=)"
                    "%x00%(trailers:key=Rollout-To,valueonly,separator=)").splitlines():
        sha, f, t = line.split("\0")
        if f == flag and t == to:
            return sha
    raise AssertionError(f"no commit moving {flag} to {to}%")
