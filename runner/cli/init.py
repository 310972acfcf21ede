"""``rollout init [DIR]``: scaffold a GitOps repository (new, or an existing service's) that
validates at once."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from runner import REPOSITORY, __version__
from runner.cli.commands import SUMMARIES
from runner.cli.common import UsageError
from runner.onboarding.scaffold import MAX_SHARDS, METRICS_TEMPLATES, Exists, Planned, scaffold
from runner.onboarding.scaffold_environments import parse_environments, variable_suffix
from runner.safetext import safe_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init", help=SUMMARIES["init"],
        description="Write flags/ with an example flag, rollouts/ with a safe plan for it, the "
        "JSON Schemas, GitHub Actions workflows (using the rollout-runner action), a "
        "pre-commit config (the rollout-validate hook at this version's tag) and "
        "[tool.rollout] in pyproject.toml. Never overwrites: an existing pyproject.toml gets "
        "the [tool.rollout] tables appended (its own bytes kept), an existing .gitignore the "
        "missing lines, and every other existing file is kept as it is; the output says which. "
        "A pyproject.toml that already has [tool.rollout] is refused (exit 1, nothing "
        "written). The workflows trigger on the default branch: origin/HEAD's, else the "
        "current branch of the git repository, else main. Exit 2 on usage errors.")
    major = __version__.split(".")[0]
    p.add_argument("--install", metavar="SPEC",
                   help=f"have the workflows set up Python and pip-install SPEC instead of "
                   f"using the released action (uses: {REPOSITORY}@v{major}); e.g. "
                   f"rollout-runner=={__version__}, or git+https://github.com/ORG/"
                   f"rollout-runner@v{__version__} where you host it")
    p.add_argument("--metrics", choices=sorted(METRICS_TEMPLATES), default="prometheus",
                   help="the default metric source: prometheus (default; its URL and token "
                   "from the environment variables PROMETHEUS_URL and PROMETHEUS_TOKEN, which "
                   "the advance workflow sets from the repository's variable and secret) or "
                   "file (metrics/FLAG.json, written by an earlier step): docs/metrics.md")
    p.add_argument("--branch", metavar="NAME",
                   help="the branch the workflows run on (default: detected, see above)")
    p.add_argument("--shards", metavar="N", default="1",
                   help="run `rollout advance` as N jobs of a GitHub Actions matrix, each taking "
                   "its share of the rollouts (--shard I/N), then one job that publishes "
                   f"(default 1: one advance job; at most {MAX_SHARDS}); docs/workflows.md")
    p.add_argument("--environments", metavar="A,B",
                   help="scaffold a repository whose flags are promoted through these "
                   "environments, in order (e.g. staging,production): each with its own metric "
                   "source and publish branch, the plan with a 1h soak and a person's approval "
                   "of the last one's first step; docs/environments.md")
    p.add_argument("dir", nargs="?", type=Path, default=Path("."), metavar="DIR",
                   help="where (default: the current folder; created when missing)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root: Path = args.dir
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: not a folder")
    install = None
    if args.install is not None:
        # it lands inside a double-quoted shell word on a YAML line of each workflow
        if not re.fullmatch(r"[A-Za-z0-9._:/@+=<>!~,\-\[\]#%]+", args.install):
            raise UsageError(f"--install {args.install!r}: a pip requirement or URL without "
                             "spaces, quotes or shell characters")
        install = f'"{args.install}"'
    if args.branch is not None and not re.fullmatch(r"[^\x00-\x20\x7f~^:?*\[\\]+", args.branch):
        raise UsageError(f"--branch {args.branch!r}: not a branch name")
    shards = _shards(args.shards)
    environments: tuple[str, ...] = ()
    if args.environments is not None:
        try:
            environments = parse_environments(args.environments)
        except ValueError as e:
            raise UsageError(f"--environments {safe_line(repr(args.environments), 100)}: "
                             f"{safe_line(str(e), 200)}") from None
    is_git = _git_ok(root, "rev-parse", "--git-dir")
    has_origin = is_git and _git_ok(root, "remote", "get-url", "origin")
    try:
        files = scaffold(root, install, branch=args.branch, metrics=args.metrics,
                         shards=shards, environments=environments)
    except Exists as e:
        print(safe_line(f"rollout init: {e}"), file=sys.stderr)
        return 1
    verbs = {"create": "created", "merge": "merged into", "skip": "kept (exists, not overwritten)"}
    for f in files:
        what = " ([tool.rollout] appended)" if f.action == "merge" and f.target.suffix == ".toml" else ""
        print(safe_line(f"{verbs[f.action]} {f.target}{what}"))
    branch = _branch_of(files)
    where = shlex.quote(str(root))
    steps = [f"cd {where}"]
    if not is_git:
        # plain `git init` may make `master`, while the workflows trigger on the branch above
        steps.append(f"git init -b {shlex.quote(branch)}")
    steps += ["rollout validate", "git add -A", "git commit -m 'Set up Rollout Runner'"]
    print(file=sys.stderr)
    if environments:
        _environments_note(branch, args.metrics, environments)
    else:
        _note(branch, args.metrics)
    print("next:", file=sys.stderr)
    for step in steps:
        print(f"  {safe_line(step)}", file=sys.stderr)
    if not has_origin:
        print("  git remote add origin git@github.com:OWNER/REPOSITORY.git", file=sys.stderr)
    print(f"  git push -u origin {safe_line(shlex.quote(branch))}", file=sys.stderr)
    return 0


def _note(branch: str, metrics: str) -> None:
    print(safe_line(f"workflows run on the branch {branch}; set the repository variable "
                    "PROMETHEUS_URL and the secret PROMETHEUS_TOKEN (Settings > Secrets and "
                    "variables > Actions)" if metrics == "prometheus" else
                    f"workflows run on the branch {branch}; an earlier workflow step writes "
                    "metrics/FLAG.json (docs/metrics.md)"), file=sys.stderr)


def _environments_note(branch: str, metrics: str, names: tuple[str, ...]) -> None:
    order = " -> ".join(names)
    if metrics == "prometheus":
        where = ("set, per environment, the repository variable PROMETHEUS_URL_<ENV> and the "
                 "secret PROMETHEUS_TOKEN_<ENV> (" + ", ".join(
                     f"PROMETHEUS_URL_{variable_suffix(n)}" for n in names) + ")")
    else:
        where = "an earlier workflow step writes metrics/ENV/FLAG.json (docs/metrics.md)"
    print(safe_line(f"environments {order}, each published to its branch "
                    f"rollout-published-ENV (docs/environments.md); workflows run on the "
                    f"branch {branch}; {where}"), file=sys.stderr)


def _shards(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,4}", value) or not 1 <= int(value) <= MAX_SHARDS:
        raise UsageError(f"--shards {safe_line(repr(value), 100)}: a whole number of shard "
                         f"jobs from 1 to {MAX_SHARDS}")
    return int(value)


def _git_ok(root: Path, *args: str) -> bool:
    where = root
    while not where.exists():
        where = where.parent
    try:
        return subprocess.run(["git", "-C", str(where), *args],
                              capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _branch_of(files: list[Planned]) -> str:
    """The branch written into advance.yml (as the scaffold decided it)."""
    for f in files:
        if f.target.name == "advance.yml":
            m = re.search(rb"^    branches: \[(.*)\]$", f.content, re.M)
            if m:
                raw = m.group(1).decode()
                return str(json.loads(raw)) if raw.startswith('"') else raw
    return "main"
