"""The resolved artifact: one JSON document applications load, rendered from a repository.

It holds every flag with its *effective* settings: the rollout plan's current percentage
is already applied as a split in 10,000ths, prerequisite variants are resolved, defaults
are spelled out. Evaluation needs nothing else. The same repository (and source commit)
always gives the same bytes (:func:`runner.evaluate.render.render_artifact` turns the
document into them), so publishing is idempotent: ``runner.reconcile.publish`` writes only
when what applications see changed, by temporary file and rename, so a reader never sees
half a file.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from runner.evaluate.bucket import TOTAL_WEIGHT, weight
from runner.model import Flag, Phase, Repository

#: Bumped when the document changes incompatibly; readers refuse other versions.
ARTIFACT_VERSION = 1
ARTIFACT_KIND = "rollout-runner/resolved-flags"
#: The largest artifact file read (64 MiB, about 100,000 flags): a bigger file is refused,
#: so that a wrong path (``/dev/zero``, a log) never fills a process's memory.
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024


def rollout_percentage(repo: Repository, key: str) -> float | None:
    """The percentage the artifact splits off to a flag's rollout variant: the plan's state,
    or its static percentage; None when it has neither (a split over variants, or none).

    A flag driven by a rollout plan has no static percentage; before its first step (no
    state yet) and after a rollback it is at 0. Whether the flag is enabled, the kill switch,
    and a rollout variant that is also the default are applied at evaluation, not here (the
    share users are served, all of that applied, is ``runner.review.plan.served_percentage``).
    """
    flag = repo.flags[key]
    if key in repo.plans:
        state = repo.states.get(key)
        if state is None or state.phase is Phase.ROLLED_BACK:
            return 0.0
        return min(max(state.current_percentage, 0.0), 100.0)
    return flag.percentage


def _split(repo: Repository, flag: Flag) -> list[dict[str, Any]]:
    """The split as variant weights out of TOTAL_WEIGHT, zero weights left out."""
    if flag.split is not None:
        weights = [(v, weight(share)) for v, share in flag.split.items()]
        # shares are validated to 0.01 and to a sum of 100; absorb float noise in the last
        drift = TOTAL_WEIGHT - sum(w for _, w in weights)
        if weights and drift:
            last_variant, last_weight = weights[-1]
            weights[-1] = (last_variant, last_weight + drift)
    else:
        pct = rollout_percentage(repo, flag.key)
        if pct is None:
            return []
        w = weight(pct)
        weights = [(flag.rollout_variant, w), (flag.default_variant, TOTAL_WEIGHT - w)]
        if flag.rollout_variant == flag.default_variant:
            weights = [(flag.default_variant, TOTAL_WEIGHT)]
    kept = [{"variant": v, "weight": w} for v, w in weights if w > 0]
    if len(kept) == 1 and kept[0]["variant"] == flag.default_variant:
        return []  # 0 %: nobody is split off the default (reason DEFAULT, not SPLIT)
    return kept


def _rollout(repo: Repository, key: str) -> dict[str, Any] | None:
    plan = repo.plans.get(key)
    if plan is None:
        return None
    state = repo.states.get(key)
    pct = rollout_percentage(repo, key)
    return {
        "plan": plan.name,
        "phase": state.phase.value if state else Phase.PENDING.value,
        "step": state.step if state else 0,
        "percentage": _number(pct if pct is not None else 0.0),
    }


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def flag_entry(repo: Repository, flag: Flag) -> dict[str, Any]:
    """One flag's effective settings, as the native artifact stores them."""
    t = flag.targeting
    return {
        "type": flag.type,
        "enabled": flag.enabled,
        "variants": {k: _plain(v) for k, v in flag.variants.items()},
        "default_variant": flag.default_variant,
        "rollout_variant": flag.rollout_variant,
        "env_var": flag.env_var,
        "requires": [
            {"flag": r.flag, "variant": r.variant or repo.flags[r.flag].rollout_variant}
            for r in flag.requires
        ],
        "targeting": {
            "users": list(t.users),
            "regions": list(t.regions),
            "variant": t.variant or flag.rollout_variant,
            "rules": [
                {"attribute": r.attribute, "op": r.op, "values": list(r.values), "variant": r.variant}
                for r in t.rules
            ],
        },
        "split": _split(repo, flag),
        "bucket_by": flag.bucket_by,
        "rollout": _rollout(repo, flag.key),
    }


def _plain(value: Any) -> Any:
    """Frozen model values (MappingProxyType, tuples) as JSON-ready dicts and lists."""
    if isinstance(value, str | bool | int | float) or value is None:
        return value
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    return [_plain(v) for v in value]


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def content_digest(content: dict[str, Any]) -> str:
    """Digest of what evaluation depends on (not of the commit it came from)."""
    return "sha256:" + hashlib.sha256(canonical_json(content)).hexdigest()


def artifact_content(repo: Repository) -> dict[str, Any]:
    return {
        "emergency_shutdown": repo.config.emergency_shutdown,
        "total_weight": TOTAL_WEIGHT,
        # the flagd fractional scheme every split is bucketed with (runner.evaluate.bucket)
        "bucketing": repo.config.bucketing,
        "flags": {key: flag_entry(repo, repo.flags[key]) for key in sorted(repo.flags)},
    }


def document_content(doc: dict[str, Any]) -> dict[str, Any]:
    """The part of an artifact document its ``digest`` covers.

    ``bucketing`` only when present: an artifact of 0.1 has none (it bucketed with
    ``flagd-v3``), and its digest was taken without it.
    """
    content = {k: doc.get(k) for k in ("emergency_shutdown", "total_weight", "flags")}
    if "bucketing" in doc:
        content["bucketing"] = doc["bucketing"]
    return content


def artifact_document(repo: Repository, *, source_commit: str | None,
                      generation: int | None = None,
                      environment: str | None = None) -> dict[str, Any]:
    """The native artifact. ``generation`` (a publication's order along the published
    branch: the first-parent commit count of its source commit) only when given, beside
    ``source_commit``; like the source commit it is not part of ``digest``. ``environment``
    (a repository that declares environments: the one whose view ``repo`` is) only when
    given, outside ``digest`` too: a client told its environment refuses another's."""
    content = artifact_content(repo)
    stamp: dict[str, Any] = {"source_commit": source_commit}
    if generation is not None:
        stamp["generation"] = generation
    if environment is not None:
        stamp["environment"] = environment
    return {
        "kind": ARTIFACT_KIND,
        "version": ARTIFACT_VERSION,
        **stamp,
        "digest": content_digest(content),
        **content,
    }
