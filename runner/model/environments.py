"""Environments (``[tool.rollout.environments]``): the stages a flag is promoted through, in order.

A repository that declares none has one implicit environment and behaves as it always did;
every environment code path is taken only when some are declared (docs/environments.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runner.model.config import MetricsConfig
from runner.model.freeze import FreezeWindow

#: An environment's name: it goes into state file names, commit subjects, trailers and URLs.
ENVIRONMENT_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True, slots=True)
class Environment:
    """One declared environment, in promotion order in ``RepoConfig.environments``."""

    name: str
    #: The metric source of plans running here that name none; None: ``[tool.rollout.metrics]``.
    metrics: MetricsConfig | None = None
    #: The environment's default publish targets (``dir:PATH``, ``branch:NAME``, ``file:PATH``).
    publish: tuple[str, ...] = ()
    #: ``freeze``: this environment's own freeze windows (besides ``RepoConfig.freezes``).
    freezes: tuple[FreezeWindow, ...] = ()
