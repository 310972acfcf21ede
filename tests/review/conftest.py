"""Fixtures of the review tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.review import dashboard_repo


@pytest.fixture(scope="session")
def dashboard_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dashboard_repo.build`` with the hostile rollback reason, built once (a dozen CLI
    runs): tests read it, never change it."""
    return dashboard_repo.build(tmp_path_factory.mktemp("dashboard") / "repo",
                                hostile=dashboard_repo.HOSTILE)
