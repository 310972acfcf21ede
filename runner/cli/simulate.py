"""``rollout simulate PLAN``: what the runner would have decided over recorded metrics.

Parses the arguments, loads the plan and its flag (``runner.load``), reads the timeline when
given (``runner.gates.sources.timeline``), replays (``runner.reconcile.simulate``, each look's
gates through ``runner.gates.assess`` at that moment) and prints
(``runner.review.simulate_text``). Writes nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from runner.cli.commands import SUMMARIES
from runner.cli.common import UsageError, gitops_root, print_json
from runner.cli.environment_option import chosen_environment
from runner.cli.runopts import parse_now
from runner.errors import ContentError
from runner.gates.assess import assess_rollout
from runner.gates.request import GateRequest
from runner.gates.sources.timeline import Timeline, parse_timeline
from runner.load import check_repository, load_config
from runner.load.durations import format_duration, parse_duration
from runner.load.layout import YAML_SUFFIXES, plans_of, prefix, stem
from runner.load.problems import did_you_mean
from runner.model import GateResult, RepoConfig, Repository, RolloutPlan
from runner.model.environments import ENVIRONMENT_NAME
from runner.reconcile.freeze import line_stop, windows_of
from runner.reconcile.simulate import Replay, TooManyLooks, look_times, promotion_look, replay
from runner.review.simulate_text import (
    Setting,
    Stage,
    pipeline_json,
    pipeline_text,
    simulate_json,
    simulate_text,
)
from runner.review.since import HELP as WHEN
from runner.review.since import parse_since
from runner.safetext import safe_line, shown_url
from runner.timefmt import utc_iso

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
    p.add_argument("--timeline", metavar="FILE", action="append",
                   help="replay a JSONL timeline of metrics documents (one JSON object a line "
                   "with a timestamp, the fields the file and command sources read, and "
                   "cohorts as running totals: docs/runner.md) instead of querying the "
                   "plan's Prometheus; the way for the file and command sources. With "
                   "environments: NAME=FILE for one environment (repeatable), FILE for "
                   "every environment not named")
    p.add_argument("--env", metavar="NAME",
                   help="with environments: replay this environment alone, from --since "
                   "(default: the whole pipeline in promotion order, each environment "
                   "starting after the previous one completed and its promote_after)")
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


def _plan(root: Path, given: str) -> tuple[RolloutPlan, str, str, str, Repository]:
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
    return plan, shown, f.rollout_variant, f.default_variant, checked.salvaged


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


def _range(args: argparse.Namespace, timeline: Timeline | None, now: datetime,
           every: timedelta) -> tuple[datetime, datetime, list[datetime]]:
    """The replay's first and last look, and every look between (the options, else the
    timeline's first and last lines, else the defaults)."""
    since = (_when("--since", args.since, now) if args.since is not None
             else timeline.start if timeline is not None else _when("--since", DEFAULT_SINCE, now))
    until = (_when("--until", args.until, now) if args.until is not None
             else timeline.end if timeline is not None else now)
    if until < since:
        raise UsageError(f"--until {until.isoformat()} is before --since {since.isoformat()}")
    try:
        return since, until, look_times(since, until, every)
    except TooManyLooks as e:
        raise UsageError(f"{e} from --since to --until every {args.every}: narrow the range or "
                         "look less often") from None


def _checked_source(plan: RolloutPlan, timeline: Timeline | None) -> None:
    if timeline is None and (refusal := _source_refusal(plan)) is not None:
        raise UsageError(refusal)
    if timeline is not None and plan.metrics is None:
        raise ContentError("the plan has no metrics (metrics: or [tool.rollout.metrics]): its "
                           "window says how old a timeline line may be")


def _source(plan: RolloutPlan, timeline: Timeline | None) -> str:
    assert plan.metrics is not None
    return (f"timeline {timeline.name}" if timeline is not None
            else f"prometheus {shown_url(plan.metrics.url or '$' + (plan.metrics.url_env or ''))}")


def _freezes(config: RepoConfig, environment: str | None
             ) -> Callable[[datetime], str | None] | None:
    """Why nothing moves forward at a moment, under the freeze windows of ``environment``
    (the replay holds as the runner does; nobody halts); None without windows."""
    if not windows_of(config, environment):
        return None
    return lambda at: line_stop(config, None, environment, at)


