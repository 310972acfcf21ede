"""``rollout init``: the files of a new GitOps repository, from ``runner/templates/init``.

All or nothing: every target is checked first, and when one exists nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner import __version__
from runner.files import write_new
from runner.load.schemas import SCHEMA_FILES, schema_dir

INIT = Path(__file__).resolve().parent.parent / "templates" / "init"

#: target path in the new repository -> template under runner/templates/init
FILES: dict[str, str] = {
    "pyproject.toml": "pyproject.toml",
    "flags/new_checkout.yaml": "flag.yaml",
    "rollouts/new_checkout.yaml": "rollout.yaml",
    ".pre-commit-config.yaml": "pre-commit-config.yaml",
    ".gitignore": "gitignore",
    ".github/workflows/validate.yml": "workflows/validate.yml",
    ".github/workflows/advance.yml": "workflows/advance.yml",
    ".github/workflows/control.yml": "workflows/control.yml",
}


class Exists(Exception):
    """A file the scaffold would write is already there: nothing was written."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists; nothing was written")
        self.path = path


@dataclass(frozen=True)
class Planned:
    target: Path
    content: bytes


def install_spec() -> str:
    """What the workflows pip-install: this version of rollout-runner."""
    return f'"rollout-runner=={__version__}"'


def planned_files(root: Path, install: str | None = None) -> list[Planned]:
    spec = install or install_spec()
    out = []
    for target, template in FILES.items():
        text = (INIT / template).read_text(encoding="utf-8")
        if template.startswith("workflows/"):
            text = text.replace("@INSTALL@", spec)
        out.append(Planned(root / target, text.encode()))
    # the schemas beside flags/ and rollouts/, so `# yaml-language-server: $schema=` works
    for name in SCHEMA_FILES.values():
        out.append(Planned(root / "schemas" / name, (schema_dir() / name).read_bytes()))
    return out


def scaffold(root: Path, install: str | None = None) -> list[Path]:
    """Write the new repository under ``root``; raise :class:`Exists` before writing anything."""
    files = planned_files(root, install)
    for f in files:
        if f.target.exists() or f.target.is_symlink():
            raise Exists(f.target)
    written = []
    for f in files:
        write_new(f.target, f.content)  # a file that appeared since the check is not overwritten
        written.append(f.target)
    return written
