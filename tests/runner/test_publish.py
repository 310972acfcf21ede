"""`rollout advance --publish PATH` writes the resolved artifact (runner.evaluate.artifact).

Needs the evaluation layer (branch ``eval``); in the runner branch alone the import fails
and so does this test, by design: it proves the wiring once the branches are merged.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git
from tests.runner.helpers import advance, write_metrics


def test_publish_writes_the_artifact_when_it_changed_and_a_revert_reaches_it(
        example_repo: Path, tmp_path: Path) -> None:
    write_metrics(example_repo)
    artifact = tmp_path / "published" / "flags.json"
    artifact.parent.mkdir()
    out = advance(example_repo, 0, "--publish", str(artifact))
    assert out.returncode == 0, out.stderr
    assert f"published {artifact}" in out.stdout
    first = artifact.read_bytes()
    assert git(example_repo, "rev-parse", "HEAD") in first.decode()
    out = advance(example_repo, 0, "--publish", str(artifact))  # nothing changed
    assert out.returncode == 0 and f"{artifact} unchanged" in out.stdout
    assert advance(example_repo, 5, "--publish", str(artifact)).returncode == 0
    assert _percentage(artifact) == 5  # the new step reached the artifact
    git(example_repo, "revert", "--no-edit", "HEAD")
    out = advance(example_repo, 6, "--publish", str(artifact))
    assert out.returncode == 0, out.stderr
    assert _percentage(artifact) == 0  # the revert reached it within one run


def _percentage(artifact: Path) -> float:
    return json.loads(artifact.read_text())["flags"]["phase_4_deployment"]["rollout"]["percentage"]


def test_publish_leaves_the_artifact_alone_when_only_the_commit_changed(
        example_repo: Path, tmp_path: Path) -> None:
    """Applications reload a rewritten file: a commit that changes nothing they serve (here
    an unrelated commit) must not rewrite it, even though the artifact names its commit."""
    write_metrics(example_repo)
    artifact = tmp_path / "flags.json"
    assert advance(example_repo, 0, "--publish", str(artifact)).returncode == 0
    first_commit = git(example_repo, "rev-parse", "HEAD")
    before = artifact.stat()
    (example_repo / "NOTES.md").write_text("unrelated\n")
    git(example_repo, "add", "NOTES.md")
    git(example_repo, "commit", "-qm", "unrelated change")
    out = advance(example_repo, 1, "--publish", str(artifact))
    assert out.returncode == 0, out.stderr
    assert f"{artifact} unchanged" in out.stdout
    after = artifact.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert json.loads(artifact.read_text())["source_commit"] == first_commit
    # a damaged file that still claims the right digest is not "the same": it is rewritten
    doc = json.loads(artifact.read_text())
    doc["flags"]["phase_4_deployment"]["enabled"] = False
    artifact.write_text(json.dumps(doc))
    out = advance(example_repo, 2, "--publish", str(artifact))
    assert f"published {artifact}" in out.stdout, out.stdout + out.stderr
    assert json.loads(artifact.read_text())["flags"]["phase_4_deployment"]["enabled"] is True
    # a real change is published, stamped with the commit that made it
    assert advance(example_repo, 5, "--publish", str(artifact)).returncode == 0
    doc = json.loads(artifact.read_text())
    assert doc["source_commit"] == git(example_repo, "rev-parse", "HEAD")
    assert doc["flags"]["phase_4_deployment"]["rollout"]["percentage"] == 5
