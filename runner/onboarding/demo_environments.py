"""``rollout demo --environments``: a flag promoted from staging to production, offline.

The repository ``rollout init --environments staging,production --metrics file`` writes;
the runner walks staging to 100 % on a simulated clock (``--now``), production waits out
the one-hour soak (``promote_after``), starts, waits for a person's approval of its first
step, then walks too. Every step is a real ``rollout`` or ``git`` process, printed as a
transcript (:class:`runner.onboarding.demo.Story`).
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from runner.onboarding.demo import ALICE, FLAG, HEALTHY, DemoFailed, Story, at, play
from runner.onboarding.scaffold import scaffold

ENVIRONMENTS = ("staging", "production")
#: Runs at most per environment before the story says the walk did not finish.
MAX_RUNS = 12


def _state(s: Story, env: str) -> dict[str, object]:
    path = s.root / "rollouts" / f"{FLAG}.{env}.state.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _walk(s: Story, env: str, minute: float) -> float:
    """Advance every 5 minutes until ``env``'s rollout is completed; the minute after."""
    for _ in range(MAX_RUNS):
        s.rollout("advance", "--env", env, "--now", at(minute))
        minute += 5
        if _state(s, env).get("phase") == "completed":
            return minute
    raise DemoFailed(f"{env} did not complete in {MAX_RUNS} runs: {_state(s, env)}")


def run_promotion(root: Path, out: Callable[[str], None] = print) -> None:
    """Play the promotion story in ``root`` (an empty folder)."""
    s = Story(root, out)
    s.section("1. A repository with two environments: staging, then production")
    scaffold(root, branch="main", metrics="file", environments=ENVIRONMENTS)
    out(f"# rollout init --environments staging,production --metrics file {root}")
    for line in (root / "rollouts" / f"{FLAG}.yaml").read_text(encoding="utf-8").splitlines():
        if line.startswith(("promote_after", "environments", "  ", "strategy", "flag")) \
                and not line.lstrip().startswith("#"):
            out(f"  | {line}")
    s.git("init", "-q", "-b", "main")
    s.git("add", "-A")
    s.git("commit", "-q", "-m", "Set up Rollout Runner with staging and production", show=True)
    for env in ENVIRONMENTS:
        path = root / "metrics" / env / f"{FLAG}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(HEALTHY, indent=2) + "\n", encoding="utf-8")
    out("# metrics/staging/ and metrics/production/: a healthy window in each")

    s.section("2. Staging walks to 100 % while its gates pass; production waits")
    done = _walk(s, "staging", 0)
    s.rollout("advance", "--now", at(done))
    if _state(s, "production"):
        raise DemoFailed("production started before the soak was over")
    s.rollout("status", "--env", "production", "--now", at(done))

    s.section("3. The soak is over: production starts, and waits for a person's approval")
    soaked = done + 60
    s.rollout("advance", "--now", at(soaked))
    s.rollout("advance", "--env", "production", "--now", at(soaked + 5))
    if _state(s, "production").get("current_percentage") != 0:
        raise DemoFailed(f"production moved without approval: {_state(s, 'production')}")
    s.minute = soaked + 6
    approve = ["approve", FLAG, "--env", "production", "--reason=staging was healthy for 1h"]
    s._run([sys.executable, "-m", "runner", *approve], who=ALICE,
           show=shlex.join(["rollout", *approve]))

    s.section("4. Production walks to 100 %")
    _walk(s, "production", soaked + 10)
    s.rollout("status")
    out("$ git log --format=%s (the runner's commits name their environment)")
    for subject in s.git("log", "--reverse", "--format=%s").splitlines():
        out(f"  {subject}")


def demo_environments(keep: Path | None, out: Callable[[str], None] = print) -> int:
    return play(run_promotion, keep, out, f"`rollout status`, `rollout history {FLAG} --env "
                "production`", "rollout demo --environments")
