"""Rollout Runner: GitOps feature-flag rollouts, and the SDK that evaluates the flags.

``from runner import FlagClient, is_enabled`` is the application-facing API; the names are
resolved lazily so that the CLI does not pay for the SDK's imports. ``runner.evaluate`` is
the pure evaluation layer (a package); the module-level SDK call of that name is
``runner.sdk.evaluate``, and ``FlagClient.evaluate`` on a client.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_SDK = {"FlagClient", "is_enabled", "value", "all_flags", "get_all_flags"}


def __getattr__(name: str) -> Any:
    if name in _SDK:
        from runner import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
