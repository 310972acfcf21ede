"""``rollout simulate PLAN``: what the runner would have decided over recorded metrics.

Parses the arguments, loads the plan and its flag (``runner.load``), reads the timeline when
given (``runner.gates.sources.timeline``), replays (``runner.reconcile.simulate``, each look's
gates through ``runner.gates.assess`` at that moment) and prints
(``runner.review.simulate_text``). Writes nothing.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from runner.cli.commands import SUMMARIES
from runner.cli.common import UsageError, gitops_root, print_json
from runner.cli.runopts import parse_now
from runner.errors import ContentError
from runner.gates.assess import assess_rollout
from runner.gates.request import GateRequest
from runner.gates.sources.timeline import Timeline, parse_timeline
from runner.load import check_repository, load_config
from runner.load.durations import parse_duration
from runner.load.layout import YAML_SUFFIXES, plans_of, prefix, stem
from runner.model import GateResult, RolloutPlan
from runner.reconcile.simulate import TooManyLooks, look_times, replay
from runner.review.simulate_text import Setting, simulate_json, simulate_text
from runner.review.since import HELP as WHEN
from runner.review.since import parse_since
from runner.safetext import safe_line, shown_url

#: How far back a Prometheus replay starts without ``--since``.
DEFAULT_SINCE = "7d"
#: The interval between looks without ``--every``: the scaffolded workflow's schedule.
DEFAULT_EVERY = "5m"
#: The largest timeline read (a week of a line a minute is a few MiB).
MAX_TIMELINE = 256 * 1024 * 1024


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", help=SUMMARIES["simulate"],
        description="Replay a rollout plan over recorded metrics and print what `rollout "
        "advance` would have decided at each look (start, advance, hold, rollback, pause, "
        "complete) and when the rollout would have completed: from its start at --since, "
        "a look every --every until --until, each look's gates read at that past moment "
        "(Prometheus: the plan's own queries with time= the look; --timeline: the JSONL "
        "line recorded then), decided by the runner's own rules. Steps that need approval "
        "are simulated as approved as soon as they are due. Writes nothing (no state, no "
        "commit, no file). Exit 0 when the replay ran (whatever it found), 1 a file that "
        "cannot be used (the plan, its flag, the timeline), 2 usage.")
    p.add_argument("plan", metavar="PLAN",
                   help="the flag whose plan to replay, or the plan's file (rollouts/NAME.yaml)")
    p.add_argument("--repo", type=Path, default=Path("."), metavar="DIR",
                   help="the GitOps repository (default: the current folder)")
    p.add_argument("--timeline", metavar="FILE",
                   help="replay a JSONL timeline of metrics documents (one JSON object a line "
                   "with a timestamp, the fields the file and command sources read, and "
                   "cohorts as running totals: docs/runner.md) instead of querying the "
                   "plan's Prometheus; the way for the file and command sources")
    p.add_argument("--since", metavar="WHEN",
                   help=f"when the replayed rollout starts: {WHEN} (default: {DEFAULT_SINCE} "
                   "before --now; with --timeline its first line)")
    p.add_argument("--until", metavar="WHEN",
                   help="the last look, in the same grammar (default: --now; with --timeline "
                   "its last line)")
    p.add_argument("--every", metavar="DURATION", default=DEFAULT_EVERY,
                   help="the time between looks, as the workflow's schedule runs `rollout "
                   f"advance` (default: {DEFAULT_EVERY})")
    p.add_argument("--now", metavar="ISO8601",
                   help="the time --since and --until count back from (default: the clock)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


def _plan(root: Path, given: str) -> tuple[RolloutPlan, str, str, str]:
    """The plan named by ``given`` (a flag, or a plan file), its file, and its flag's
    treatment and control variants. UsageError when there is none; ContentError when its
    own files have problems (the first named, file:line:col)."""
    checked = check_repository(root)
    config = checked.salvaged.config
    folder = root / config.rollouts_dir
    flag = given
    if given.endswith((".yaml", ".yml")) or "/" in given:
        path = Path(given)
        full = (path if path.is_absolute() else Path.cwd() / path).resolve()
        if not full.is_file():
            raise UsageError(f"{safe_line(given)}: no such plan file")
        if full.parent != folder.resolve():
            raise UsageError(f"{safe_line(given)}: not a plan in {config.rollouts_dir}/ of "
                             f"{root}")
        names = [stem(full)]
        flag = next((f for f, p in checked.salvaged.plans.items() if p.name == names[0]),
                    names[0])
    else:
        names = [*plans_of(root, config.rollouts_dir, flag), flag]
    files = {f"{prefix(config.rollouts_dir)}{name}{suffix}" for name in names
             for suffix in YAML_SUFFIXES}
    own = set(checked.files_of.get(flag, ())) | files
    if not checked.sound(flag):
        problems = [p for p in checked.problems if p.path in own]
        if not problems or not any((root / f).is_file() for f in files):
            raise UsageError(f"no rollout plan for {safe_line(flag)!r} in {config.rollouts_dir}/"
                             + ("" if not problems else f" with a flag in {config.flags_dir}/"))
        more = f" (and {len(problems) - 1} more; see `rollout validate`)" if len(problems) > 1 else ""
        raise ContentError(f"{problems[0]}{more}")
    plan = checked.salvaged.plans[flag]
    f = checked.salvaged.flags[flag]
    shown = next((f"{prefix(config.rollouts_dir)}{plan.name}{suffix}" for suffix in YAML_SUFFIXES
                  if (folder / f"{plan.name}{suffix}").is_file()), plan.name)
    return plan, shown, f.rollout_variant, f.default_variant


def _when(option: str, value: str, now: datetime) -> datetime:
    try:
        return parse_since(value, now)
    except ValueError as e:
        raise UsageError(f"{option} {safe_line(repr(value), 200)}: {e}") from None


def _every(value: str) -> timedelta:
    try:
        seconds = parse_duration(value)
    except ValueError as e:
        raise UsageError(f"--every: {e}") from None
    if seconds < 1:
        raise UsageError(f"--every {safe_line(value)}: at least 1s between looks")
    return timedelta(seconds=seconds)


def _timeline(value: str) -> Timeline:
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"--timeline {safe_line(value)}: no such file")
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_TIMELINE + 1)
    except OSError as e:
        raise UsageError(f"--timeline {safe_line(value)}: cannot read: {e.strerror}") from None
    if len(raw) > MAX_TIMELINE:
        raise ContentError(f"{safe_line(value)}: larger than {MAX_TIMELINE} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ContentError(f"{safe_line(value)}: not UTF-8 text ({e.reason} at byte "
                           f"{e.start})") from None
    return parse_timeline(text, safe_line(value))


def _source_refusal(plan: RolloutPlan) -> str | None:
    """Why the plan's own source cannot be asked about the past (None: it can)."""
    m = plan.metrics
    if m is None:
        return ("the plan has no metric source (metrics: or [tool.rollout.metrics]); give "
                "--timeline FILE")
    if m.type == "prometheus":
        return None
    if m.type in ("command", "file"):
        what = "a command answers" if m.type == "command" else "a metrics file holds"
        return (f"the plan reads a {m.type} source, and {what} only the present: record its "
                "documents in a JSONL timeline and give --timeline FILE")
    return f"the plan's metrics type {m.type!r} cannot be replayed; give --timeline FILE"


