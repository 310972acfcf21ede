"""Rollout Runner: GitOps feature-flag rollouts, and the SDK that evaluates the flags.

``from runner import FlagClient, is_enabled`` is the application-facing API; the names are
resolved lazily so that the CLI does not pay for the SDK's imports. ``runner.evaluate`` is
the pure evaluation layer (a package); the module-level SDK call of that name is
``runner.sdk.evaluate``, and ``FlagClient.evaluate`` on a client.
"""

from __future__ import annotations

from typing import Any

#: The one place of the version: the package metadata reads it (pyproject.toml's
#: [tool.hatch.version]); `rollout init` pins the action's major tag and the pre-commit hook's
#: rev from it; the release workflow refuses a tag that is not ``v`` + this.
__version__ = "0.2.0"

#: The project's home on GitHub (owner/name): where the action (``uses: REPOSITORY@v0``) and
#: the pre-commit hook (``repo: https://github.com/REPOSITORY``) that ``rollout init``
#: writes are fetched from. pyproject.toml's [project.urls] say the same (a test checks).
REPOSITORY = "rollout-runner/rollout-runner"

_SDK = {"FlagClient", "is_enabled", "value", "all_flags", "get_all_flags"}


def __getattr__(name: str) -> Any:
    if name in _SDK:
        from runner import sdk  # lazy: the CLI imports this package, never the SDK

        return getattr(sdk, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
