"""Who a rollback, pause, resume or retry is recorded as: from the environment the command
read once and passed in, never the process's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.reconcile.runs import requester


def test_the_named_requester_then_githubs_actor(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_REQUESTED_BY", "not read")
    assert requester({"ROLLOUT_REQUESTED_BY": "ann", "GITHUB_ACTOR": "bob"}, tmp_path) == "ann"
    assert requester({"GITHUB_ACTOR": "bob"}, tmp_path) == "bob"
