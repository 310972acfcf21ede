"""``rollout init``: the files of a GitOps repository, new or existing, from ``runner/templates/init``.

Never an overwrite: every target is checked first. A file that exists is kept as it is
(skipped) or, for ``pyproject.toml`` and ``.gitignore``, merged: the existing bytes stay, the
scaffold's ``[tool.rollout]`` tables (or missing ignore lines) are appended. A
``pyproject.toml`` that already has ``[tool.rollout]`` is refused before anything is written.

The workflows trigger on the repository's default branch (:func:`default_branch`: the
remote's ``origin/HEAD``, else the current branch, else ``main``).

The workflow templates are this project's own workflows, whose install step uses the
checkout's ``action.yml`` (``uses: ./``). A new repository's workflows use the released
action instead (``uses: REPOSITORY@vMAJOR``), or, with ``--install SPEC``, set up Python and
pip-install SPEC. Its pre-commit config names the hook repository at this version's tag.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from runner import REPOSITORY, __version__
from runner.errors import Declined
from runner.files import write_atomic, write_new
from runner.load.schemas import SCHEMA_FILES, schema_dir
from runner.onboarding import scaffold_environments

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


#: ``--metrics``: the template of pyproject.toml for each default metric source
METRICS_TEMPLATES = {"prometheus": "pyproject.toml", "file": "pyproject-file.toml"}
#: the files merged into when they exist (the others are skipped)
MERGED = ("pyproject.toml", ".gitignore")


class Exists(Declined):
    """The scaffold cannot go into what is there (``[tool.rollout]`` already set up, a
    pyproject.toml that is not TOML...): nothing was written."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}; nothing was written")
        self.path = path


@dataclass(frozen=True)
class Planned:
    target: Path
    content: bytes
    #: "create", "merge" (``content`` is the whole merged file) or "skip" (exists, kept)
    action: str = "create"


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


#: the push trigger of advance.yml as the template has it
BRANCH_TRIGGER = "    branches: [main]\n"
#: ``--shards N`` above 1: advance.yml as N shard jobs of a matrix and one publish job after
SHARDED_ADVANCE = "workflows/sharded/advance.yml"
ADVANCE_TARGET = ".github/workflows/advance.yml"
#: The most shards ``--shards`` takes (GitHub runs at most 256 jobs of one matrix).
MAX_SHARDS = 256


def default_branch(root: Path) -> str:
    """The branch the workflows trigger on: ``origin/HEAD``'s branch when the repository has
    one, else its current branch (an unborn one included), else ``main``."""
    where = root if root.is_dir() else root.parent
    while not where.is_dir():
        where = where.parent

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", "-C", str(where), *args], capture_output=True,
                                 text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    remote = git("symbolic-ref", "--quiet", "refs/remotes/origin/HEAD")
    if remote.startswith("refs/remotes/origin/"):
        return remote.removeprefix("refs/remotes/origin/")
    return git("symbolic-ref", "--quiet", "--short", "HEAD") or "main"


def fill_shards(text: str, shards: int) -> str:
    """The sharded advance.yml for ``shards`` jobs: their indexes, their outputs."""
    outputs = "".join(f"      rolled_back_{i}: ${{{{ steps.advance.outputs.rolled_back_{i} }}}}\n"
                      for i in range(shards))
    return (text.replace("@SHARD_OUTPUTS@\n", outputs)
            .replace("@SHARD_LIST@", ", ".join(map(str, range(shards))))
            .replace("@SHARDS@", str(shards)))


def render(template: str, text: str, install: str | None, branch: str = "main",
           shards: int = 1) -> str:
    """One template's text for a new repository."""
    text = text.replace("@REPOSITORY@", REPOSITORY).replace("@VERSION@", __version__)
    if template == SHARDED_ADVANCE:
        text = fill_shards(text, shards)
    if template in ("workflows/advance.yml", SHARDED_ADVANCE):
        if BRANCH_TRIGGER not in text:
            raise ValueError(f"{template}: no branch trigger to rewrite")
        # a plain name as YAML has it; any other, one JSON (= YAML) string
        name = branch if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", branch) else json.dumps(branch)
        text = text.replace(BRANCH_TRIGGER, f"    branches: [{name}]\n")
    if template.startswith("workflows/"):
        if LOCAL_INSTALL not in text:
            raise ValueError(f"{template}: no install step to rewrite")
        step = ACTION_INSTALL if install is None else PIP_INSTALL.replace("@SPEC@", install)
        text = text.replace(LOCAL_INSTALL, step)
    return text


