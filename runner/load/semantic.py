"""Checks the JSON Schema cannot express: references between files, cycles, step order, types.

Pure: takes model objects (and the raw documents, for positions), returns findings. Each
finding names the file it belongs to and the field path inside it; ``repo`` turns that into
line and column only when there is something to report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from runner.load.durations import MAX_DURATION, format_duration, parse_duration
from runner.load.problems import did_you_mean, shown
from runner.model import STRATEGIES, Flag, Risk, RolloutPlan, Strategy, value_type
from runner.model.plan import BUILTIN_GATES, Gate

#: Percentages are bucketed in 10,000ths (see runner.evaluate.bucket): 0.01 % resolution.
RESOLUTION = 100


NO_METRICS = ("no metric source: give one here or in [tool.rollout.metrics] "
              "(without metrics a rollout can never advance)")


@dataclass(frozen=True, slots=True)
class Finding:
    path: str  # the file
    field: tuple[Any, ...]
    message: str
    #: Involves another file: reported even when only some files were asked about.
    cross: bool = False


def _fine(p: float) -> bool:
    return abs(p * RESOLUTION - round(p * RESOLUTION)) < 1e-6


def check_key(key: str, stem: str, path: str) -> list[Finding]:
    """The file name is the key: ``flags/<key>.yaml``."""
    if key == stem:
        return []
    return [Finding(path, ("key",), f"{key!r} differs from the file name {stem!r} "
                    f"(rename the file to {key}.yaml or change the key)")]


def check_steps(pcts: list[float] | tuple[float, ...], path: str) -> list[Finding]:
    """Steps strictly increasing and ending at 100 (the schema bounds each within 0-100)."""
    out: list[Finding] = []
    for i in range(1, len(pcts)):
        if pcts[i] <= pcts[i - 1]:
            out.append(Finding(path, ("steps", i), f"{pcts[i]:g} does not come after "
                               f"{pcts[i - 1]:g} (steps must be strictly increasing)"))
            break
    if pcts and pcts[-1] != 100:
        out.append(Finding(path, ("steps", len(pcts) - 1),
                           f"the last step is {pcts[-1]:g}, it must be 100"))
    return out


class _Sorted:
    """Names as a message lists them (sorted, capped), built only when a message does."""

    __slots__ = ("names",)

    def __init__(self, names: Mapping[str, Any]) -> None:
        self.names = names

    def __format__(self, spec: str) -> str:
        return shown(sorted(self.names))


def check_flag(flag: Flag, raw: Mapping[str, Any], path: str, stem: str) -> list[Finding]:
    out: list[Finding] = []

    def bad(field: tuple[Any, ...], msg: str) -> None:
        out.append(Finding(path, field, msg))

    out.extend(check_key(flag.key, stem, path))
    variants = flag.variants
    names = _Sorted(variants)
    for which, name in (("default_variant", flag.default_variant),
                        ("rollout_variant", flag.rollout_variant)):
        if name not in variants and which in raw:
            bad((which,), f"variant {shown(name)} is not one of the flag's variants {names}"
                + did_you_mean(name, variants))
        elif name not in variants:  # the implicit default does not fit these variants
            bad(("variants",), f"{which} is not given and its default {shown(name)} is not one of "
                f"the variants {names}: set {which}")
    types = {n: value_type(v) for n, v in variants.items()}
    first = types.get(flag.default_variant) or next(iter(types.values()))
    for n, t in types.items():
        if t != first:
            article = "an" if t[:1] in "aeiou" else "a"
            bad(("variants", n), f"is {article} {t} but the flag's variants are {first}s "
                "(one type per flag)")
            break
    targeting = flag.targeting
    if targeting.variant is not None and targeting.variant not in variants:
        bad(("targeting", "variant"), f"variant {shown(targeting.variant)} is not one of {names}"
            + did_you_mean(targeting.variant, variants))
    for i, r in enumerate(targeting.rules):
        if r.variant not in variants:
            bad(("targeting", "rules", i, "variant"), f"variant {shown(r.variant)} is not one of "
                f"{names}" + did_you_mean(r.variant, variants))
    if flag.percentage is not None and not _fine(flag.percentage):
        bad(("percentage",), f"{flag.percentage:g} has finer resolution than 0.01")
    if flag.split is not None:
        for n, share in flag.split.items():
            if n not in variants:
                bad(("percentage", n), f"variant {shown(n)} is not one of {names}"
                    + did_you_mean(n, variants))
            elif not _fine(share):
                bad(("percentage", n), f"{share:g} has finer resolution than 0.01")
        total = sum(flag.split.values())
        if abs(total - 100) > 1e-6:
            bad(("percentage",), f"shares add up to {total:g}, not 100")
    required: dict[str, int] = {}
    for i, req in enumerate(flag.requires):
        if req.flag == flag.key:
            bad(("requires", i), "a flag cannot require itself")
        elif req.flag in required:
            bad(("requires", i), f"{req.flag!r} is already required (requires[{required[req.flag]}])")
        required.setdefault(req.flag, i)
    return out


def check_plan(plan: RolloutPlan, raw: Mapping[str, Any], path: str) -> list[Finding]:
    out: list[Finding] = []

    def bad(field: tuple[Any, ...], msg: str) -> None:
        out.append(Finding(path, field, msg))

    pcts = plan.percentages
    if plan.strategy is Strategy.CUSTOM and "steps" not in raw:
        bad(("strategy",), "custom needs its own steps (add a steps list, or use safe, fast or "
            "instant)")
    elif plan.strategy is not Strategy.CUSTOM and "steps" in raw:
        expected = STRATEGIES[plan.strategy][0]
        if tuple(pcts) != tuple(float(p) for p in expected):
            bad(("steps",), f"the {plan.strategy} strategy's steps are "
                f"{', '.join(f'{p:g}' for p in expected)}; use strategy: custom for others")
    out.extend(check_steps(pcts, path))
    out.extend(check_durations(raw, path))
    out.extend(_check_traffic(plan, path))
    for i, p in enumerate(pcts):
        if not _fine(p):
            bad(("steps", i), f"{p:g} has finer resolution than 0.01")
    out.extend(_check_approvals(plan, raw, path))
    out.extend(_check_confidence(plan, path))
    if raw.get("allow_no_gates") is not True:
        unguarded = _unguarded(plan)
        if unguarded is not None:
            where = ("gates",) if "gates" in raw or unguarded == "" else ("steps", int(unguarded))
            what = ("a single step goes to 100% at once, without a gate" if unguarded == "" else
                    f"step {int(unguarded) + 1} ({plan.steps[int(unguarded)].percentage:g}%) has no "
                    "blocking gate, so the rollout would move past it unchecked")
            bad(where, f"{what}; add gates, or set allow_no_gates: true to accept a rollout "
                "that no metric guards")
    if plan.metrics is None:
        if any(plan.step_gates(i) for i in range(len(plan.steps))):  # gates need a source
            bad(("metrics",), NO_METRICS)
        elif plan.compare is not None:  # and so do comparisons
            bad(("compare",), NO_METRICS)
    else:
        out.extend(_check_metrics(plan, raw, path))
    return out


#: The queries a gate with a confidence reads from Prometheus (runner/gates/readings.py).
STEP_QUERIES = ("step_requests", "step_errors")


def _check_confidence(plan: RolloutPlan, path: str) -> list[Finding]:
    """A gate with a confidence judges a rate strictly between 0 and 100 %: at 0 any error
    would be a breach, and no rate is above 100."""
    out = []
    placed: list[tuple[tuple[Any, ...], Gate]] = [(("gates", g.name, "max"), g) for g in plan.gates]
    for i, s in enumerate(plan.steps):
        placed += [(("steps", i, "gates", g.name, "max"), g) for g in s.gates or ()
                   if g not in plan.gates]
    for field, g in placed:
        if g.confidence is not None and g.max is not None and not 0 < g.max < 100:
            out.append(Finding(path, field, f"{g.max:g} with a confidence: the threshold must "
                               "lie strictly between 0 and 100 (percent)"))
    return out


def _check_approvals(plan: RolloutPlan, raw: Mapping[str, Any], path: str) -> list[Finding]:
    """An approval holds the rollout before its step, at the previous one: the first step
    has none (the rollout starts there; ``start_at`` or a first step at 0 % hold a start).
    ``approvers`` without a step to approve is a mistake; a bake needs a gate to watch."""
    out: list[Finding] = []
    if plan.steps and plan.steps[0].approval:
        out.append(Finding(path, ("steps", 0, "approval"), "the first step is where the rollout "
                           "starts, there is no step before it to wait at: begin the plan at 0 "
                           "and put approval: true on the first step that exposes users"))
    if plan.approvers and not any(s.approval for s in plan.steps):
        out.append(Finding(path, ("approvers",), "no step has approval: true, so nobody is ever "
                           "asked to approve; add approval: true to a step or remove approvers"))
    if plan.bake and raw.get("allow_no_gates") is not True and not any(
            not g.dry_run for g in plan.step_gates(len(plan.steps) - 1)):
        out.append(Finding(path, ("bake",), "the last step has no blocking gate, so the bake "
                           "would watch nothing; add gates, or set allow_no_gates: true"))
    return out


def check_durations(raw: Mapping[str, Any], path: str) -> list[Finding]:
    """Every duration of a schema-valid plan (or of ``[tool.rollout]``) within
    :data:`MAX_DURATION`: a wait of ``1e308`` seconds or ``99999999999999999d`` is a typo that
    no clock can add to a date."""
    fields: list[tuple[tuple[Any, ...], Any]] = [
        ((k,), raw[k]) for k in ("wait", "progress_deadline", "bake", "promote_after")
        if k in raw]
    for i, s in enumerate(raw.get("steps") or ()):
        if isinstance(s, dict) and "wait" in s:
            fields.append((("steps", i, "wait"), s["wait"]))
    metrics = raw.get("metrics")
    if isinstance(metrics, dict) and "timeout" in metrics:
        fields.append((("metrics", "timeout"), metrics["timeout"]))
    out = []
    for field, value in fields:
        try:
            seconds = parse_duration(value)
        except ValueError:
            continue  # the schema said so
        if seconds > MAX_DURATION:
            out.append(Finding(path, field, f"{shown(value, 24)} is longer than the limit of "
                               f"{format_duration(MAX_DURATION)}"))
    return out


#: The most requests an hour a plan's ``traffic`` may give: beyond it a number is a typo.
MAX_TRAFFIC = 1e12


def _check_traffic(plan: RolloutPlan, path: str) -> list[Finding]:
    """The short form of ``traffic`` (``6000/h``) within 0 < requests an hour <= MAX_TRAFFIC
    (the object form's bounds are the schema's)."""
    rate = plan.traffic.requests_per_hour if plan.traffic is not None else None
    if rate is None or 0 < rate <= MAX_TRAFFIC:
        return []
    what = "no traffic at all" if rate <= 0 else f"more than {MAX_TRAFFIC:.0e} requests an hour"
    return [Finding(path, ("traffic",), f"{what}; give the flag's expected requests, such as "
                    "6000/h")]


def _unguarded(plan: RolloutPlan) -> str | None:
    """The index (as text) of the first step the rollout moves past without a blocking gate,
    ``""`` for a single-step plan, None when every step is guarded."""
    if len(plan.steps) == 1:
        return ""
    compares = plan.compare is not None and not plan.compare.dry_run
    for i in range(len(plan.steps) - 1):
        if compares and 0 < plan.steps[i].percentage < 100:
            continue  # a blocking comparison guards every step that splits the traffic
        if not any(not g.dry_run for g in plan.step_gates(i)):
            return str(i)
    return None


_jinja = SandboxedEnvironment()


def template_error(text: str) -> str | None:
    """A Jinja2 syntax error in a query or path template, in words; None when it parses."""
    try:
        _jinja.parse(text)
    except TemplateSyntaxError as e:
        return f"template error: {e.message}"
    return None


def _check_metrics(plan: RolloutPlan, raw: Mapping[str, Any], path: str) -> list[Finding]:
    out: list[Finding] = []
    m = plan.metrics
    assert m is not None
    own = "metrics" in raw  # templates of the repository default are checked with the config
    templates: list[tuple[tuple[Any, ...], str]] = []
    if own and m.type == "file" and m.path:
        templates.append((("metrics", "path"), m.path))
    if m.type == "prometheus":
        if own:
            templates.extend((("metrics", "queries", k), q) for k, q in m.queries.items())
        gates = {g.name: g for g in plan.gates}
        for s in plan.steps:
            gates.update({g.name: g for g in s.gates or ()})
        for name, g in gates.items():
            if g.confidence is not None:  # reads the step counts, not a rate query
                missing = [q for q in STEP_QUERIES if q not in m.queries]
                if missing:
                    out.append(Finding(path, ("gates", name, "confidence"),
                                       f"the prometheus source has no query for "
                                       f"{' and '.join(missing)}: a gate with a confidence reads "
                                       "the requests and errors since the step started (add "
                                       "step_requests and step_errors under metrics.queries; "
                                       "docs/metrics.md)"))
            elif g.query is None and name in BUILTIN_GATES and name not in m.queries:
                out.append(Finding(path, ("gates", name),
                                   f"the prometheus source has no query for {name} "
                                   "(add it under metrics.queries)"))
            elif g.query is not None:
                templates.append((("gates", "custom", name, "query"), g.query))
    for field, text in templates:
        error = template_error(text)
        if error:
            out.append(Finding(path, field, error))
    return out


def check_cross(
    flags: Mapping[str, Flag],
    flag_paths: Mapping[str, str],
    plans: Mapping[str, list[tuple[RolloutPlan, str]]],
    broken: Mapping[str, str] | None = None,
) -> list[Finding]:
    """References between files: prerequisites, cycles, plans and the flags they drive.

    ``broken``: flags whose files exist but have problems of their own (key -> file);
    references to them are not reported again as dangling.
    """
    out: list[Finding] = []
    broken = broken or {}
    for key, flag in flags.items():
        for i, req in enumerate(flag.requires):
            target = flags.get(req.flag)
            if target is None and req.flag in broken:
                continue
            if target is None:
                out.append(Finding(flag_paths[key], ("requires", i),
                                   f"requires unknown flag {req.flag!r}"
                                   + did_you_mean(req.flag, [*flags, *broken]), True))
            elif req.variant is not None and req.variant not in target.variants:
                out.append(Finding(flag_paths[key], ("requires", i, "variant"),
                                   f"{req.flag!r} has no variant {shown(req.variant)}"
                                   + did_you_mean(req.variant, target.variants), True))
    env_vars: dict[str, str] = {}
    # flags on their default variable first: the explicit env_override is the one to change
    for key, flag in sorted(flags.items(), key=lambda kv: bool(kv[1].env_override)):
        other = env_vars.setdefault(flag.env_var, key)
        if other != key:
            out.append(Finding(flag_paths[key], ("env_override",) if flag.env_override else ("key",),
                               f"the environment variable {flag.env_var} also overrides the flag "
                               f"{other!r} ({flag_paths[other]})", True))
    # self-references are reported by check_flag
    for cycle in find_cycles({k: [r.flag for r in f.requires if r.flag in flags and r.flag != k]
                              for k, f in flags.items()}):
        first = cycle[0]
        idx = next(i for i, r in enumerate(flags[first].requires) if r.flag == cycle[1])
        out.append(Finding(flag_paths[first], ("requires", idx),
                           "dependency cycle: " + " -> ".join(cycle), True))
    for flag_key, entries in plans.items():
        for plan, path in entries:
            planned = flags.get(flag_key)
            if planned is None and flag_key in broken:
                break
            if planned is None:
                out.append(Finding(path, ("flag",), f"no flag {flag_key!r} in the flags folder"
                                   + did_you_mean(flag_key, [*flags, *broken]), True))
                continue
            if len(entries) > 1:  # reported in each, whichever one the author touched
                others = ", ".join(p for _, p in entries if p != path)
                out.append(Finding(path, ("flag",), f"{flag_key!r} also has the rollout plan "
                                   f"{others}; one plan per flag", True))
            if planned.percentage is not None or planned.split is not None:
                out.append(Finding(flag_paths[flag_key], ("percentage",),
                                   f"the flag is driven by the rollout plan {path}; "
                                   "remove its static percentage", True))
            if planned.rollout_variant == planned.default_variant:
                out.append(Finding(path, ("flag",), f"{flag_key!r} has the same rollout_variant and "
                                   f"default_variant ({planned.default_variant!r}): the rollout would "
                                   "change nothing", True))
            if (plan.strategy is Strategy.INSTANT and planned.risk is Risk.HIGH
                    and not plan.accept_risk):
                out.append(Finding(path, ("strategy",), f"instant on the high-risk flag "
                                   f"{flag_key!r} is refused; set accept_risk: true to accept "
                                   "the risk", True))
    return out


def find_cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Each elementary cycle found by depth-first search, once, as [a, b, ..., a]."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for start in sorted(graph):
        if colour[start] != white:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        trail: list[str] = [start]
        colour[start] = grey
        while stack:
            node, i = stack[-1]
            nexts = graph.get(node, [])
            if i < len(nexts):
                stack[-1] = (node, i + 1)
                nxt = nexts[i]
                if colour.get(nxt) == grey:
                    cyc = [*trail[trail.index(nxt):], nxt]
                    k = frozenset(cyc)
                    if k not in seen:
                        seen.add(k)
                        cycles.append(cyc)
                elif colour.get(nxt) == white:
                    colour[nxt] = grey
                    stack.append((nxt, 0))
                    trail.append(nxt)
            else:
                colour[node] = black
                stack.pop()
                trail.pop()
    return cycles


#: A rate threshold below this many percent looks like a fraction written where percent is
#: meant (0.01 for 1 %): one request in a thousand is a strict gate, not a typical one.
FRACTION_LIKE = 0.1


def _rate(value: float) -> str:
    return f"{value:g}"


def fraction_warnings(plan: RolloutPlan, path: str) -> list[Finding]:
    """Rates that look like fractions where percent is meant: ``error_rate: 0.01`` (which is
    0.01 %, one request in 10,000) written for 1 %. Warnings, never problems: a strict gate
    is allowed."""
    out: list[Finding] = []
    gates: list[tuple[tuple[Any, ...], float]] = [
        (("gates", g.name), g.max) for g in plan.gates
        if g.name == "error_rate" and g.max is not None]
    for i, s in enumerate(plan.steps):
        gates.extend((("steps", i, "gates", g.name), g.max) for g in s.gates or ()
                     if g.name == "error_rate" and g.max is not None)
    for field, value in gates:
        if 0 < value < FRACTION_LIKE:
            out.append(Finding(path, field, f"{_rate(value)} means {_rate(value)} % (gates are in "
                               f"percent: 1 means 1 %); if you meant {_rate(value * 100)} %, "
                               f"write {_rate(value * 100)}"))
    if plan.compare is not None:
        for m in plan.compare.metrics:
            if 0 < m.max_increase < FRACTION_LIKE:
                out.append(Finding(path, ("compare", m.metric, "max_increase"),
                                   f"{_rate(m.max_increase)} means {_rate(m.max_increase)} "
                                   "percentage points; if you meant "
                                   f"{_rate(m.max_increase * 100)} points, write "
                                   f"{_rate(m.max_increase * 100)}"))
    return out
