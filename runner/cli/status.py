"""``rollout status [FLAG]``: where each rollout is, from the committed state (no metrics read)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.cli.common import (
    add_repo_argument,
    cannot_show,
    check_target,
    gitops_root,
    print_json,
)
from runner.errors import RolloutError
from runner.safetext import safe_line

Renderer = Callable[[list[dict[str, Any]]], str]


def _text(rows: list[dict[str, Any]]) -> str:
    """One line per fact; every value from a file (names, reasons, thresholds...) goes
    through ``safe_line``: a hand-edited state or a person's reason never makes two lines."""
    out = []
    for r in rows:
        steps = "/".join(f"{p}" for p in r["steps"])
        if not r["steps"]:  # an orphaned state: its plan is gone
            where = "orphaned, no plan"
        elif r["step_started_at"]:
            where = f"step {r['step'] + 1} of {len(r['steps'])}; {steps}"
        else:
            where = f"not started; {steps}"
        out.append(safe_line(f"{r['flag']}: {r['phase']} at {r['current_percentage']}% "
                            f"({where})", limit=1000))
        if r.get("baking") and r.get("bake_ends_at"):
            out.append(f"  baking at 100% until {safe_line(r['bake_ends_at'])} (gates still "
                       "evaluated; completed after it)")
        elif r["next_step_at"]:
            out.append(f"  next step at {safe_line(r['next_step_at'])}")
        if r.get("awaiting_approval") is not None:
            i = r["awaiting_approval"]
            out.append(safe_line(f"  step {i + 1} ({r['steps'][i]}%) needs approval: "
                                 f"`rollout approve {r['flag']}`", limit=1000))
        elif r.get("approved_step") is not None:
            out.append(safe_line(f"  step {r['approved_step'] + 1} approved by "
                                 f"{r['approved_by']}", limit=1000))
        for g in r["last_gates"]:
            value = _shown(g["value"])
            dry = ", dry run" if g.get("dry_run") else ""
            out.append("  " + safe_line(f"{g['name']} = {value} ({g['threshold']}{dry}): "
                                       f"{g['verdict']}", limit=1000))
            if g.get("cohorts"):  # a comparison gate: treatment against control
                out.append("    " + safe_line(_cohorts(g["cohorts"]), limit=1000))
        if r["reason"]:
            out.append(f"  {safe_line(r['reason'], limit=1000)}")
    return "\n".join(out) + ("\n" if out else "")


def _shown(value: object) -> str:
    """A gate's value as the commits write it: whole numbers whole, others to 6 digits
    (a comparison's difference is 5.03509, not 5.035087719298246)."""
    if value is None:
        return "none"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else f"{value:.6g}"
    return str(value)


def _cohorts(c: dict[str, Any]) -> str:
    from runner.model import CohortEvidence
    from runner.reconcile.message import cohort_text

    fields = ("treatment_rate", "control_rate", "treatment_requests", "control_requests",
              "low", "high", "margin", "confidence")
    return cohort_text(CohortEvidence(*(c.get(f) for f in fields)))  # type: ignore[arg-type]


def _markdown(rows: list[dict[str, Any]], timelines: dict[str, Any] | None = None) -> str:
    from runner.cli.common import safe_markdown
    from runner.review.status_markdown import status_markdown

    return safe_markdown(status_markdown(rows, timelines))


def _openmetrics(rows: list[dict[str, Any]], states: dict[str, Any] | None = None) -> str:
    from runner.review.status_metrics import status_openmetrics

    return status_openmetrics(rows, states or {})


#: --format name -> renderer of the status records.
RENDERERS: dict[str, Renderer] = {"text": _text, "markdown": _markdown,
                                  "openmetrics": _openmetrics}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show where each rollout is",
                       description="Each rollout's phase, percentage, step, next step time (or "
                       "the end of the bake at 100 %), the step awaiting approval, last "
                       "gate results and reason, from the committed state. Exit 0, 1 when FLAG "
                       "has no rollout or the repository is invalid, 2 usage.")
    p.add_argument("flag", nargs="?", metavar="FLAG")
    add_repo_argument(p)
    p.add_argument("--format", choices=(*RENDERERS, "json"), default="text",
                   help="json: a list, or one object when FLAG is given; markdown: the "
                   "dashboard, with a timeline of each active rollout's current run (from "
                   "git history); openmetrics: gauges for a node-exporter textfile or a "
                   "Pushgateway")
    p.add_argument("--output", type=Path, metavar="FILE",
                   help="write to FILE atomically (a temporary file renamed over it, as "
                   "node-exporter's textfile collector needs) instead of standard output")
    p.add_argument("--now", metavar="ISO8601", help="the time to judge pending plans by")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from runner.cli.runopts import parse_now
    from runner.load import check_repository
    from runner.reconcile.view import record

    root = gitops_root(args)
    now = parse_now(args.now)
    if args.output is not None:
        check_target("--output", args.output)
    checked = check_repository(root)
    if checked.repository is None:
        for p in checked.problems:
            print(safe_line(p, limit=2000), file=sys.stderr)
        return 1
    repo = checked.repository
    flags = sorted(set(repo.plans) | set(repo.states))
    if args.flag:
        flags = [f for f in flags if f == args.flag]
        if not flags:
            print(f"rollout status: no rollout for flag {safe_line(repr(args.flag), 200)}",
                  file=sys.stderr)
            return 1
    # one rollout whose committed state makes no sense (a hand edit the checks let through)
    # is reported on its own line; the others are still shown, and the exit code is 1
    rows, broken = [], 0
    for flag in flags:
        try:
            row = record(flag, repo.plans.get(flag), repo.states.get(flag), now)
            if args.format != "json":
                RENDERERS[args.format]([row])  # the renderer must manage it too
        except RolloutError as e:
            state = repo.states.get(flag)
            where = (f"{repo.config.rollouts_dir}/{state.plan}.state.json" if state is not None
                     else f"{repo.config.rollouts_dir}/")
            broken += cannot_show("status", f"{where} (rollout {flag!r}): cannot be shown", e)
            continue
        rows.append(row)
    if args.format == "json" and args.flag and not rows:
        return 1
    try:
        if args.format == "json":
            if args.output is None:
                print_json(rows[0] if args.flag else rows)
                return 1 if broken else 0
            import json

            text = json.dumps(rows[0] if args.flag else rows, indent=2, sort_keys=True,
                              ensure_ascii=False) + "\n"
        elif args.format == "markdown":
            from runner.review.status_markdown import timelines

            text = _markdown(rows, timelines(root, repo, rows, now))
        elif args.format == "openmetrics":
            text = _openmetrics(rows, dict(repo.states))
        else:
            text = RENDERERS[args.format](rows)
    except RolloutError as e:
        return cannot_show("status", "the rollouts cannot be shown", e)
    if args.output is None:
        sys.stdout.write(text)
        return 1 if broken else 0
    from runner.files import write_atomic

    try:
        write_atomic(args.output, text.encode("utf-8"))
    except OSError as e:
        print(f"rollout status: --output {safe_line(args.output)}: cannot write: "
              f"{safe_line(e.strerror or str(e))} (nothing written)", file=sys.stderr)
        return 1
    return 1 if broken else 0