def run(args: argparse.Namespace) -> int:
    root = gitops_root(args)
    now = parse_now(args.now)
    every = _every(args.every)
    plan, plan_file, treatment, control = _plan(root, args.plan)
    timeline = _timeline(args.timeline) if args.timeline is not None else None
    if timeline is None and (refusal := _source_refusal(plan)) is not None:
        raise UsageError(refusal)
    if timeline is not None and plan.metrics is None:
        raise ContentError("the plan has no metrics (metrics: or [tool.rollout.metrics]): its "
                           "window says how old a timeline line may be")
    since = (_when("--since", args.since, now) if args.since is not None
             else timeline.start if timeline is not None else _when("--since", DEFAULT_SINCE, now))
    until = (_when("--until", args.until, now) if args.until is not None
             else timeline.end if timeline is not None else now)
    if until < since:
        raise UsageError(f"--until {until.isoformat()} is before --since {since.isoformat()}")
    try:
        looks = look_times(since, until, every)
    except TooManyLooks as e:
        raise UsageError(f"{e} from --since to --until every {args.every}: narrow the range or "
                         "look less often") from None
    # the environment as the runner's sources get it, without the publication signing key
    env = {k: v for k, v in os.environ.items() if k != plan_signing_key(root)}
    reader = timeline.read if timeline is not None else None

    def evaluate(request: GateRequest, at: datetime) -> Sequence[GateResult]:
        return assess_rollout(request, root=root, now=at, env=env, source=reader)

    result = replay(plan, looks, evaluate, treatment_variant=treatment, control_variant=control)
    assert plan.metrics is not None
    source = (f"timeline {timeline.name}" if timeline is not None
              else f"prometheus {shown_url(plan.metrics.url or '$' + (plan.metrics.url_env or ''))}")
    setting = Setting(source, since, until, every.total_seconds(), plan_file)
    if args.format == "json":
        print_json(simulate_json(result, setting, len(looks)))
    else:
        for line in simulate_text(result, setting, len(looks)):
            print(safe_line(line, 2000))
    return 0


def plan_signing_key(root: Path) -> str | None:
    """The variable holding the publication signing key, which no metric source gets."""
    return load_config(root)[0].signing_key_env
