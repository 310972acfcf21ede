"""``rollout plan``: what a change between two revisions does to flags and rollouts.

Pure over two loaded snapshots: flags added, removed and changed field by field; rollouts
started, changed and stopped; the share of users served each flag's rollout variant before
and after; and the risks a reviewer should look at. The result is plain data (JSON-ready)
that the CLI prints as JSON or renders through ``runner/templates/plan.md.j2``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from runner.evaluate.artifact import rollout_percentage
from runner.gates.stats import rate_bound
from runner.load.durations import format_duration
from runner.model import Flag, Gate, Repository, Risk, RolloutPlan, RolloutState, Strategy
from runner.percent import percent
from runner.review.plan_evidence import evidence_risks, plan_evidence
from runner.review.plan_pipeline import pipeline, pipeline_risks
from runner.review.plan_traffic import Measured
from runner.review.schedule import timeline
from runner.review.snapshot import Snapshot
from runner.safetext import shown_url
from runner.timefmt import utc_iso

#: Fields that change only how a flag is described, not what it serves.
DESCRIPTIVE_FIELDS = ("description", "owner")


def _number(v: float | None) -> float | int | None:
    if v is None:
        return None
    return int(v) if float(v).is_integer() else round(v, 4)


# --- flattening: one dotted field -> one comparable JSON value -------------------------


def flag_fields(flag: Flag) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": flag.description,
        "owner": flag.owner,
        "risk": flag.risk.value,
        "enabled": flag.enabled,
        "default_variant": flag.default_variant,
        "rollout_variant": flag.rollout_variant,
        "requires": [r.flag if r.variant is None else f"{r.flag}={r.variant}" for r in flag.requires],
        "env_override": flag.env_var,
        "targeting.users": list(flag.targeting.users),
        "targeting.regions": list(flag.targeting.regions),
        "targeting.variant": flag.targeting.variant,
        "targeting.rules": [f"{r.attribute} {r.op} {list(r.values)} -> {r.variant}"
                            for r in flag.targeting.rules],
        "percentage": _number(flag.percentage),
        "bucket_by": flag.bucket_by,
    }
    for name, value in flag.variants.items():
        out[f"variants.{name}"] = _plain(value)
    for name, share in (flag.split or {}).items():
        out[f"percentage.{name}"] = _number(share)
    for env, o in flag.environments.items():  # only in repositories that declare some
        t = o.targeting
        overridden = {
            "enabled": o.enabled,
            "default_variant": o.default_variant,
            "percentage": _number(o.percentage),
            "targeting.users": None if t is None else list(t.users),
            "targeting.regions": None if t is None else list(t.regions),
            "targeting.variant": None if t is None else t.variant,
            "targeting.rules": None if t is None else [
                f"{r.attribute} {r.op} {list(r.values)} -> {r.variant}" for r in t.rules],
            **{f"percentage.{n}": _number(v) for n, v in (o.split or {}).items()},
        }
        out.update({f"environments.{env}.{k}": v for k, v in overridden.items() if v is not None})
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def plan_fields(plan: RolloutPlan) -> dict[str, Any]:
    out: dict[str, Any] = {
        "file": plan.name,
        "strategy": plan.strategy.value,
        "steps": [_number(p) for p in plan.percentages],
        "wait": format_duration(plan.wait),
        "on_failure": plan.on_failure.value,
        "failure_limit": plan.failure_limit,
        "error_limit": plan.error_limit,
        "progress_deadline": format_duration(plan.progress_deadline),
        "start_at": utc_iso(plan.start_at),
        "accept_risk": plan.accept_risk,
    }
    if plan.bake:
        out["bake"] = format_duration(plan.bake)
    if plan.approvers:
        out["approvers"] = ", ".join(plan.approvers)
    for g in plan.gates:
        out[f"gates.{g.name}"] = g.threshold + (" (dry run)" if g.dry_run else "")
    for i, s in enumerate(plan.steps):
        if s.wait is not None:
            out[f"steps[{i}].wait"] = format_duration(s.wait)
        if s.approval:
            out[f"steps[{i}].approval"] = True
        for g in s.gates or ():
            out[f"steps[{i}].gates.{g.name}"] = g.threshold + (" (dry run)" if g.dry_run else "")
    out.update(compare_fields(plan))
    if plan.traffic is not None:  # planning only, outside the digest: shown when edited
        if plan.traffic.requests_per_hour is not None:
            out["traffic"] = f"{_number(plan.traffic.requests_per_hour)}/h"
        if plan.traffic.query is not None:  # only when set: other plans' fields as they were
            out["traffic.query"] = plan.traffic.query
    m = plan.metrics
    if m is not None:
        out["metrics.type"] = m.type
        # a URL's userinfo and query values never reach the pull-request comment
        out["metrics.source"] = (m.path or (shown_url(m.url) if m.url else None)
                                 or (f"${m.url_env}" if m.url_env else None)
                                 or " ".join(m.command) or None)
    return out


def compare_fields(plan: RolloutPlan) -> dict[str, Any]:
    """The comparison gates as plan fields (``compare.error_rate.max_increase``...)."""
    c = plan.compare
    if c is None:
        return {}
    out: dict[str, Any] = {}
    for m in c.metrics:
        out[f"compare.{m.metric}.max_increase"] = _number(m.max_increase)
        if m.objective_ms is not None:
            out[f"compare.{m.metric}.objective_ms"] = _number(m.objective_ms)
    out.update({"compare.confidence": _number(c.confidence),
                "compare.min_requests": c.min_requests,
                "compare.srm_p_value": _number(c.srm_p_value), "compare.dry_run": c.dry_run})
    if c.unit != "requests":  # only when set: plans without it show as before
        out["compare.unit"] = c.unit
    return out


def compare_summary(plan: RolloutPlan) -> str | None:
    """The comparison gates in words, for the plan comment; None without them."""
    c = plan.compare
    if c is None:
        return None
    parts = [f"{m.metric}" + (f" (slower than {m.objective_ms:g} ms)" if m.objective_ms else "")
             + f" at most +{m.max_increase:g} pp" for m in c.metrics]
    return (f"treatment vs control: {', '.join(parts)}; confidence {c.confidence * 100:.4g} %, "
            f"at least {c.min_requests} {c.unit} a cohort, sample-ratio check at p < "
            f"{c.srm_p_value:g}" + ("; dry run (never blocks)" if c.dry_run else ""))


def compare_loosened(before: RolloutPlan, after: RolloutPlan) -> list[str]:
    """How ``after``'s comparison gates guard less than ``before``'s, in words."""
    b, a = before.compare, after.compare
    if b is None:
        return []
    if a is None:
        return ["the comparison gates are removed"]
    out = []
    if a.dry_run and not b.dry_run:
        out.append("the comparison gates become dry run (never block)")
    bm = {m.metric: m for m in b.metrics}
    am = {m.metric: m for m in a.metrics}
    for name, m in bm.items():
        if name not in am:
            out.append(f"compare.{name} is removed")
        elif am[name].max_increase > m.max_increase:
            out.append(f"compare.{name}.max_increase {m.max_increase:g} → {am[name].max_increase:g} pp")
        else:
            before_ms, after_ms = m.objective_ms, am[name].objective_ms
            if before_ms is not None and after_ms is not None and after_ms > before_ms:
                out.append(f"compare.{name}.objective_ms {before_ms:g} → {after_ms:g}")
    if a.confidence < b.confidence:
        out.append(f"compare.confidence {b.confidence:g} → {a.confidence:g}")
    if a.min_requests < b.min_requests:
        out.append(f"compare.min_requests {b.min_requests} → {a.min_requests}")
    if a.srm_p_value < b.srm_p_value:
        out.append(f"compare.srm_p_value {b.srm_p_value:g} → {a.srm_p_value:g}")
    return out


def _gate_loosened(name: str, b: Gate, a: Gate | None) -> list[str]:
    """How gate ``a`` guards less than ``b`` (the same gate, after and before), in words."""
    if b.dry_run:
        return []  # it never blocked
    if a is None:
        return [f"{name} ({b.threshold}) is removed"]
    if a.dry_run:
        return [f"{name} ({b.threshold}) becomes dry run (never blocks)"]
    out = []
    if b.max is not None and (a.max is None or a.max > b.max):
        out.append(f"{name} <= {b.max:g} → " + ("no maximum" if a.max is None else f"<= {a.max:g}"))
    if b.min is not None and (a.min is None or a.min < b.min):
        out.append(f"{name} >= {b.min:g} → " + ("no minimum" if a.min is None else f">= {a.min:g}"))
    if b.confidence is not None and a.confidence is None:
        out.append(f"{name} confidence {b.confidence:g} → none (each look's rate alone)")
    elif b.confidence is not None and a.confidence is not None and a.confidence < b.confidence:
        out.append(f"{name} confidence {b.confidence:g} → {a.confidence:g}")
    return out


def gates_loosened(before: RolloutPlan, after: RolloutPlan) -> list[str]:
    """How ``after``'s gates guard less than ``before``'s, each with its before → after: a
    ceiling raised (``<=`` gates), a floor lowered (``>=`` gates, ``request_count``), a gate
    removed or made dry run; the plan's gates, then each step whose own gates differ."""

    def by_name(gates: tuple[Gate, ...]) -> dict[str, Gate]:
        return {g.name: g for g in gates}

    out = []
    bg, ag = by_name(before.gates), by_name(after.gates)
    for name, g in bg.items():
        out.extend(_gate_loosened(f"gates.{name}", g, ag.get(name)))
    for i in range(min(len(before.steps), len(after.steps))):
        if before.steps[i].gates is None and after.steps[i].gates is None:
            continue  # the plan's gates, compared above
        bs, as_ = by_name(before.step_gates(i)), by_name(after.step_gates(i))
        for name, g in bs.items():
            if g == bg.get(name) and as_.get(name) == ag.get(name):
                continue  # inherited from the plan's gates before and after: said above
            out.extend(_gate_loosened(f"steps[{i}].gates.{name}", g, as_.get(name)))
    return out


