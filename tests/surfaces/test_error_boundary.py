"""The one error boundary (``runner.cli.main.run_command``) and the one error hierarchy.

In-process: ``main([...])`` with a command whose ``run`` raises what the table says. A
:class:`RolloutError` is one line and its kind's exit code; anything else is a bug: exit 3,
one line, no traceback unless ``ROLLOUT_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable

import pytest

import runner
import runner.cli.validate
from runner.cli.main import main
from runner.errors import (
    ContentError,
    Declined,
    ExternalError,
    RolloutError,
    UsageError,
)
from runner.git import GitError
from runner.reconcile.runs import Stop

CASES: list[tuple[str, BaseException, int, str]] = [
    ("usage", UsageError("--since 'x': not a date"), 2,
     "rollout validate: error: --since 'x': not a date"),
    ("content", ContentError("flags/a.yaml: not YAML"), 1,
     "rollout validate: error: flags/a.yaml: not YAML"),
    ("git", GitError(("log",), "fatal: bad object"), 1,
     "rollout validate: error: git log: fatal: bad object"),
    ("declined", Stop("another run is in progress"), 1,
     "rollout validate: error: another run is in progress"),
    ("two lines", ExternalError("first\nsecond"), 1,
     "rollout validate: error: first\\nsecond"),
    ("a bug", ValueError("boom\nmore"), 3,
     "rollout validate: internal error: boom (set ROLLOUT_DEBUG=1 for a traceback)"),
    ("a bug without words", KeyError(), 3,
     "rollout validate: internal error: KeyError (set ROLLOUT_DEBUG=1 for a traceback)"),
    ("ctrl-c", KeyboardInterrupt(), 130, "rollout validate: interrupted"),
]


def raising(error: BaseException) -> Callable[..., int]:
    def run(args: object) -> int:
        raise error
    return run


@pytest.mark.parametrize(("error", "code", "line"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_an_error_is_one_line_and_its_exit_code(
        error: BaseException, code: int, line: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ROLLOUT_DEBUG", raising=False)
    monkeypatch.setattr(runner.cli.validate, "run", raising(error))
    assert main(["validate"]) == code
    out = capsys.readouterr()
    assert out.out == "" and out.err == line + "\n"


def test_debug_re_raises_a_bug_for_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_DEBUG", "1")
    monkeypatch.setattr(runner.cli.validate, "run", raising(ValueError("boom")))
    with pytest.raises(ValueError, match="boom"):
        main(["validate"])
    monkeypatch.setattr(runner.cli.validate, "run", raising(GitError(("log",), "fatal")))
    with pytest.raises(GitError):  # where git failed, for whoever debugs it
        main(["validate"])


def test_debug_never_turns_a_usage_error_into_a_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ROLLOUT_DEBUG", "1")
    monkeypatch.setattr(runner.cli.validate, "run", raising(UsageError("--x: bad")))
    assert main(["validate"]) == 2
    assert capsys.readouterr().err == "rollout validate: error: --x: bad\n"


def test_the_kinds_are_the_exit_codes() -> None:
    assert RolloutError.exit_code == 1
    assert UsageError.exit_code == 2
    assert ContentError.exit_code == ExternalError.exit_code == Declined.exit_code == 1
    # the commands' old import path still names the same class
    from runner.cli.common import UsageError as common_usage_error

    assert common_usage_error is UsageError


#: Exception classes of runner/ that are not (yet) RolloutErrors, with the reason.
OUTSIDE: dict[str, str] = {}


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(runner.__path__, "runner."):
        if info.name.endswith("__main__") or info.name.startswith("runner.telemetry"):
            continue  # running the command line; optional extras not always installed
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, BaseException)
                    and value.__module__ == info.name and not name.startswith("_")):
                found[f"{info.name}.{name}"] = value
    return found


def test_every_public_exception_class_is_a_rollout_error() -> None:
    classes = _exception_classes()
    assert "runner.git.GitError" in classes and len(classes) >= 20
    strays = sorted(name for name, cls in classes.items()
                    if not issubclass(cls, RolloutError) and name not in OUTSIDE)
    assert strays == [], "derive them from a kind in runner/errors.py"
