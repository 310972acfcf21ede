"""``rollout init --shards N``: advance.yml as N shard jobs of a matrix, then one publish job.

GitHub Actions cannot run here. What stands in for it: the workflow's structure (the matrix,
``fail-fast``, the one run-level concurrency group, ``needs``), GitHub's schema and zizmor,
and the jobs' own ``run:`` scripts run by bash as Actions runs them — every shard's Advance
step, then the Publish step — against a real repository and bare remote."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.load.yamlsafe import load_text
from runner.onboarding.scaffold import (
    ADVANCE_TARGET,
    INIT,
    LOCAL_INSTALL,
    SHARDED_ADVANCE,
    fill_shards,
    planned_files,
    render,
)
from runner.reconcile.shard import shard_of
from tests.conftest import cli_env, git
from tests.surfaces.test_workflows import _shim, check_jsonschema, check_uses, steps, zizmor

SHARDS = 4


def _advance_yml(tmp_path: Path, shards: int, install: str | None = None) -> str:
    files = planned_files(tmp_path / "new", install, shards=shards)
    (f,) = [f for f in files if f.target == tmp_path / "new" / ADVANCE_TARGET]
    return f.content.decode()


def _local_text(shards: int) -> str:
    """The sharded workflow as this project would run it (``uses: ./``, as the tests of the
    unsharded one read .github/workflows/advance.yml)."""
    return fill_shards((INIT / SHARDED_ADVANCE).read_text(encoding="utf-8"), shards)


def _local(shards: int) -> dict[str, Any]:
    doc = load_text(_local_text(shards))
    assert isinstance(doc, dict)
    return doc


def test_one_shard_is_todays_workflow_byte_for_byte(tmp_path: Path) -> None:
    default = _advance_yml(tmp_path, 1)
    assert default == render("workflows/advance.yml",
                             (INIT / "workflows/advance.yml").read_text(encoding="utf-8"), None)
    assert "--shard" not in default and "matrix" not in default


def test_the_matrix_runs_every_shard_side_by_side_then_publishes_once(tmp_path: Path) -> None:
    doc = load_text(_advance_yml(tmp_path, SHARDS))
    assert isinstance(doc, dict)
    assert set(doc["jobs"]) == {"advance", "publish", "issues"}
    advance, publish, issues = (doc["jobs"][k] for k in ("advance", "publish", "issues"))
    assert advance["strategy"]["matrix"] == {"shard": list(range(SHARDS))}
    # a shard that rolls back fails its job (exit 4): it must not cancel the other shards
    assert advance["strategy"]["fail-fast"] is False
    assert "max-parallel" not in advance["strategy"]
    # one group for the whole run (runs queue behind each other, never cancelled); none on
    # the shard jobs, which would hold one running and one pending and cancel the rest
    assert doc["concurrency"] == {"group": "rollout-runner", "cancel-in-progress": False}
    assert all("concurrency" not in job for job in doc["jobs"].values())
    (step,) = [s for s in advance["steps"] if s.get("name") == "Advance"]
    assert step["env"]["SHARD"] == "${{ matrix.shard }}"
    assert f'rollout advance --push --shard "$SHARD/{SHARDS}"' in step["run"]
    assert "--publish" not in step["run"] and "rollout publish" not in step["run"]
    # each shard's rollbacks under its own output name, all of them kept
    assert advance["outputs"] == {f"rolled_back_{i}": f"${{{{ steps.advance.outputs.rolled_back_{i} }}}}"
                                  for i in range(SHARDS)}
    # publishing: once, after every shard (rolled back or failed included), from the
    # branch as they left it
    assert publish["needs"] == "advance" and publish["if"] == "${{ !cancelled() }}"
    assert "strategy" not in publish
    assert publish["permissions"] == {"contents": "write"}
    checkout = publish["steps"][0]
    assert checkout["with"]["ref"] == "${{ github.ref }}" and checkout["with"]["fetch-depth"] == 0
    runs = [s.get("run", "") for s in publish["steps"]]
    assert sum("rollout publish --push --to branch:rollout-published" in r for r in runs) == 1
    assert any('rollout status --format markdown >> "$GITHUB_STEP_SUMMARY"' in r for r in runs)
    all_runs = " ".join(s.get("run", "") for s in steps(doc))
    assert all_runs.count("rollout publish") == 1
    # the issues: every shard's rollbacks, from the commit published
    assert issues["needs"] == ["advance", "publish"]
    assert issues["if"] == "${{ !cancelled() && join(needs.advance.outputs.*, '') != '' }}"
    (run,) = [s for s in issues["steps"] if s.get("name") == "Open or update the issues"]
    assert run["env"]["ROLLED_BACK"] == "${{ join(needs.advance.outputs.*, ',') }}"
    assert issues["steps"][0]["with"]["ref"] == "${{ needs.publish.outputs.head || github.ref }}"
    assert issues["steps"][0]["with"]["persist-credentials"] is False


@pytest.mark.parametrize("install", [None, '"rollout-runner==1.0"', "local"])
def test_the_sharded_workflow_passes_zizmor_and_githubs_schema(tmp_path: Path,
                                                               install: str | None) -> None:
    path = tmp_path / "advance.yml"
    text = _local_text(SHARDS) if install == "local" else _advance_yml(tmp_path, SHARDS, install)
    path.write_text(text)
    out = zizmor(path)
    assert out.returncode == 0 and "No findings" in out.stdout, out.stdout + out.stderr
    assert check_jsonschema("vendor.github-workflows", path).returncode == 0
    if install == "local":  # the released action goes by its major tag, said beside it
        check_uses(text)
    assert (text.count(LOCAL_INSTALL) == 3) == (install == "local")
    for step in steps(load_text(text)):
        if "run" in step:
            assert "${{" not in step["run"], step["run"]


PLAN = ("flag: {key}\nstrategy: safe\nwait: 5m\n"
        "gates:\n  error_rate: 1.0\n  request_count: 100\n")


def test_each_shards_script_then_the_publish_script_as_actions_runs_them(
        example_repo: Path, bare_remote: Path, tmp_path: Path) -> None:
    """Every shard's Advance step in its own clone, then the Publish step in another: each
    rollout started by its own shard; a rollback reported under the shard's output name
    (status 4); the flags published once, to the remote's rollout-published branch."""
    keys = ["phase_4_deployment", *(f"feature_{i:02d}" for i in range(6))]
    for key in keys[1:]:
        (example_repo / f"flags/{key}.yaml").write_text(
            f"key: {key}\ndescription: A sharded rollout.\nowner: t\nrisk: low\n")
        (example_repo / f"rollouts/{key}.yaml").write_text(PLAN.format(key=key))
    (example_repo / "logs").mkdir()
    (example_repo / "logs/metrics.json").write_text(json.dumps(
        {"error_rate": 0.1, "p95_latency_ms": 100, "request_count": 500}))
    git(example_repo, "add", "-A")
    git(example_repo, "commit", "-qm", "seven rollouts")
    git(example_repo, "push", "-q", "origin", "main")
    doc = _local(SHARDS)
    (advance,) = [s for s in doc["jobs"]["advance"]["steps"] if s.get("name") == "Advance"]
    (publish,) = [s for s in doc["jobs"]["publish"]["steps"] if s.get("name") == "Publish"]
    path = f"{_shim(tmp_path)}{os.pathsep}{os.environ['PATH']}"

    def bash(script: str, cwd: Path, output: Path, **extra: str) -> str:
        env = cli_env({"PATH": path, "GITHUB_OUTPUT": str(output), **extra})
        out = subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env,
                             capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def shards(round_: int, metrics: dict[str, float]) -> dict[int, dict[str, str]]:
        outputs = {}
        for i in range(SHARDS):
            clone = tmp_path / f"r{round_}-shard{i}"
            git(tmp_path, "clone", "-q", str(bare_remote), str(clone))
            (clone / "logs").mkdir(exist_ok=True)
            (clone / "logs/metrics.json").write_text(json.dumps(metrics))
            output = tmp_path / f"r{round_}-out{i}"
            stdout = bash(advance["run"], clone, output, SHARD=str(i))
            mine = [k for k in keys if shard_of(k, SHARDS) == i]
            assert sorted(k for k in keys if k in stdout) == sorted(mine), (i, stdout)
            outputs[i] = dict(line.split("=", 1) for line in output.read_text().splitlines())
        return outputs

    first = shards(1, {"error_rate": 0.1, "p95_latency_ms": 100, "request_count": 500})
    assert all(o["status"] == "0" and o[f"rolled_back_{i}"] == "" for i, o in first.items())
    started = git(bare_remote, "log", "--format=%s", "main").splitlines()
    assert sum(s.endswith("start at 0%") for s in started) == len(keys)
    # failing metrics: every rollout is rolled back, each by its own shard, which says so
    # under its own output name and exits 4 (the job's Rolled back step fails it)
    second = shards(2, {"error_rate": 9.0, "p95_latency_ms": 100, "request_count": 500})
    for i, o in second.items():
        mine = sorted(k for k in keys if shard_of(k, SHARDS) == i)
        assert sorted(filter(None, o[f"rolled_back_{i}"].split(","))) == mine
        assert o["status"] == ("4" if mine else "0")
    # the issues job's ROLLED_BACK: every shard's outputs joined (GitHub's join of
    # needs.advance.outputs.*), empty ones included
    joined = ",".join(o[f"rolled_back_{i}"] for i, o in second.items())
    assert sorted(filter(None, joined.split(","))) == sorted(keys)
    # the publish job: once, the branch as the shards left it
    clone = tmp_path / "publish"
    git(tmp_path, "clone", "-q", str(bare_remote), str(clone))
    output = tmp_path / "publish-out"
    bash(publish["run"], clone, output)
    head = git(bare_remote, "rev-parse", "main")
    assert f"head={head}" in output.read_text()
    served = json.loads(git(bare_remote, "show", "rollout-published:flags.json"))
    assert served["source_commit"] == head
    assert git(bare_remote, "rev-list", "--count", "rollout-published") == "1"


@pytest.mark.cli_inprocess
def test_init_shards_writes_the_matrix_and_refuses_a_bad_count(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    for bad in ("0", "257", "x", "-1", "2.5", ""):
        out = run_cli(["init", f"--shards={bad}", str(tmp_path / "bad")], cwd=tmp_path)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, (bad, out.stderr)
        assert "--shards" in out.stderr and "1 to 256" in out.stderr
        assert not (tmp_path / "bad").exists()
    out = run_cli(["init", "--shards", "3", "--branch", "trunk", str(tmp_path / "new")],
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = load_text((tmp_path / "new" / ADVANCE_TARGET).read_text())
    assert isinstance(doc, dict)
    assert doc["jobs"]["advance"]["strategy"]["matrix"]["shard"] == [0, 1, 2]
    assert doc["on"]["push"]["branches"] == ["trunk"]
    assert "trunk" in out.stderr  # the branch read back from the sharded workflow too
