"""Fixtures for the evaluation tests: small GitOps repositories written flag by flag."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml


def flagd_schemas() -> Path:
    """flagd's schemas as shipped in the package; a test that needs them FAILS when absent."""
    from runner.evaluate.flagd import BUNDLED_SCHEMAS

    if not (BUNDLED_SCHEMAS / "flags.json").is_file():
        pytest.fail(f"flagd's schemas are missing from the package: {BUNDLED_SCHEMAS}")
    return BUNDLED_SCHEMAS


def flag_doc(key: str, **fields: Any) -> dict[str, Any]:
    return {"key": key, "description": f"{key} for tests", "owner": "test-team",
            "risk": "low", **fields}


class RepoWriter:
    """Writes flags, plans and rollout states into a folder, then loads it."""

    def __init__(self, root: Path):
        self.root = root
        (root / "flags").mkdir(parents=True, exist_ok=True)
        (root / "rollouts").mkdir(exist_ok=True)

    def flag(self, key: str, **fields: Any) -> RepoWriter:
        text = yaml.safe_dump(flag_doc(key, **fields), sort_keys=False)
        (self.root / "flags" / f"{key}.yaml").write_text(text, encoding="utf-8")
        return self

    def plan(self, flag: str, **fields: Any) -> RepoWriter:
        doc = {"flag": flag, "strategy": "safe", "metrics": {"type": "file", "path": "m.json"},
               "gates": {"error_rate": 1.0}, **fields}
        (self.root / "rollouts" / f"{flag}.yaml").write_text(yaml.safe_dump(doc), "utf-8")
        return self

    def state(self, flag: str, percentage: float, phase: str = "progressing",
              step: int | None = None) -> RepoWriter:
        """A state as the runner writes it; ``step`` defaults to the step at ``percentage``."""
        from runner.load import load_repository
        from runner.load.statefile import dump_state
        from runner.model import Phase, RolloutState
        from runner.reconcile.decide import step_for_percentage

        plan = load_repository(self.root).plans[flag]
        if step is None:
            step = step_for_percentage(plan, percentage)
        now = datetime(2026, 1, 1, tzinfo=UTC)
        state = RolloutState(flag=flag, plan=plan.name, phase=Phase(phase), step=step,
                             current_percentage=percentage, started_at=now,
                             step_started_at=now, plan_digest=plan.digest)
        (self.root / "rollouts" / f"{plan.name}.state.json").write_text(dump_state(state),
                                                                         "utf-8")
        return self

    def config(self, text: str) -> RepoWriter:
        (self.root / "pyproject.toml").write_text(text, encoding="utf-8")
        return self

    def load(self) -> Any:
        from runner.load import load_repository

        return load_repository(self.root)


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[str], RepoWriter]:
    def make(name: str = "repo") -> RepoWriter:
        return RepoWriter(tmp_path / name)

    return make
