"""The composite action (action.yml) run as GitHub runs it, as far as this machine allows.

GitHub Actions itself cannot run here. Instead each `run:` step of the composite is run by
``bash --noprofile --norc -eo pipefail`` (GitHub's `shell: bash`), with its `env:` filled in
from the inputs exactly as its expressions say, `GITHUB_OUTPUT` and `GITHUB_ACTION_PATH`
set, and `working-directory` and `if:` honoured: the install step really pip-installs this
checkout into a fresh virtualenv (what `uses: ./` or `uses: OWNER/rollout-runner@v0` does
after setup-python), and the run step drives that installed `rollout` in a real git
repository with a real remote. Hostile inputs must stay data.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner import __version__
from runner.load.yamlsafe import load_text
from runner.safetext import safe_line
from tests.conftest import PROJECT, cli_env, git

ACTION = load_text((PROJECT / "action.yml").read_text(encoding="utf-8"))
STEPS = {s["name"]: s for s in ACTION["runs"]["steps"]}
INPUT = re.compile(r"\$\{\{ inputs\.([\w-]+) \}\}")


def outputs(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def run_step(name: str, inputs: dict[str, str], cwd: Path, tmp: Path, path: str,
             extra_env: dict[str, str] | None = None
             ) -> tuple[subprocess.CompletedProcess[str] | None, dict[str, str]]:
    """Run step ``name`` of the composite as the runner would; None when its `if:` skips it."""
    step = STEPS[name]
    declared = ACTION["inputs"]
    unknown = set(inputs) - set(declared)
    assert not unknown, f"not inputs of action.yml: {unknown}"

    def value(expr: str) -> str:
        m = INPUT.fullmatch(expr)
        assert m, f"{name}: only plain input expressions are expected, got {expr!r}"
        return inputs.get(m[1], declared[m[1]].get("default", ""))

    if "if" in step:
        assert step["if"] == "${{ inputs.command != '' }}", step["if"]
        if value("${{ inputs.command }}") == "":
            return None, {}
    env = cli_env({"PATH": path, "GITHUB_ACTION_PATH": str(PROJECT), **(extra_env or {})})
    out_file = tmp / f"output-{name.replace(' ', '-')}"
    out_file.unlink(missing_ok=True)
    env["GITHUB_OUTPUT"] = str(out_file)
    for key, expr in step.get("env", {}).items():
        env[key] = value(expr)
    workdir = cwd / value(step["working-directory"]) if "working-directory" in step else cwd
    script = tmp / "step.sh"
    script.write_text(step["run"])
    assert step["shell"] == "bash"
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    return done, outputs(out_file)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The action's install step with the default inputs, in a fresh virtualenv standing for
    setup-python's Python: returns the PATH later steps of the job see."""
    tmp = tmp_path_factory.mktemp("action-install")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    path = f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"
    done, out = run_step("Install rollout-runner", {}, tmp, tmp, path,
                         # the installed package, not this checkout through PYTHONPATH
                         extra_env={"PYTHONPATH": ""})
    assert done is not None and done.returncode == 0, done and done.stdout + done.stderr
    assert out == {"version": __version__}
    # the package metadata reads the version from runner/__init__.py (hatch dynamic version)
    meta = subprocess.run([str(venv / "bin/python"), "-c",
                           "import importlib.metadata as m; print(m.version('rollout-runner'))"],
                          capture_output=True, text=True, env={"PATH": path}, cwd=tmp)
    assert meta.stdout.strip() == __version__, meta.stderr
    return path


