"""A repository as it is at one revision (or in the working tree), loaded by ``runner.load``.

A revision is extracted with one ``git archive`` of the config and the two folders into a
temporary directory, then loaded by the same loader ``rollout validate`` uses. When the
revision is invalid, the problems are kept and every file that is valid on its own is still
loaded, so a review can show what changed next to why it does not validate.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from runner.git import GitError, run, run_bytes
from runner.load import Problem, check_repository, folders
from runner.model import Repository

WORKING_TREE = "working tree"


@dataclass
class Snapshot:
    label: str  # the revision as given, or "working tree"
    sha: str | None  # None for the working tree
    repository: Repository
    problems: list[Problem] = field(default_factory=list)


def load_dir(root: Path, label: str, sha: str | None) -> Snapshot:
    checked = check_repository(root)
    return Snapshot(label, sha, checked.salvaged, list(checked.problems))


def _extract(root: Path, sha: str, dest: Path) -> None:
    """Write pyproject.toml and the flags and rollouts folders of ``sha`` under ``dest``."""
    wanted = ["pyproject.toml"]
    listing = run(root, "ls-tree", "-z", "--name-only", sha, "--",
                  "pyproject.toml").stdout.split("\0")
    if "pyproject.toml" in listing:
        blob = run_bytes(root, "cat-file", "blob", f"{sha}:pyproject.toml").stdout
        (dest / "pyproject.toml").write_bytes(blob)
    # the folders as the revision's own config names them; the validating load_config would
    # call them missing here, before they are extracted, and fall back to the defaults
    wanted = [name.strip("/") for name in folders(dest)]
    # NUL-separated and taken literally: a name is never quoted, split or read as a pattern
    present = [n for n in run(root, "--literal-pathspecs", "ls-tree", "-z", "--name-only", sha,
                              "--", *wanted).stdout.split("\0") if n]
    if not present:
        return
    tar = run_bytes(root, "--literal-pathspecs", "archive", "--format=tar", sha, "--",
                    *present).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(dest, filter="data")
        else:  # Python < 3.11.4: keep regular files and folders only, inside dest
            members = [m for m in archive.getmembers() if (m.isfile() or m.isdir())
                       and not m.name.startswith(("/", "..")) and "/../" not in m.name]
            archive.extractall(dest, members=members)


def load_revision(root: Path, label: str, sha: str) -> Snapshot:
    with tempfile.TemporaryDirectory(prefix="rollout-plan-") as tmp:
        dest = Path(tmp)
        try:
            _extract(root, sha, dest)
        except GitError as e:  # an object missing or damaged: git says which
            raise GitError(e.command, str(e), what=f"cannot read {label}") from e
        except tarfile.TarError as e:  # git archive wrote something tarfile cannot read
            raise GitError(("archive",), str(e), what=f"cannot read {label}") from e
        return load_dir(dest, label, sha)


def load_working_tree(root: Path) -> Snapshot:
    return load_dir(root, WORKING_TREE, None)