def _merged(target: Path, existing: bytes, addition: str) -> bytes:
    """``existing`` unchanged, then what the scaffold adds to it; :class:`Exists` when it
    cannot go there."""
    sep = b"" if not existing or existing.endswith(b"\n") else b"\n"
    if target.name == ".gitignore":
        have = {line.strip() for line in existing.decode("utf-8", "replace").splitlines()}
        lines = [line for line in addition.splitlines()
                 if line.strip() and not line.startswith("#") and line.strip() not in have]
        if not lines:
            return existing
        return existing + sep + ("\n# Rollout Runner: the resolved flag artifact that "
                                 "`rollout advance --publish` writes\n"
                                 + "\n".join(lines) + "\n").encode()
    try:
        doc = tomllib.loads(existing.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise Exists(target, f"not valid TOML ({e}): fix it, then run rollout init again") from None
    tool = doc.get("tool")
    if isinstance(tool, dict) and "rollout" in tool:
        raise Exists(target, "already has [tool.rollout]: this repository is set up (`rollout "
                     "validate` checks it); to scaffold again, remove the [tool.rollout] "
                     "tables first")
    merged = existing + sep + b"\n" + addition.encode()
    try:
        tomllib.loads(merged.decode("utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise Exists(target, f"[tool.rollout] cannot be appended ({e}; an inline `tool = {{...}}` "
                     "table?): add the tables of `rollout init` in another folder by hand") from None
    return merged


def planned_files(root: Path, install: str | None = None, *, branch: str = "main",
                  metrics: str = "prometheus", shards: int = 1,
                  environments: tuple[str, ...] = ()) -> list[Planned]:
    """``install``: None for the released action, else one quoted pip requirement.
    ``metrics``: a key of :data:`METRICS_TEMPLATES`. ``shards``: above 1, the advance
    workflow's matrix of shard jobs. ``environments``: the names, in promotion order, of a
    repository with environments (``runner.onboarding.scaffold_environments``); none: one
    implicit environment, as ever. Each existing target is merged or skipped."""
    out = []
    templates = {**FILES, "pyproject.toml": METRICS_TEMPLATES[metrics]}
    if shards > 1:
        templates[ADVANCE_TARGET] = SHARDED_ADVANCE
    for target, template in templates.items():
        text = render(template, (INIT / template).read_text(encoding="utf-8"), install, branch,
                      shards)
        if environments:
            text = _for_environments(target, template, text, metrics, environments)
        out.append(_planned(root / target, text.encode()))
    # the schemas beside flags/ and rollouts/, so `# yaml-language-server: $schema=` works
    for name in SCHEMA_FILES.values():
        out.append(_planned(root / "schemas" / name, (schema_dir() / name).read_bytes()))
    return out


def _for_environments(target: str, template: str, text: str, metrics: str,
                      names: tuple[str, ...]) -> str:
    if target == "pyproject.toml":
        return scaffold_environments.pyproject(text, metrics, names)
    if template == "rollout.yaml":
        return scaffold_environments.plan(text, names)
    if template.startswith("workflows/"):
        return scaffold_environments.workflow(template, text, metrics, names)
    return text


def _planned(target: Path, content: bytes) -> Planned:
    if not (target.exists() or target.is_symlink()):
        return Planned(target, content)
    if target.name in MERGED and target.is_file() and not target.is_symlink():
        existing = target.read_bytes()
        merged = _merged(target, existing, content.decode())
        return Planned(target, merged, "merge" if merged != existing else "skip")
    return Planned(target, content, "skip")


def scaffold(root: Path, install: str | None = None, *, branch: str | None = None,
             metrics: str = "prometheus", shards: int = 1,
             environments: tuple[str, ...] = ()) -> list[Planned]:
    """Write the repository under ``root``: every new file created, each existing one merged
    or kept as it is (the returned list says which); raise :class:`Exists` before writing
    anything when one cannot be merged. ``branch``: None to detect it."""
    files = planned_files(root, install, branch=default_branch(root) if branch is None else branch,
                          metrics=metrics, shards=shards, environments=environments)
    for f in files:
        if f.action == "create":
            write_new(f.target, f.content)  # a file that appeared since the check is not overwritten
        elif f.action == "merge":
            write_atomic(f.target, f.content)
    return files
