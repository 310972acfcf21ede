"""``rollout init``: the files of a new GitOps repository, from ``runner/templates/init``.

All or nothing: every target is checked first, and when one exists nothing is written.

The workflow templates are this project's own workflows, whose install step uses the
checkout's ``action.yml`` (``uses: ./``). A new repository's workflows use the released
action instead (``uses: REPOSITORY@vMAJOR``), or, with ``--install SPEC``, set up Python and
pip-install SPEC. Its pre-commit config names the hook repository at this version's tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner import REPOSITORY, __version__
from runner.errors import Declined
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


class Exists(Declined):
    """A file the scaffold would write is already there: nothing was written."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists; nothing was written")
        self.path = path


@dataclass(frozen=True)
class Planned:
    target: Path
    content: bytes


#: The tag a release pushes, and the pre-commit config's ``rev``: ``v`` + the version.
TAG = f"v{__version__}"
#: The action a new repository's workflows use: this project's, by its major tag (moved to
#: each release of that major version; see docs/workflows.md, Releasing).
ACTION = f"{REPOSITORY}@v{__version__.split('.')[0]}"

#: The install step as each workflow template (and this project's own workflows) has it.
LOCAL_INSTALL = (
    "      - name: Install rollout-runner\n"
    "        # this repository's own action.yml, from the checkout above (the commit this run is\n"
    "        # for); a repository that `rollout init` wrote uses the released action instead\n"
    "        uses: ./ # zizmor: ignore[self-repository] the workspace holds only that checkout\n"
    "        with:\n"
    '          python-version: "3.12"\n')

#: ... in a new repository: the released action (zizmor asks for a commit SHA; a major tag
#: is the choice here, so that fixes of this major version arrive, and the reason is said)
ACTION_INSTALL = (
    "      - name: Install rollout-runner\n"
    "        # the runner's own action at its major tag, so that fixes arrive; pin a commit SHA\n"
    "        # instead to choose each update yourself\n"
    f"        uses: {ACTION} # zizmor: ignore[unpinned-uses]\n"
    "        with:\n"
    '          python-version: "3.12"\n')

#: ... with ``--install SPEC`` (SPEC already quoted as one shell word): pip, as before the
#: action existed, for an organisation that hosts rollout-runner itself
PIP_INSTALL = (
    "      - uses: actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0\n"
    "        with:\n"
    '          python-version: "3.12"\n'
    "      - name: Install rollout-runner\n"
    "        run: python -m pip install --disable-pip-version-check @SPEC@\n")


def render(template: str, text: str, install: str | None) -> str:
    """One template's text for a new repository."""
    text = text.replace("@REPOSITORY@", REPOSITORY).replace("@VERSION@", __version__)
    if template.startswith("workflows/"):
        if LOCAL_INSTALL not in text:
            raise ValueError(f"{template}: no install step to rewrite")
        step = ACTION_INSTALL if install is None else PIP_INSTALL.replace("@SPEC@", install)
        text = text.replace(LOCAL_INSTALL, step)
    return text


def planned_files(root: Path, install: str | None = None) -> list[Planned]:
    """``install``: None for the released action, else one quoted pip requirement."""
    out = []
    for target, template in FILES.items():
        text = render(template, (INIT / template).read_text(encoding="utf-8"), install)
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