#: A point-estimate gate is flagged when noise breaches it on more than this share of looks.
NOISY_LOOK = 0.01


def point_estimate_risks(plan: RolloutPlan) -> list[str]:
    """Each ``error_rate`` gate without a confidence that noise is likely to breach, in words:
    the chance on one look that a healthy rollout, whose true rate is half the threshold,
    shows a rate above it at the worst request count from the minimum up (the blocking
    ``request_count``'s minimum; 1 without one). docs/metrics.md, "Gates with a confidence"."""
    seen: set[tuple[str, float, int]] = set()
    out = []
    for i, step in enumerate(plan.steps):
        gates = {g.name: g for g in plan.step_gates(i)}
        rate, count = gates.get("error_rate"), gates.get("request_count")
        if rate is None or rate.confidence is not None or rate.dry_run or rate.max is None \
                or not 0 < rate.max < 100:
            continue
        minimum = max(int(count.min), 1) if count is not None and count.min is not None \
            and not count.dry_run and count.query is None else 1
        own = step.gates is not None and (rate, count) != (
            next((g for g in plan.gates if g.name == "error_rate"), None),
            next((g for g in plan.gates if g.name == "request_count"), None))
        where = f"steps[{i}].gates.error_rate" if own else "gates.error_rate"
        if (where, rate.max, minimum) in seen:
            continue
        seen.add((where, rate.max, minimum))
        chance, at = rate_bound.false_breach_chance(rate.max / 100.0, minimum, rate.max / 200.0)
        if chance <= NOISY_LOOK:
            continue
        least = (f"as few as {minimum} requests (request_count)" if minimum > 1
                 else "any number of requests (no blocking request_count minimum)")
        out.append(f"{where} <= {rate.max:g} is judged on each look's rate alone, from {least}: "
                   f"a healthy rollout at half the threshold ({rate.max / 2:g} %) breaches it "
                   f"by noise on {_chance(chance)} of looks (at {at:,} requests); give it a "
                   "confidence (docs/metrics.md, Gates with a confidence) or raise request_count")
    return out


