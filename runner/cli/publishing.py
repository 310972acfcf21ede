"""``--publish PATH``: write the resolved artifact (runner.evaluate.render, .artifact)."""

from __future__ import annotations

import sys
from pathlib import Path

from runner.safetext import safe_line


def publish(root: Path, path: str, head: str | None) -> bool:
    """Render the artifact for the repository at ``head`` and write it when what it serves
    changed (a new commit alone, e.g. an observe commit, does not rewrite it).
    False (after a message) when it could not be written."""
    try:
        # imported here so that every other command works without the evaluation layer
        from runner.evaluate.artifact import publish_atomic
        from runner.evaluate.render import render_artifact
    except ImportError as e:
        print(safe_line(f"rollout advance: --publish needs runner.evaluate ({e})"), file=sys.stderr)
        return False
    if head is None:
        from runner.git import Git

        head = Git.open(root).head()
    from runner.load import InvalidRepository, load_repository

    try:
        # the repository as this run left it (its new states), stamped with the commit
        data = render_artifact(load_repository(root), source_commit=head)
        changed = publish_atomic(Path(path), data)
    except InvalidRepository as e:
        print(safe_line(f"rollout advance: --publish: the repository is not valid: {e}",
                       limit=2000), file=sys.stderr)
        return False
    except OSError as e:
        print(safe_line(f"rollout advance: --publish {path}: {e.strerror or e}"),
              file=sys.stderr)
        return False
    print(safe_line(f"published {path}" if changed else f"{path} unchanged"))
    return True
