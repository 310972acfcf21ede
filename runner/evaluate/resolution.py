"""What an evaluation returns: :class:`Resolution`, with OpenFeature's reason and error names.

Shared by the compiler (which builds every outcome in advance), the environment (whose
outcomes override a flag's) and the hot path, and by the SDK and the OpenFeature provider
that hand them to applications.
"""

from __future__ import annotations

from typing import Any, NamedTuple

# OpenFeature reason names, plus one of ours where none fits.
STATIC = "STATIC"
DEFAULT = "DEFAULT"
TARGETING_MATCH = "TARGETING_MATCH"
SPLIT = "SPLIT"
DISABLED = "DISABLED"
ERROR = "ERROR"
PREREQUISITE_FAILED = "PREREQUISITE_FAILED"

# OpenFeature error codes.
FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
TYPE_MISMATCH = "TYPE_MISMATCH"
PROVIDER_NOT_READY = "PROVIDER_NOT_READY"
GENERAL = "GENERAL"


class Resolution(NamedTuple):
    """The outcome of one evaluation (a named tuple: cheap to make, immutable, comparable)."""

    value: Any
    variant: str | None
    reason: str
    error_code: str | None = None
    details: str = ""