def _chance(x: float) -> str:
    return f"{x * 100:.2g} %" if x < 0.1 else f"{x * 100:.0f} %"


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    keys = list(before) + [k for k in after if k not in before]
    return [{"field": k, "before": before.get(k), "after": after.get(k)}
            for k in keys if before.get(k) != after.get(k)]


# --- what a flag serves ----------------------------------------------------------------


def served_percentage(repo: Repository, key: str) -> float:
    """The share (0-100) of users served the flag's rollout variant, targeting aside.

    A split gives the rollout variant its share. Otherwise the artifact's rule
    (:func:`~runner.evaluate.artifact.rollout_percentage`: a rollout's state, then a static
    percentage) splits the rollout variant off the default, so a rollout variant that is the
    default is everyone's whatever the percentage; without a percentage everyone gets the
    default. A disabled flag, or a repository with its kill switch on, serves nobody.
    """
    flag = repo.flags[key]
    if not flag.enabled or repo.config.emergency_shutdown:
        return 0.0
    if flag.split is not None:
        return flag.split.get(flag.rollout_variant, 0.0)
    if flag.default_variant == flag.rollout_variant:
        return 100.0
    share = rollout_percentage(repo, key)
    return share if share is not None else 0.0


def _serves_off(repo: Repository, key: str, variant: str | None) -> bool:
    """True when nobody (targeting aside) gets ``variant`` of ``key`` (its rollout variant
    when None): a flag that requires it then serves its default to everyone."""
    flag = repo.flags[key]
    wanted = variant or flag.rollout_variant
    if not flag.enabled or repo.config.emergency_shutdown:
        return wanted != flag.default_variant
    served = served_percentage(repo, key)
    if wanted == flag.rollout_variant:
        return served <= 0 and flag.default_variant != wanted
    if flag.split is not None:
        return flag.split.get(wanted, 0.0) <= 0
    if wanted == flag.default_variant:
        return served >= 100
    return True  # a variant only targeting rules can serve