def run(args: argparse.Namespace) -> int:
    root = gitops_root(args)
    now = parse_now(args.now)
    every = _every(args.every)
    plan, plan_file, treatment, control, repo = _plan(root, args.plan)
    # the environment as the runner's sources get it, without the publication signing key
    env = {k: v for k, v in os.environ.items() if k != plan_signing_key(root)}

    def replayed(plan: RolloutPlan, timeline: Timeline | None, looks: Sequence[datetime]
                 ) -> Replay:
        reader = timeline.read if timeline is not None else None

        def evaluate(request: GateRequest, at: datetime) -> Sequence[GateResult]:
            return assess_rollout(request, root=root, now=at, env=env, source=reader)

        return replay(plan, looks, evaluate, treatment_variant=treatment,
                      control_variant=control,
                      line_stop=_freezes(repo.config, plan.environment))

    if repo.environments:
        stages = _pipeline(args, repo, plan.flag, now, every, replayed)
        if args.env is not None:  # one environment: printed as a replay without them
            one = stages[0]
            assert one.replay is not None and one.setting is not None
            setting = dataclasses.replace(one.setting, plan_file=plan_file)
            if args.format == "json":
                print_json(simulate_json(one.replay, setting, one.total))
            else:
                for line in simulate_text(one.replay, setting, one.total):
                    print(safe_line(line, 2000))
        elif args.format == "json":
            print_json(pipeline_json(stages, plan.flag, plan_file))
        else:
            for line in pipeline_text(stages, plan.flag, plan_file):
                print(safe_line(line, 2000))
        return 0
    chosen_environment(repo.config, args.env)  # --env without environments: a usage error
    if args.timeline is not None and len(args.timeline) > 1:
        raise UsageError("--timeline: one file in a repository without environments")
    timeline = _timeline(args.timeline[0]) if args.timeline else None
    _checked_source(plan, timeline)
    since, until, looks = _range(args, timeline, now, every)
    result = replayed(plan, timeline, looks)
    setting = Setting(_source(plan, timeline), since, until, every.total_seconds(), plan_file)
    if args.format == "json":
        print_json(simulate_json(result, setting, len(looks)))
    else:
        for line in simulate_text(result, setting, len(looks)):
            print(safe_line(line, 2000))
    return 0


def _timelines(config: RepoConfig, given: list[str] | None) -> dict[str | None, Timeline]:
    """``--timeline`` values by environment (None: every environment not named): ``NAME=FILE``
    names a declared environment, anything else is a file."""
    declared = [e.name for e in config.environments]
    named: dict[str | None, str] = {}
    for value in given or ():
        name, sep, file = value.partition("=")
        key: str | None = None
        if sep and ENVIRONMENT_NAME.fullmatch(name) and not Path(value).is_file():
            if name not in declared:
                raise UsageError(safe_line(f"--timeline {value}: {name!r} is not a declared "
                                           f"environment (declared: {', '.join(declared)})"
                                           + did_you_mean(name, declared)))
            key, value = name, file
        if key in named:
            raise UsageError(f"--timeline: two files for {key or 'every environment'}")
        named[key] = value
    return {k: _timeline(v) for k, v in named.items()}


def _pipeline(args: argparse.Namespace, repo: Repository, flag: str, now: datetime,
              every: timedelta, replayed: Callable[[RolloutPlan, Timeline | None,
                                                    Sequence[datetime]], Replay]
              ) -> list[Stage]:
    """Each environment's replay in promotion order (``--env``: that one alone, from
    --since): a later one's looks start once the previous one completed and its soak is
    over; a rollback, pause or an unfinished replay upstream stops the pipeline there."""
    only = chosen_environment(repo.config, args.env)
    timelines = _timelines(repo.config, args.timeline)
    views = [v for v in repo.views() if flag in v.plans]
    if only is not None:
        views = [v for v in views if v.environment == only]
        if not views:
            runs = ", ".join(v.environment or "" for v in repo.views() if flag in v.plans)
            raise UsageError(f"--env {only}: the plan of {safe_line(flag)} does not run there "
                             f"(it runs in {runs or 'no environment'})")
    plans = [(v.environment or "", v.plans[flag]) for v in views]
    for name, plan in plans:  # every refusal before anything runs
        _checked_source(plan, timelines.get(name, timelines.get(None)))
    stages: list[Stage] = []
    grid: list[datetime] = []
    for name, plan in plans:
        timeline = timelines.get(name, timelines.get(None))
        since, until, looks = _range(args, timeline, now, every)
        note = None
        previous = stages[-1] if stages else None
        if previous is not None:
            if previous.replay is None:
                stages.append(Stage(name, None, None, 0, f"{previous.environment} never "
                                    "completed the plan"))
                continue
            # the looks continue the first environment's schedule, up to this one's end
            grid = look_times(grid[0], max(until, grid[0]), every)
            first = promotion_look(previous.replay, plan, grid)
            if first is None:
                stages.append(Stage(name, None, None, 0, _not_promoted(previous, plan)))
                continue
            looks = grid[first:]
            since = looks[0]
            note = (f"starts after {previous.environment} completed at "
                    f"{utc_iso(previous.replay.ended_at)}"
                    + (f" and promote_after {format_duration(plan.promote_after)}"
                       if plan.promote_after else "") + f": first look at {utc_iso(since)}")
        else:
            grid = looks
        result = replayed(plan, timeline, looks)
        setting = Setting(_source(plan, timeline), since, until, every.total_seconds(),
                          "")
        stages.append(Stage(name, result, setting, len(looks), note))
    return stages


def _not_promoted(previous: Stage, plan: RolloutPlan) -> str:
    """Why the next environment never starts after ``previous``'s replay."""
    r = previous.replay
    assert r is not None
    if r.outcome == "rolled_back":
        return f"rejected: rolled back in {previous.environment} at {utc_iso(r.ended_at)}"
    if r.outcome == "completed":
        due = r.ended_at + timedelta(seconds=plan.promote_after) if r.ended_at else None
        return (f"{previous.environment} completed at {utc_iso(r.ended_at)}; the soak ends at "
                f"{utc_iso(due)}, after the last look")
    return f"waiting for {previous.environment}: {r.outcome.replace('_', ' ')}"


def plan_signing_key(root: Path) -> str | None:
    """The variable holding the publication signing key, which no metric source gets."""
    return load_config(root)[0].signing_key_env
