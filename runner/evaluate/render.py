"""Format dispatch: a repository rendered as the native artifact or as a flagd file.

The two formats are built by their own modules (:mod:`runner.evaluate.artifact`,
:mod:`runner.evaluate.flagd`, which builds on the native content); this module only picks
one and turns it into bytes, the same way for both.
"""

from __future__ import annotations

import json

from runner.evaluate.artifact import artifact_document
from runner.evaluate.flagd import flagd_document
from runner.model import Repository

FORMATS = ("native", "flagd")


def render_artifact(repo: Repository, *, source_commit: str | None, fmt: str = "native",
                    generation: int | None = None, environment: str | None = None) -> bytes:
    """The artifact as bytes: deterministic, so unchanged input gives unchanged bytes.
    ``generation`` (a publication's: see :mod:`runner.reconcile.publish`) is stamped in
    beside the source commit when given; ``rollout build`` gives none. ``environment``:
    the declared environment whose view ``repo`` is (None: a repository without any)."""
    if fmt == "native":
        doc = artifact_document(repo, source_commit=source_commit, generation=generation,
                                environment=environment)
    elif fmt == "flagd":
        doc = flagd_document(repo, source_commit=source_commit, generation=generation,
                             environment=environment)
    else:
        raise ValueError(f"unknown artifact format {fmt!r} (expected one of {', '.join(FORMATS)})")
    text = json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")