def _is_split(repo: Repository, key: str) -> bool:
    """Whether users of ``key`` are bucketed now: a share strictly between 0 and 100 %, or a
    split over several variants."""
    flag = repo.flags[key]
    if not flag.enabled or repo.config.emergency_shutdown:
        return False
    if flag.split is not None and key not in repo.plans:
        return sum(1 for share in flag.split.values() if share > 0) > 1
    return 0 < served_percentage(repo, key) < 100


def _versions(repo: Repository, key: str) -> dict[str, str]:
    """Each environment's plan version of ``key`` (the whole file, every environment's
    block included); empty without environments, where the digest says it all."""
    return {env: plans[key].version for env, plans in repo.environment_plans.items()
            if key in plans}


def _served_number(repo: Repository, key: str) -> float | int | None:
    return _number(served_percentage(repo, key))


def _served_per_environment(b: Repository, h: Repository, key: str) -> list[dict[str, Any]]:
    """What ``key`` serves in each of ``h``'s environments before and after (empty without
    environments): each snapshot's view of the environment, flags resolved there."""
    out = []
    for view in h.views():
        env = view.environment
        if env is None:
            continue
        try:
            bview = b.for_environment(env)
        except KeyError:  # the base did not declare it
            bview = None
        before = served_percentage(bview, key) if bview is not None and key in bview.flags else None
        out.append({"environment": env, "before": _number(before),
                    "after": _number(served_percentage(view, key))})
    return out


# --- rollouts --------------------------------------------------------------------------