def test_install_step_installs_the_actions_own_checkout_and_puts_rollout_on_path(
        installed: str, tmp_path: Path) -> None:
    out = subprocess.run(["rollout", "--version"], env={"PATH": installed}, cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.stdout.strip() == f"rollout {__version__}"


def test_install_input_is_one_pip_argument_never_an_option_or_a_shell(
        installed: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for hostile in (f"$(touch {marker}) x", f"-r {marker}",
                    "--index-url=http://127.0.0.1:9/ rollout-runner"):
        done, out = run_step("Install rollout-runner", {"install": hostile}, tmp_path, tmp_path,
                             installed, extra_env={"PYTHONPATH": ""})
        # pip refuses it as a requirement: nothing ran, nothing was installed
        assert done is not None and done.returncode != 0, hostile
        assert "Invalid requirement" in done.stderr, done.stderr
        assert not marker.exists() and out == {}


@pytest.fixture
def repo(example_repo: Path, bare_remote: Path) -> Path:
    (example_repo / "logs").mkdir()
    metrics(example_repo, 0.1)
    return example_repo


def metrics(repo: Path, error_rate: float) -> None:
    (repo / "logs/metrics.json").write_text(json.dumps(
        {"error_rate": error_rate, "p95_latency_ms": 100, "request_count": 500}))


def test_run_step_passes_each_line_as_one_argument_and_reports_the_exit_code(
        repo: Path, bare_remote: Path, installed: str, tmp_path: Path) -> None:
    # CRLF line ends, blank and blank-looking lines: what an editor or a YAML block leaves
    args = "--push\r\n\r\n   \n--now\r\n2026-01-15T12:00:00Z\n"
    done, out = run_step("Run rollout", {"command": "advance", "args": args}, repo, tmp_path,
                         installed)
    assert done is not None and done.returncode == 0, done.stdout + done.stderr
    assert "+ rollout advance --push --now 2026-01-15T12:00:00Z\n" in done.stdout
    assert out == {"exit-code": "0", "rolled-back": "false", "rolled_back": "", "paused": "",
                   "metrics_unreadable": "", "changed": "1", "commits": "1",
                   "head": git(repo, "rev-parse", "HEAD")}
    assert git(bare_remote, "log", "-1", "--format=%s", "main") == (
        "rollout(phase_4_deployment): start at 0%")


def test_hostile_flag_reason_and_args_stay_data(
        repo: Path, bare_remote: Path, installed: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    assert run_step("Run rollout", {"command": "advance", "args": "--push"}, repo, tmp_path,
                    installed)[0].returncode == 0  # type: ignore[union-attr]
    reason = f"$(touch {marker}) `touch {marker}`; rm -rf ~ * && touch {marker} | x"
    done, out = run_step("Run rollout", {"command": "pause", "args": "--push",
                                         "reason": reason, "flag": "phase_4_deployment"},
                         repo, tmp_path, installed)
    assert done is not None and done.returncode == 0, done.stdout + done.stderr
    assert not marker.exists()
    assert out["exit-code"] == "0"
    trailer = git(bare_remote, "log", "-1", "--format=%(trailers:key=Rollout-Reason,valueonly)",
                  "main")
    assert reason in trailer  # recorded literally: no expansion, no globbing, no splitting

    # the same through `args` lines: each line one argument, whatever it holds
    done, out = run_step("Run rollout", {"command": "resume", "args": "\n".join(
        ["--push", "--reason", reason, "--", "phase_4_deployment"])}, repo, tmp_path, installed)
    assert done is not None and done.returncode == 0, done.stdout + done.stderr
    assert not marker.exists()
    assert git(bare_remote, "log", "-1", "--format=%s", "main") == (
        "rollout(phase_4_deployment): resume at 0%")

    # a flag that looks like an option is still the flag (after --): no help, no usage
    done, out = run_step("Run rollout", {"command": "pause", "flag": "--help"}, repo, tmp_path,
                         installed)
    assert done is not None and done.returncode == 1 and out["exit-code"] == "1"
    assert "usage:" not in (done.stdout + done.stderr).lower()
    assert "::error title=rollout pause::exit code 1" in done.stdout

    # a line break in `reason` cannot add an argument or print a workflow command
    done, out = run_step("Run rollout", {"command": "pause", "reason":
                                         "why\n::error::injected\n--push",
                                         "flag": "phase_4_deployment"},
                         repo, tmp_path, installed)
    assert done is not None and done.returncode == 0, done.stdout + done.stderr
    assert not any(line.startswith("::error::injected") for line in done.stdout.splitlines())
    assert git(bare_remote, "log", "-1", "--format=%s", "main") == (
        "rollout(phase_4_deployment): resume at 0%")  # nothing pushed


@pytest.mark.parametrize("command", ["pause; touch {m}", "$(touch {m})", "--version", "",
                                     "Advance", "advance\nvalidate"])
def test_command_must_be_one_lower_case_word(command: str, repo: Path, installed: str,
                                             tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    done, out = run_step("Run rollout", {"command": command.format(m=marker)}, repo, tmp_path,
                         installed)
    assert not marker.exists()
    if command == "":  # only install: the run step is skipped
        assert done is None
        return
    assert done is not None and done.returncode == 2 and out == {}
    assert done.stdout.startswith("::error title=rollout-runner::command: one lower-case word")
    assert len(done.stdout.splitlines()) == 1  # the bad value quoted on that one line


@pytest.mark.parametrize(("ok", "step_exit"), [("", 4), ("4", 0), ("1, 4", 0), ("1", 4)])
def test_ok_exit_codes_let_a_rollback_through_and_the_outputs_say_so(
        ok: str, step_exit: int, repo: Path, bare_remote: Path, installed: str,
        tmp_path: Path) -> None:
    start = {"command": "advance", "args": "--push\n--now\n2026-01-15T12:00:00Z",
             "ok-exit-codes": ok}
    done, out = run_step("Run rollout", start, repo, tmp_path, installed)
    assert done is not None and done.returncode == 0 and out["exit-code"] == "0"
    metrics(repo, 4.2)
    bad = {**start, "args": "--push\n--now\n2026-01-15T12:06:00Z"}
    done, out = run_step("Run rollout", bad, repo, tmp_path, installed)
    assert done is not None and done.returncode == step_exit, done.stdout + done.stderr
    assert out == {"exit-code": "4", "rolled-back": "true", "rolled_back": "phase_4_deployment",
                   "paused": "", "metrics_unreadable": "", "changed": "1", "commits": "1",
                   "head": git(bare_remote, "rev-parse", "main")}
    assert "rollback" in git(bare_remote, "log", "-1", "--format=%s", "main")
    assert ("::error title=rollout advance::exit code 4" in done.stdout) == (step_exit != 0)
    # every output of the action is one the step wrote
    for name, spec in ACTION["outputs"].items():
        m = re.fullmatch(r"\$\{\{ steps\.(\w+)\.outputs\.([\w-]+) \}\}", spec["value"])
        assert m and m[1] in {"run", "install"}, name
        assert m[1] == "install" or m[2] in out, name


def test_a_requested_rollback_says_so_in_the_outputs(
        repo: Path, bare_remote: Path, installed: str, tmp_path: Path) -> None:
    assert run_step("Run rollout", {"command": "advance", "args": "--push"}, repo, tmp_path,
                    installed)[0].returncode == 0  # type: ignore[union-attr]
    done, out = run_step("Run rollout", {"command": "rollback", "args": "--push",
                                         "flag": "phase_4_deployment", "reason": "bad canary"},
                         repo, tmp_path, installed, extra_env={"GITHUB_ACTOR": "octocat"})
    assert done is not None and done.returncode == 0, done.stdout + done.stderr
    assert out["exit-code"] == "0" and out["rolled-back"] == "true"
    assert out["rolled_back"] == "phase_4_deployment"  # the action's rolled-back-flags
    assert git(bare_remote, "log", "-1", "--format=%(trailers:key=Rollout-Requested-By,"
               "valueonly)", "main") == "octocat"


def test_ok_exit_codes_are_numbers_only(repo: Path, installed: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for bad in (f"4; touch {marker}", "$(id)", "4\n5", "-1"):
        done, out = run_step("Run rollout", {"command": "status", "ok-exit-codes": bad}, repo,
                             tmp_path, installed)
        assert done is not None and done.returncode == 2 and out == {}, bad
        assert done.stdout.startswith("::error title=rollout-runner::ok-exit-codes:")
    assert not marker.exists()


def test_working_directory_is_where_the_command_runs(
        repo: Path, installed: str, tmp_path: Path) -> None:
    done, out = run_step("Run rollout", {"command": "validate", "working-directory": "repo"},
                         repo.parent, tmp_path, installed)
    assert done is not None and done.returncode == 0, done.stdout + done.stderr
    assert out["exit-code"] == "0"


def test_every_input_reaches_a_script_only_through_env() -> None:
    def walk(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [s for v in node.values() for s in walk(v)]
        if isinstance(node, list):
            return [s for v in node for s in walk(v)]
        return [node] if isinstance(node, str) else []

    for step in ACTION["runs"]["steps"]:
        if "run" in step:
            assert "${{" not in step["run"], step["name"]
            for expr in step.get("env", {}).values():
                assert INPUT.fullmatch(expr), expr
    # every input the scripts read is declared, with a description and a default
    for name, spec in ACTION["inputs"].items():
        assert spec["description"].strip() and "default" in spec, name
    used = {m for s in walk(ACTION["runs"]) for m in INPUT.findall(s)}
    assert used == set(ACTION["inputs"]), used ^ set(ACTION["inputs"])


@pytest.mark.parametrize("reason", ["-rf /", "--force", "--push\n::error::x", "-h", "--"])
def test_a_reason_that_looks_like_an_option_is_the_rollbacks_reason(
        reason: str, repo: Path, bare_remote: Path, installed: str, tmp_path: Path) -> None:
    # passed as --reason=VALUE: a rollback from the Actions page never fails on its reason
    assert run_step("Run rollout", {"command": "advance", "args": "--push"}, repo, tmp_path,
                    installed)[0].returncode == 0  # type: ignore[union-attr]
    done, out = run_step("Run rollout", {"command": "rollback", "args": "--push",
                                         "flag": "phase_4_deployment", "reason": reason},
                         repo, tmp_path, installed)
    assert done is not None and done.returncode == 0, done.stdout + done.stderr
    assert out["exit-code"] == "0" and out["rolled-back"] == "true"
    assert "usage:" not in (done.stdout + done.stderr).lower()
    recorded = git(bare_remote, "log", "-1",
                   "--format=%(trailers:key=Rollout-Reason,valueonly)", "main")
    assert recorded.endswith(f"({safe_line(reason)})")  # recorded as one safe line


def test_a_rollout_without_its_metrics_file_warns_and_turns_the_step_red_at_the_deadline(
        example_repo: Path, bare_remote: Path, installed: str, tmp_path: Path) -> None:
    # a fresh checkout: nothing wrote logs/metrics.json (issue 21)
    summary = tmp_path / "summary.md"
    gh = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    steps = []
    for minute in ("00", "10", "31"):
        args = f"--push\n--now\n2026-01-15T12:{minute}:00Z\n"
        done, out = run_step("Run rollout", {"command": "advance", "args": args}, example_repo,
                             tmp_path, installed, extra_env=gh)
        assert done is not None
        steps.append((done, out))
    (start, _), (held, held_out), (paused, paused_out) = steps
    assert start.returncode == 0 and "::warning" not in start.stderr, start.stderr
    assert held.returncode == 0, held.stdout + held.stderr
    assert "::warning title=rollout metrics::phase_4_deployment: metrics could not be read" \
        in held.stderr and held_out["metrics_unreadable"] == "phase_4_deployment"
    assert paused.returncode == 1, paused.stdout + paused.stderr
    assert paused_out["exit-code"] == "1" and paused_out["paused"] == "phase_4_deployment"
    assert "::error title=rollout advance::exit code 1" in paused.stdout
    assert "paused because its metrics could not be read" in paused.stderr
    assert summary.read_text().count("logs/metrics.json does not exist") == 2
