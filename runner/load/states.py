"""Rollout state files (``rollouts/<plan>.state.json``) as found: every readable state, and the
problems of the rest. (``statefile`` is their format: parsing and writing one.)"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from runner.load.documents import located
from runner.load.layout import files_in
from runner.load.problems import Problem
from runner.load.schema_errors import schema_findings
from runner.load.statefile import STATE_SUFFIX, state_from_dict
from runner.load.yamlsafe import YamlError, decode
from runner.model import RolloutState


@dataclass(frozen=True)
class StateFiles:
    states: dict[str, RolloutState]  # by flag; of two files for one flag, the later wins
    problems: list[Problem]


def load_states(folder: Path, prefix: str) -> StateFiles:
    """Every state file in ``folder``; ``prefix`` names them relative to the repository root."""
    out = StateFiles({}, [])
    for p in files_in(folder, (STATE_SUFFIX,)):
        rel = f"{prefix}{p.name}"
        try:
            text = decode(p.read_bytes())
            data = json.loads(text)
        except json.JSONDecodeError as e:
            out.problems.append(Problem(rel, e.lineno, e.colno, "", f"unreadable rollout state: {e.msg}"))
            continue
        except (OSError, YamlError, ValueError) as e:
            out.problems.append(Problem(rel, 1, 1, "", f"unreadable rollout state: {e}"))
            continue
        bad = schema_findings(data, "state")
        if bad:
            out.problems.extend(located(text, rel, bad))  # JSON is YAML: same positions
            continue
        try:
            state = state_from_dict(data)
        except ValueError as e:  # a time the schema's format check let through
            out.problems.append(Problem(rel, 1, 1, "", f"unreadable rollout state: {e}"))
            continue
        out.states[state.flag] = state
    return out