def _state_summary(state: RolloutState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {"phase": state.phase.value, "step": state.step,
            "current_percentage": _number(state.current_percentage), "reason": state.reason}


# --- the comparison --------------------------------------------------------------------


def _risk(level: str, kind: str, flag: str, message: str) -> dict[str, str]:
    return {"level": level, "kind": kind, "flag": flag, "message": message}


def compare(base: Snapshot, head: Snapshot, now: datetime | None = None,
            traffic_reader: Callable[[RolloutPlan], Measured | None] | None = None
            ) -> dict[str, Any]:
    """The review of ``head`` against ``base`` (JSON-ready). ``traffic_reader``: reads a
    plan's measured traffic (``traffic.query``, :func:`runner.review.plan_traffic.measure`);
    without it only the declared traffic is used."""
    now = now or datetime.now(UTC)
    b, h = base.repository, head.repository
    added = sorted(set(h.flags) - set(b.flags))
    removed = sorted(set(b.flags) - set(h.flags))
    changed: list[dict[str, Any]] = []
    for key in sorted(set(b.flags) & set(h.flags)):
        changes = field_changes(flag_fields(b.flags[key]), flag_fields(h.flags[key]))
        before, after = served_percentage(b, key), served_percentage(h, key)
        per_env = _served_per_environment(b, h, key)
        moved = before != after or any(e["before"] != e["after"] for e in per_env)
        if changes or moved:
            changed.append({"key": key, "risk": h.flags[key].risk.value, "changes": changes,
                            "effective_before": _number(before), "effective_after": _number(after),
                            "serving_changed": any(c["field"] not in DESCRIPTIVE_FIELDS
                                                   for c in changes) or moved,
                            **({"environments": per_env} if per_env else {})})

    def flag_entry(repo: Repository, key: str) -> dict[str, Any]:
        f = repo.flags[key]
        per_env = [{"environment": v.environment, "effective": _number(served_percentage(v, key))}
                   for v in repo.views() if v.environment is not None]
        return {"key": key, "risk": f.risk.value, "owner": f.owner, "description": f.description,
                "effective": _number(served_percentage(repo, key)),
                "has_plan": key in repo.plans, **({"environments": per_env} if per_env else {})}

    rollouts: dict[str, list[dict[str, Any]]] = {"started": [], "changed": [], "stopped": []}
    for key in sorted(set(b.plans) | set(h.plans)):
        pb, ph = b.plans.get(key), h.plans.get(key)
        if ph is not None and (pb is None or pb.digest != ph.digest
                               or pb.traffic != ph.traffic
                               or _versions(b, key) != _versions(h, key)):
            entry = {"flag": key, "plan": ph.name, "strategy": ph.strategy.value,
                     "on_failure": ph.on_failure.value,
                     "state": _state_summary(h.states.get(key)),
                     "timeline": timeline(ph, h.states.get(key), now),
                     "compare": compare_summary(ph),
                     "changes": field_changes(plan_fields(pb), plan_fields(ph)) if pb else []}
            # the requests each step needs, and how long; a measured traffic read first
            measured = traffic_reader(ph) if traffic_reader is not None else None
            evidence = plan_evidence(ph, measured.requests_per_hour if measured else None)
            if measured is not None and measured.note is not None:  # not read: one line
                evidence = {**(evidence if evidence and "steps" in evidence else {}),
                            "traffic_note": measured.note}
            if evidence is not None:
                entry["evidence"] = evidence
            # with environments: each one's serving, overrides and schedule, soaks and freezes
            pipe = pipeline(key, b, h, now, measured.requests_per_hour if measured else None,
                            plan_fields, field_changes, _served_number)
            if pipe is not None:
                entry["environments"] = pipe.pop("environments")
                entry["pipeline"] = pipe
            rollouts["changed" if pb else "started"].append(entry)
        elif pb is not None and ph is None:
            state = b.states.get(key)
            rollouts["stopped"].append({
                "flag": key, "plan": pb.name, "strategy": pb.strategy.value,
                "state": _state_summary(state),
                "falls_back_to": _number(served_percentage(h, key)) if key in h.flags else None,
            })

    risks = _risks(b, h, added, removed, changed, rollouts)
    for r in rollouts["started"] + rollouts["changed"]:
        risks.extend(evidence_risks(r["flag"], h.plans[r["flag"]], r.get("evidence")))
        risks.extend(pipeline_risks(r["flag"], h, r.get("environments"), r.get("pipeline")))
    touched = set(added) | {c["key"] for c in changed} | {
        r["flag"] for group in rollouts.values() for r in group}
    return {
        "base": {"rev": base.label, "sha": base.sha},
        "head": {"rev": head.label, "sha": head.sha},
        "generated_at": utc_iso(now),
        "problems": {"base": [p.as_dict() for p in base.problems],
                     "head": [p.as_dict() for p in head.problems]},
        "flags": {"added": [flag_entry(h, k) for k in added],
                  "removed": [{**flag_entry(b, k),
                               "required_by": sorted(f.key for f in h.flags.values()
                                                     if any(r.flag == k for r in f.requires))}
                              for k in removed],
                  "changed": changed},
        "rollouts": rollouts,
        "risks": risks,
        "summary": {"flags_added": len(added), "flags_removed": len(removed),
                    "flags_changed": len(changed), "rollouts_started": len(rollouts["started"]),
                    "rollouts_changed": len(rollouts["changed"]),
                    "rollouts_stopped": len(rollouts["stopped"]), "risks": len(risks),
                    "flags_touched": len(touched | set(removed)),
                    "head_valid": not head.problems},
    }


def _risks(b: Repository, h: Repository, added: list[str], removed: list[str],
           changed: list[dict[str, Any]], rollouts: dict[str, list[dict[str, Any]]]
           ) -> list[dict[str, str]]:
    risks: list[dict[str, str]] = []
    serving = set(added) | {c["key"] for c in changed if c["serving_changed"]}
    plan_touched = {r["flag"] for r in rollouts["started"] + rollouts["changed"]}
    for key in sorted(serving):
        flag = h.flags[key]
        if flag.risk is Risk.HIGH and key not in h.plans:
            before = served_percentage(b, key) if key in b.flags else None
            after = served_percentage(h, key)
            moved = "" if before is None else f" ({percent(before)} → {percent(after)})"
            risks.append(_risk("high", "high_risk_without_plan", key,
                               f"high-risk flag {key} changes what it serves{moved} "
                               "without a rollout plan: no gates, no automatic rollback"))
    for key in sorted(plan_touched | {k for k in serving if k in h.plans}):
        plan, planned_flag = h.plans.get(key), h.flags.get(key)
        if plan and planned_flag and plan.strategy is Strategy.INSTANT and planned_flag.risk is Risk.HIGH:
            risks.append(_risk("high", "instant_on_high_risk", key,
                               f"strategy instant on high-risk flag {key}: 0 → 100% after "
                               f"{format_duration(plan.step_wait(0))}"
                               + (" (accept_risk: true)" if plan.accept_risk else "")))
    for key in sorted(plan_touched):
        pb, ph = b.plans.get(key), h.plans.get(key)
        high = any(key in r.flags and r.flags[key].risk is Risk.HIGH for r in (b, h))
        level = "high" if high else "warning"
        loosened = compare_loosened(pb, ph) if pb is not None and ph is not None else []
        if loosened:
            risks.append(_risk(level, "compare_loosened", key,
                               f"the comparison gates of {key} guard less: "
                               + "; ".join(loosened)))
        loosened = gates_loosened(pb, ph) if pb is not None and ph is not None and high else []
        if loosened:
            risks.append(_risk("high", "gates_loosened", key,
                               f"the gates of high-risk flag {key} guard less: "
                               + "; ".join(loosened)))
    for key in sorted(plan_touched):
        ph = h.plans.get(key)
        if ph is not None:
            risks.extend(_risk("warning", "point_estimate_gate", key, message)
                         for message in point_estimate_risks(ph))
    for key in removed:
        users = sorted(f.key for f in h.flags.values() if any(r.flag == key for r in f.requires))
        if users:
            risks.append(_risk("high", "removed_but_required", key,
                               f"flag {key} is removed but {', '.join(users)} "
                               f"require{'s' * (len(users) == 1)} it"))
    touched = serving | plan_touched | set(removed)
    for key in sorted(h.flags):
        for req in h.flags[key].requires:
            if req.flag not in h.flags or not (key in touched or req.flag in touched):
                continue
            if _serves_off(h, req.flag, req.variant):
                want = f" variant {req.variant}" if req.variant else ""
                risks.append(_risk("warning", "prerequisite_off", key,
                                   f"{key} requires {req.flag}{want}, which is off: {key} "
                                   "serves its default variant to everyone until it is on"))
    if b.config.emergency_shutdown != h.config.emergency_shutdown:
        risks.append(_risk("high", "kill_switch", "*",
                           "the repository kill switch (emergency_shutdown) is turned "
                           + ("on: every flag serves its default" if h.config.emergency_shutdown
                              else "off: flags serve their configuration again")))
    if b.config.bucketing != h.config.bucketing:
        split = [k for k in sorted(h.flags) if _is_split(h, k)]
        shown = ", ".join(split[:10]) + (f" and {len(split) - 10} more" if len(split) > 10 else "")
        risks.append(_risk("high", "bucketing_changed", "*",
                           f"bucketing changes from {b.config.bucketing} to {h.config.bucketing}: "
                           "it reshuffles every split, users get new buckets and a share of "
                           "them a different variant at the same percentage"
                           + (f" ({len(split)} flag{'s' * (len(split) != 1)} split now: {shown})"
                              if split else " (no flag is split now)")))
    for key in sorted(set(b.flags) & set(h.flags)):
        if b.flags[key].risk is not Risk.HIGH or h.flags[key].risk is Risk.HIGH:
            continue
        risks.append(_risk("warning", "risk_lowered", key,
                           f"{key} is no longer marked high-risk ({h.flags[key].risk.value})"))
    return risks
