"""The issue-17 case end to end, with real git, a bare remote and real processes: a
scheduled ``advance --push --publish …`` fetched, then its gate source was slow; meanwhile a
person ran ``rollout rollback --push --publish …`` to the same targets. The scheduled run
commits nothing and must not publish its older HEAD over the rollback, on the branch or in
the folder, and must say so."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import cli_env, git, run_cli
from tests.runner.helpers import advance, at, write_metrics

#: A gate source that reads the metrics file; in a run given ``GATE_WAIT=FOLDER`` it first
#: says it started (``FOLDER/started``) and waits for the test's go (``FOLDER/go``, at most
#: 60 s): the slow gate source of the issue.
GATE_SCRIPT = """import os, sys, time
wait = os.environ.get("GATE_WAIT")
if wait:
    open(os.path.join(wait, "started"), "w").close()
    for _ in range(1200):
        if os.path.exists(os.path.join(wait, "go")):
            break
        time.sleep(0.05)
sys.stdout.write(open("logs/metrics.json").read())
"""
SLOW_SOURCE = """[tool.rollout.metrics]
type = "command"
command = ["python3", "gate.py"]
timeout = "90s"
"""


def _slow_gates(repo: Path) -> None:
    text = (repo / "pyproject.toml").read_text()
    start = text.index("[tool.rollout.metrics]")
    end = text.index("\n\n", start)
    (repo / "pyproject.toml").write_text(text[:start] + SLOW_SOURCE.strip() + text[end:])
    (repo / "gate.py").write_text(GATE_SCRIPT)
    git(repo, "add", "gate.py")
    git(repo, "commit", "-qam", "gates from a command")
    git(repo, "push", "-q", "origin", "main")


def _pct(doc: dict) -> float:  # type: ignore[type-arg]
    return doc["flags"]["phase_4_deployment"]["rollout"]["percentage"]


def test_a_stale_scheduled_run_never_publishes_over_a_rollback(
        example_repo: Path, bare_remote: Path, tmp_path: Path) -> None:
    public = tmp_path / "public"
    targets = ["--publish", f"dir:{public}", "--publish", "branch:rollout-published"]
    write_metrics(example_repo)
    _slow_gates(example_repo)
    for minutes in (0, 5):  # start, then 5 %: published
        out = advance(example_repo, minutes, "--push", *targets)
        assert out.returncode == 0, out.stdout + out.stderr
    assert _pct(json.loads((public / "flags.json").read_text())) == 5
    # the scheduled run: its own clone, gates slow
    scheduled = tmp_path / "scheduled"
    git(tmp_path, "clone", "-q", str(bare_remote), str(scheduled))
    write_metrics(scheduled)
    stale_head = git(scheduled, "rev-parse", "HEAD")
    signals = tmp_path / "gate"
    signals.mkdir()
    env = cli_env({"GITHUB_ACTIONS": "true", "GATE_WAIT": str(signals)})
    proc = subprocess.Popen([sys.executable, "-m", "runner", "advance", "--now", at(7),
                             "--push", *targets], cwd=scheduled, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (signals / "started").exists():  # it has fetched, it waits
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the scheduled run never reached its gates"
            time.sleep(0.05)
        # meanwhile a person rolls back, pushed and published to the same targets
        out = run_cli(["rollback", "phase_4_deployment", "--reason", "latency", "--now", at(8),
                       "--push", *targets], cwd=example_repo, inprocess=False)
        assert out.returncode in (0, 4), out.stdout + out.stderr
        rollback = git(example_repo, "rev-parse", "HEAD")
        assert git(bare_remote, "rev-parse", "main") == rollback
        assert _pct(json.loads((public / "flags.json").read_text())) == 0
        (signals / "go").touch()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stdout + stderr
    assert git(scheduled, "rev-parse", "HEAD") == stale_head  # it committed nothing
    # it said so, once per target, and never a plain "published"
    warnings = [line for line in stdout.splitlines() if line.startswith("::warning")]
    assert len(warnings) == 2, stdout
    assert all("a newer publication is in place" in w and rollback[:12] in w for w in warnings)
    assert not any(line.startswith("published") for line in stdout.splitlines()), stdout
    # the rollback stays published: in the folder and on the branch
    for doc in (json.loads((public / "flags.json").read_text()),
                json.loads(git(bare_remote, "show", "rollout-published:flags.json"))):
        assert doc["source_commit"] == rollback and _pct(doc) == 0
    flagd = json.loads((public / "flags.flagd.json").read_text())
    assert flagd["metadata"]["sourceCommit"] == rollback
    # and the next fresh run publishes forward as usual
    git(scheduled, "pull", "-q", "--ff-only", "origin", "main")
    out = advance(scheduled, 9, "--push", *targets, env={"GITHUB_ACTIONS": ""})
    assert out.returncode == 0 and "warning" not in out.stdout, out.stdout + out.stderr
