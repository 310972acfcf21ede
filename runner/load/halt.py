"""The halt switch files (``<rollouts_dir>/HALT.json``, ``HALT.<env>.json``): read, checked, written.

``rollout halt`` commits one; ``rollout unhalt`` removes it. They sit in the rollouts folder,
visible beside the plans (``ls rollouts/`` shows a halt; a hidden file would not), named so
that no loader takes one for a plan (``*.yaml``) or a state (``*.state.json``). A file that
cannot be read is a problem ``rollout validate`` names, and holds like a halt: someone meant
to stop the line (docs/environments.md, Freeze windows and halting).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.load.documents import Unreadable, read_bytes
from runner.load.layout import prefix
from runner.load.problems import Problem, shown
from runner.model import RepoConfig
from runner.model.freeze import Halt
from runner.timefmt import parse_iso, utc_iso_seconds

HALT_STEM = "HALT"
#: The longest name and reason a halt records (one line each).
MAX_BY, MAX_REASON = 200, 500


def halt_path(rollouts_dir: str, environment: str | None = None) -> str:
    """The halt file of ``environment`` (None: every environment, or the whole repository),
    relative to the repository root."""
    name = f"{HALT_STEM}.{environment}.json" if environment else f"{HALT_STEM}.json"
    return f"{prefix(rollouts_dir)}{name}"


def halt_document(halt: Halt) -> bytes:
    """The file ``rollout halt`` commits: one JSON object, keys in a fixed order."""
    doc: dict[str, Any] = {"halted_by": halt.by, "halted_at": utc_iso_seconds(halt.at),
                           "reason": halt.reason}
    if halt.environment is not None:
        doc["environment"] = halt.environment
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def _parse(data: Any, environment: str | None) -> Halt | str:
    """The halt ``data`` records, or why it is no halt document."""
    if not isinstance(data, dict):
        return "expected a JSON object with halted_by, halted_at and reason"
    for key, limit in (("halted_by", MAX_BY), ("reason", MAX_REASON)):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            return f"{key}: expected text of 1 to {limit} characters, found {shown(value)}"
    written = data.get("halted_at")
    try:
        at = parse_iso(written if isinstance(written, str) else "")
    except ValueError:
        return f"halted_at: {shown(data.get('halted_at'))} is not an ISO 8601 time"
    extra = sorted(set(data) - {"halted_by", "halted_at", "reason", "environment"})
    if extra:
        return f"{extra[0]}: unknown field (halted_by, halted_at, reason, environment)"
    if data.get("environment", environment) != environment:
        return (f"environment: {shown(data.get('environment'))}, but the file is "
                f"{'every environment' if environment is None else environment}'s")
    return Halt(data["halted_by"], at, data["reason"], environment)


def read_halt(root: Path, config: RepoConfig, environment: str | None = None
              ) -> tuple[Halt | None, Problem | None]:
    """The halt of ``environment`` exactly (None: ``HALT.json``), with the problem of a file
    that is there but is no halt document: it then still holds, saying so."""
    rel = halt_path(config.rollouts_dir, environment)
    path = root / rel
    if not path.exists() and not path.is_symlink():
        return None, None
    try:
        parsed = _parse(json.loads(read_bytes(path, rel).decode("utf-8")), environment)
    except (Unreadable, UnicodeDecodeError, json.JSONDecodeError) as e:
        parsed = f"cannot read: {e}"
    if isinstance(parsed, Halt):
        return parsed, None
    held = Halt("someone", parse_iso("1970-01-01T00:00:00Z"),
                f"{rel} is there but cannot be read ({parsed}); fix or remove it", environment)
    return held, Problem(rel, 1, 1, "", parsed)


def halt_of(root: Path, config: RepoConfig, environment: str | None = None) -> Halt | None:
    """The halt that holds ``environment``: its own file first, else ``HALT.json`` (every
    environment; the whole repository without environments)."""
    own = read_halt(root, config, environment)[0] if environment is not None else None
    return own if own is not None else read_halt(root, config)[0]


def halt_problems(root: Path, config: RepoConfig) -> list[Problem]:
    """The problems of the halt files that are there (``rollout validate``): one that is no
    halt document, one named for an environment the config does not declare."""
    out = []
    for environment in (None, *(e.name for e in config.environments)):
        problem = read_halt(root, config, environment)[1]
        if problem is not None:
            out.append(problem)
    folder = root / config.rollouts_dir
    declared = {e.name for e in config.environments}
    for path in sorted(folder.glob(f"{HALT_STEM}.*.json")) if folder.is_dir() else ():
        name = path.name[len(HALT_STEM) + 1:-len(".json")]
        if name not in declared:
            out.append(Problem(f"{prefix(config.rollouts_dir)}{path.name}", 1, 1, "",
                               f"a halt of environment {shown(name)}, which [tool.rollout."
                               "environments] does not declare: it holds nothing"))
    return out


__all__ = ["HALT_STEM", "halt_document", "halt_of", "halt_path", "halt_problems",
           "read_halt"]
