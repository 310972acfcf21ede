"""``rollout validate``: check flags, plans and config; exit 1 with one line per problem."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.cli.commands import SUMMARIES
from runner.cli.common import UsageError, add_repo_argument, gitops_root, print_json
from runner.gates.lint import repository_source_problems
from runner.load import check_repository
from runner.load.config import load_notify
from runner.load.problems import Problem
from runner.review.validate_text import problem_line, summary, warning_line
from runner.safetext import safe_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help=SUMMARIES["validate"],
                       description="Check every flag, rollout plan and rollout state against "
                       "the schemas and each other. Exit 0 when valid, 1 when not, 2 on "
                       "usage errors.")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="report on these files (or folders) only; references between files "
                   "are still checked across the whole repository")
    add_repo_argument(p)
    p.add_argument("--format", choices=("text", "json", "github"), default="text",
                   help="github prints ::error annotations for GitHub Actions")
    p.set_defaults(run=run)


def _escape(s: str, prop: bool = False) -> str:
    s = s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return s.replace(":", "%3A").replace(",", "%2C") if prop else s


def run(args: argparse.Namespace) -> int:
    root = gitops_root(args)
    top = root.resolve()
    paths: list[Path] = []
    everything = False
    for p in args.paths:
        # pre-commit passes paths relative to the current folder; a user may give them
        # relative to --repo
        found = next((c for c in (p, root / p) if c.exists()), None)
        if found is None:
            raise UsageError(f"{p}: no such file")
        found = found.resolve()
        if found != top and top not in found.parents:
            raise UsageError(f"{p}: not inside the repository {root}")
        if found == top:
            everything = True  # `rollout validate .`
        elif found.is_dir():
            paths.extend(f for f in found.rglob("*") if f.is_file())
        else:
            paths.append(found)
    only = None if everything or not args.paths else paths
    checked = check_repository(root, only=only)
    problems = checked.problems
    if checked.repository is not None:
        # metric-source mistakes (a misspelt template variable, a gate without a query)
        # would make every evaluation an error at run time: report them at review time
        wanted = None if only is None else {p.relative_to(top).as_posix() for p in only}
        problems = [p for p in repository_source_problems(checked)
                    if wanted is None or p.path in wanted]
    # [tool.rollout.notify]: checked here, not by the runner's check (a problem there only
    # silences a notification target; it never stops a run)
    problems = sorted({*problems, *load_notify(root)[1]})
    warnings = checked.warnings
    if args.format == "json":
        print_json({"valid": not problems, "problems": [p.as_dict() for p in problems]})
    elif args.format == "github":
        for p in problems:  # each an annotation: the values in it one line, capped
            _annotate("error", p)
        for p in warnings:
            _annotate("warning", p)
    else:
        for p in problems:
            print(problem_line(p))
        for p in warnings:
            print(warning_line(p))
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        try:
            "✓✗".encode(encoding)
            plain = False
        except (UnicodeEncodeError, LookupError):
            plain = True  # a console that cannot print them (cp1252)
        print(summary(problems, warnings, *checked.counted,
                      files=None if only is None else len(only), ascii_only=plain))
    return 1 if problems else 0


def _annotate(level: str, p: Problem) -> None:
    title = _escape(safe_line(p.field or "rollout validate", 200), prop=True)
    print(f"::{level} file={_escape(safe_line(p.path, 1000), True)},line={p.line},"
          f"col={p.column},title={title}::{_escape(safe_line(str(p), 2000))}")
