"""A rollout that cannot read its metrics is loud (issue 21): a warning at every run
(``::warning`` in GitHub Actions) and a job-summary line, the ``stuck`` notification when
the progress deadline (or the source's error_limit) pauses it, and exit 1 at every run
while it stays paused for it. And an idempotent re-run says "already at", not "gates passed".

Real git repositories, real ``rollout`` processes, a real HTTP receiver on loopback."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from runner.gates.readings import MISSING_FILE, NoData, SourceCall
from runner.gates.sources import file as file_source
from runner.load import load_repository
from runner.model import GateResult, Verdict
from runner.reconcile.decide import SAMPLE_RATIO
from runner.reconcile.runs import unreadable_cause
from tests.conftest import git
from tests.notify.receivers import receiver
from tests.runner.helpers import advance, at, rollout, state, write_metrics

FLAG = "phase_4_deployment"
SECRET = "webhook-signing-key-9f8e7d6c5b4a"
TARGETS = '''
[tool.rollout.notify.targets.ops]
type = "webhook"
url_env = "OPS_URL"
secret_env = "OPS_SECRET"
events = ["stuck", "pause"]
timeout = "2s"
'''


def configure(repo: Path) -> None:
    with (repo / "pyproject.toml").open("a") as f:
        f.write(TARGETS)
    git(repo, "commit", "-qam", "notifications")


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if line.startswith("::warning title=rollout metrics::")]


def test_a_missing_metrics_file_warns_at_every_run_and_the_deadline_pause_is_red_and_stuck(
        example_repo: Path, tmp_path: Path) -> None:
    configure(example_repo)
    assert not (example_repo / "logs" / "metrics.json").exists()  # a fresh clone's checkout
    summary = tmp_path / "summary.md"
    with receiver() as ops:
        env = {"OPS_URL": f"{ops.url}/hook", "OPS_SECRET": SECRET, "GITHUB_ACTIONS": "true",
               "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(tmp_path / "out")}
        start = advance(example_repo, 0, env=env)
        assert start.returncode == 0, start.stderr
        assert warnings(start.stderr) == []  # the start reads no gates
        runs = [advance(example_repo, m, env=env) for m in (5, 20)]
        for out in runs:
            assert out.returncode == 0, out.stderr  # holding, not yet paused
            (line,) = warnings(out.stderr)
            assert FLAG in line and "logs/metrics.json does not exist" in line, line
            assert "metrics could not be read" in line and "at its progress deadline" in line
        assert ops.seen == []
        outputs = (tmp_path / "out").read_text().splitlines()
        assert outputs.count(f"metrics_unreadable={FLAG}") == 2
        assert outputs.count("metrics_unreadable=") == 1  # the start
        paused = advance(example_repo, 31, env=env)
        assert paused.returncode == 1, (paused.stdout, paused.stderr)
        assert state(example_repo)["phase"] == "paused"
        (line,) = warnings(paused.stderr)
        assert "paused because its metrics could not be read" in line
        assert f"rollout resume {FLAG}" in line
        assert [s.json()["event"] for s in ops.seen] == ["stuck"]
        assert ops.seen[0].json()["flag"] == FLAG
        # later runs: still warning, still red, no second notification (nothing committed)
        later = advance(example_repo, 45, env=env)
        assert later.returncode == 1, later.stderr
        (line,) = warnings(later.stderr)
        assert "still paused because its metrics could not be read" in line
        assert len(ops.seen) == 1
    text = summary.read_text()
    assert text.count("### Rollout metrics not read") == 4  # one section per warning run
    lines = [ln for ln in text.splitlines() if ln.startswith("- ")]
    assert len(lines) == 4 and all(FLAG.replace("_", "\\_") in ln for ln in lines), lines
    # outside GitHub Actions: a plain warning line, and no summary written anywhere
    plain = advance(example_repo, 50)
    assert plain.returncode == 1
    assert any(ln.startswith(f"warning: {FLAG}: still paused") for ln in plain.stderr.splitlines())
    # fixed: the metrics are there, a person resumes, the runs are quiet and green again
    write_metrics(example_repo)
    resumed = rollout(example_repo, "resume", FLAG, "--now", at(51))
    assert resumed.returncode == 0, resumed.stderr
    quiet = advance(example_repo, 52)
    assert quiet.returncode == 0 and "metrics could not be read" not in quiet.stderr, quiet.stderr


def test_a_failing_source_pauses_at_its_error_limit_as_stuck_and_red(
        example_repo: Path) -> None:
    configure(example_repo)
    (example_repo / "logs").mkdir(exist_ok=True)
    (example_repo / "logs" / "metrics.json").write_text("{not json")
    with receiver() as ops:
        env = {"OPS_URL": f"{ops.url}/hook", "OPS_SECRET": SECRET}
        assert advance(example_repo, 0, env=env).returncode == 0
        codes = []
        for minute in (1, 2, 3, 4):
            out = advance(example_repo, minute, env=env)
            codes.append(out.returncode)
            assert f"warning: {FLAG}: " in out.stderr and "invalid JSON" in out.stderr
            assert "after error_limit failures in a row" in out.stderr or codes[-1] == 1
            if state(example_repo)["phase"] == "paused":
                break
        assert codes[-1] == 1 and set(codes[:-1]) <= {0}, codes
        assert [s.json()["event"] for s in ops.seen] == ["stuck"]


def test_a_person_pause_and_a_lack_of_traffic_are_not_unreadable_metrics(
        example_repo: Path) -> None:
    assert advance(example_repo, 0).returncode == 0
    write_metrics(example_repo, request_count=5, error_count=0, error_rate=0.0)  # too few requests
    quiet = advance(example_repo, 5)
    assert quiet.returncode == 0 and "warning" not in quiet.stderr, quiet.stderr
    deadline = advance(example_repo, 31)  # paused at the deadline, the metrics were read
    assert state(example_repo)["phase"] == "paused"
    assert deadline.returncode == 0 and "warning" not in deadline.stderr, deadline.stderr
    # a person's pause while the file is missing is theirs, not the runner's
    (example_repo / "logs" / "metrics.json").unlink()
    assert rollout(example_repo, "resume", FLAG, "--now", at(32)).returncode == 0
    held = advance(example_repo, 33)
    assert held.returncode == 0 and "metrics could not be read" in held.stderr
    assert rollout(example_repo, "pause", FLAG, "--now", at(34)).returncode == 0
    after = advance(example_repo, 35)
    assert after.returncode == 0 and "warning" not in after.stderr, after.stderr


def test_an_idempotent_rerun_says_already_there(example_repo: Path) -> None:
    write_metrics(example_repo)
    assert advance(example_repo, 0).returncode == 0
    moved = advance(example_repo, 6)
    assert moved.returncode == 0
    assert moved.stdout.startswith(f"{FLAG}: advance 0% → 5% ("), moved.stdout
    again = advance(example_repo, 6)
    assert again.returncode == 0, again.stderr
    assert again.stdout == (f"{FLAG}: already at 5% (evaluated at {at(6)}); "
                            "nothing to do\n"), again.stdout
    assert "gates passed" not in again.stdout
    # a later run evaluates again and says what it found
    later = advance(example_repo, 7)
    assert "already at" not in later.stdout and "waiting at 5%" in later.stdout, later.stdout


# --- which gates count as unreadable ---------------------------------------------------------


def _gate(verdict: Verdict, detail: str, name: str = "error_rate",
          dry_run: bool = False) -> GateResult:
    return GateResult(name, verdict, None, "< 1", dry_run, detail)


def test_unreadable_cause_is_a_source_error_or_a_missing_file() -> None:
    missing = f"no data: metrics/x.json{MISSING_FILE}"
    assert unreadable_cause([_gate(Verdict.INCONCLUSIVE, missing)]) == missing
    assert unreadable_cause([_gate(Verdict.ERROR, "connection refused")]) == "connection refused"
    # lack of traffic, stale data, a sample-ratio mismatch, a dry-run gate: read
    assert unreadable_cause([_gate(Verdict.INCONCLUSIVE, "only 5 requests")]) is None
    assert unreadable_cause([_gate(Verdict.INCONCLUSIVE, "no data: x is stale")]) is None
    assert unreadable_cause([_gate(Verdict.ERROR, "mismatch", name=SAMPLE_RATIO)]) is None
    assert unreadable_cause([_gate(Verdict.ERROR, "refused", dry_run=True)]) is None
    assert unreadable_cause([_gate(Verdict.PASS, "")]) is None


def test_the_file_source_says_a_missing_file_as_the_runner_recognises_it(
        example_repo: Path) -> None:
    plan = load_repository(example_repo).plans[FLAG]
    assert plan.metrics is not None
    call = SourceCall(FLAG, 5.0, plan.metrics, plan.step_gates(1), example_repo,
                      datetime(2026, 1, 15, tzinfo=UTC), {}, None, "on", "off", None)
    with pytest.raises(NoData) as e:
        file_source.read(call)
    assert str(e.value).endswith(MISSING_FILE), str(e.value)
