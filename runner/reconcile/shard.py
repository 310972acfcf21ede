"""Which shard of ``rollout advance --shard I/N`` a rollout belongs to: a stable hash of its plan name."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (0-based, as GitHub's ``strategy.job-index``) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count}: not in 0..{self.count - 1}")

    def holds(self, plan_name: str) -> bool:
        """Whether the rollout of ``plan_name`` (its file stem in ``rollouts/``) is this
        shard's. SHA-256, not ``hash()``: the same on every machine, process and Python
        version, so N runners started apart from each other split the rollouts between them
        with none left out and none taken twice."""
        return shard_of(plan_name, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(plan_name: str, count: int) -> int:
    """The shard (0 to ``count`` - 1) of the rollout of ``plan_name``."""
    digest = hashlib.sha256(plan_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count
