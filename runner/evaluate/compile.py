"""Compiling an artifact into a :class:`FlagSet`: what a client evaluates against.

The artifact (a JSON document, see :mod:`runner.evaluate.artifact`) is checked and compiled
once: each flag gets precomputed sets, cumulative weights, its fixed outcome when it needs
no context, and its resolver (:mod:`runner.evaluate.resolver`), compiled in dependency
order so that a flag's prerequisites are ready before it. A bad artifact is refused here
(:class:`ArtifactError`), so a client keeps its last good one.

The three ways in: :meth:`FlagSet.from_bytes` (a file's content, digest checked),
:meth:`FlagSet.from_document` (parsed JSON) and :meth:`FlagSet.from_repository` (a loaded
repository, resolved as ``rollout build`` would).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from runner.errors import ContentError
from runner.evaluate.artifact import (
    ARTIFACT_KIND,
    ARTIFACT_VERSION,
    artifact_document,
    content_digest,
    document_content,
)
from runner.evaluate.bucket import (
    LEGACY_BUCKETING,
    TOTAL_WEIGHT,
    bucket_function,
    text_function,
)
from runner.evaluate.resolution import DEFAULT, DISABLED, SPLIT, Resolution
from runner.evaluate.resolver import Resolver, attribute_path, lookup, make_resolver
from runner.model import Repository
from runner.model.config import BUCKETING_SCHEMES
from runner.model.environments import ENVIRONMENT_NAME
from runner.model.flag import value_type
from runner.model.state import Phase

#: The rollout phase in which a flag serves its default variant to everyone, canaries included.
ROLLED_BACK_PHASE = Phase.ROLLED_BACK.value
RULE_OPS = ("in", "not_in", "equals", "starts_with", "ends_with")


class ArtifactError(ContentError, ValueError):
    """The artifact cannot be used: not JSON, wrong version, inconsistent content."""


class CompiledRule:
    __slots__ = ("attribute", "op", "path", "values", "variant")

    def __init__(self, attribute: str, op: str, values: tuple[Any, ...], variant: str):
        self.attribute = attribute
        self.path = attribute_path(attribute)
        self.op = op
        self.values = values
        self.variant = variant

    def matches(self, ctx: Mapping[str, Any], targeting_key: Any) -> bool:
        v = lookup(ctx, self.attribute, self.path, targeting_key)
        op = self.op
        if op == "in" or op == "equals":
            return v is not None and v in self.values
        if op == "not_in":
            return v is not None and v not in self.values
        if not isinstance(v, str):
            return False
        if op == "starts_with":
            return v.startswith(self.values[0])
        return v.endswith(self.values[0])


class CompiledFlag:
    """One flag, ready to evaluate."""

    __slots__ = (
        "bucket_attribute", "bucket_path", "default_variant", "enabled", "env_var", "fixed", "key",
        "regions", "requires", "resolve", "rolled_back", "rollout_variant", "rules", "split",
        "split_all", "targeting_variant", "type", "users", "variants",
    )

    key: str
    type: str
    variants: dict[str, Any]
    default_variant: str
    rollout_variant: str
    enabled: bool
    #: The plan name when the flag's rollout was rolled back (served like ``enabled: false``)
    rolled_back: str | None
    env_var: str
    requires: tuple[tuple[str, str], ...]
    users: frozenset[str]
    regions: frozenset[str]
    targeting_variant: str
    rules: tuple[CompiledRule, ...]
    split: tuple[tuple[int, str], ...]  # (cumulative end, variant)
    split_all: str | None  # the whole split goes to one variant: no bucket needed
    #: The outcome when it depends on no context (disabled, or nothing dynamic): a shortcut.
    fixed: Resolution | None
    #: (context, targeting key, environment outcomes) -> Resolution
    resolve: Resolver
    bucket_attribute: str | None
    bucket_path: tuple[str, ...] | None

    def outcome(self, variant: str, reason: str, details: str) -> Resolution:
        """A Resolution made once, when the flag is compiled, and returned as is."""
        return Resolution(self.variants[variant], variant, reason, None, details)


def _require(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise ArtifactError(f"{where}: {message}")


def _compile_flag(key: str, d: Any) -> CompiledFlag:
    """One flag of the artifact, checked and compiled. The checks run in one fixed order
    (variants, switches, prerequisites, targeting, split, bucketing), so the problem an
    artifact is refused for is always the same one."""
    where = f"flags.{key}"
    _require(isinstance(d, Mapping), where, "must be an object")
    f = CompiledFlag()
    f.key = key
    _compile_variants(f, where, d)
    _compile_switches(f, where, d)
    f.requires = _compile_requires(where, d.get("requires"))
    _compile_targeting(f, where, d.get("targeting") or {})
    f.split = _compile_split(where, d.get("split"), f.variants)
    f.split_all = f.split[0][1] if len(f.split) == 1 else None
    f.fixed = _fixed_outcome(f)
    bucket_by = d.get("bucket_by")
    _require(bucket_by is None or isinstance(bucket_by, str), f"{where}.bucket_by",
             "must be a string")
    f.bucket_attribute = bucket_by
    f.bucket_path = None if bucket_by is None else attribute_path(bucket_by)
    return f


def _compile_variants(f: CompiledFlag, where: str, d: Mapping[str, Any]) -> None:
    """The variants, the default and rollout ones, and the type the default's value has."""
    variants: Any = d.get("variants")
    _require(isinstance(variants, Mapping) and len(variants) > 0, f"{where}.variants",
             "must be a non-empty object")
    f.variants = dict(variants)
    default: Any = d.get("default_variant")
    _require(default in f.variants, f"{where}.default_variant", f"{default!r} is not a variant")
    f.default_variant = default
    f.rollout_variant = d.get("rollout_variant", f.default_variant)
    _require(f.rollout_variant in f.variants, f"{where}.rollout_variant",
             f"{f.rollout_variant!r} is not a variant")
    f.type = value_type(f.variants[f.default_variant])
    _require(d.get("type", f.type) == f.type, f"{where}.type",
             f"{d.get('type')!r} does not match the default variant's {f.type}")


def _compile_switches(f: CompiledFlag, where: str, d: Mapping[str, Any]) -> None:
    """What turns the flag to its default for everyone (``enabled``, a rolled back rollout)
    and the environment variable that overrides it."""
    f.enabled = d.get("enabled", True)
    _require(isinstance(f.enabled, bool), f"{where}.enabled", "must be true or false")
    rollout = d.get("rollout")
    _require(rollout is None or isinstance(rollout, Mapping), f"{where}.rollout",
             "must be an object or null")
    f.rolled_back = None
    if rollout is not None and rollout.get("phase") == ROLLED_BACK_PHASE:
        f.rolled_back = str(rollout.get("plan") or f.key)
    f.env_var = d.get("env_var") or f.key.upper()
    _require(isinstance(f.env_var, str), f"{where}.env_var", "must be a string")


def _compile_requires(where: str, raw: Any) -> tuple[tuple[str, str], ...]:
    """The prerequisites: (flag, the variant it must serve)."""
    reqs = []
    for i, r in enumerate(raw or ()):
        _require(isinstance(r, Mapping) and isinstance(r.get("flag"), str)
                 and isinstance(r.get("variant"), str), f"{where}.requires[{i}]",
                 "must be {flag, variant}")
        reqs.append((r["flag"], r["variant"]))
    return tuple(reqs)


def _compile_targeting(f: CompiledFlag, where: str, t: Any) -> None:
    """Canary users and regions, the variant they get, and the attribute rules."""
    _require(isinstance(t, Mapping), f"{where}.targeting", "must be an object")
    f.users = frozenset(t.get("users") or ())
    f.regions = frozenset(t.get("regions") or ())
    f.targeting_variant = t.get("variant") or f.rollout_variant
    _require(f.targeting_variant in f.variants, f"{where}.targeting.variant",
             f"{f.targeting_variant!r} is not a variant")
    f.rules = tuple(_compile_rule(f"{where}.targeting.rules[{i}]", r, f.variants)
                    for i, r in enumerate(t.get("rules") or ()))


def _compile_rule(where: str, r: Any, variants: Mapping[str, Any]) -> CompiledRule:
    _require(isinstance(r, Mapping) and r.get("op") in RULE_OPS
             and isinstance(r.get("attribute"), str), where, "needs attribute and a known op")
    values = tuple(r.get("values") or ())
    _require(len(values) > 0, where, "needs values")
    if r["op"] in ("starts_with", "ends_with"):
        _require(isinstance(values[0], str), where, "starts_with/ends_with take a string")
    _require(r.get("variant") in variants, where, f"{r.get('variant')!r} is not a variant")
    return CompiledRule(r["attribute"], r["op"], values, r["variant"])


def _compile_split(where: str, raw: Any,
                   variants: Mapping[str, Any]) -> tuple[tuple[int, str], ...]:
    """The percentage split as (cumulative end, variant), weights of 0 left out; the weights
    add up to nothing or to :data:`TOTAL_WEIGHT`."""
    split = []
    end = 0
    for i, s in enumerate(raw or ()):
        sw = f"{where}.split[{i}]"
        _require(isinstance(s, Mapping) and s.get("variant") in variants, sw,
                 "names no variant of the flag")
        w = s.get("weight")
        _require(isinstance(w, int) and not isinstance(w, bool) and w >= 0, sw,
                 "weight must be a non-negative integer")
        if w:
            end += w
            split.append((end, s["variant"]))
    _require(end in (0, TOTAL_WEIGHT), f"{where}.split",
             f"weights add up to {end}, not {TOTAL_WEIGHT}")
    return tuple(split)


def _fixed_outcome(f: CompiledFlag) -> Resolution | None:
    """The outcome when it depends on no context: disabled, rolled back, or nothing dynamic
    (no prerequisite, no targeting, a split to one variant or none)."""
    if not f.enabled:
        return f.outcome(f.default_variant, DISABLED, "flag disabled")
    if f.rolled_back is not None:
        return f.outcome(f.default_variant, DISABLED,
                         f"rolled back in rollout plan {f.rolled_back!r}")
    if not (f.requires or f.users or f.regions or f.rules or f.split):
        return f.outcome(f.default_variant, DEFAULT, "")
    if not (f.requires or f.users or f.regions or f.rules) and f.split_all is not None:
        return f.outcome(f.split_all, SPLIT, "")
    return None


def _check_graph(flags: Mapping[str, CompiledFlag]) -> list[str]:
    """Prerequisites must exist and form no cycle (evaluation recurses through them).

    Returns the keys in dependency order: every flag after its prerequisites.
    """
    order: list[str] = []
    for f in flags.values():
        for req, variant in f.requires:
            _require(req in flags, f"flags.{f.key}.requires", f"unknown flag {req!r}")
            _require(variant in flags[req].variants, f"flags.{f.key}.requires",
                     f"{req!r} has no variant {variant!r}")
    done: set[str] = set()
    for start in flags:
        if start in done:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        on_path = {start}
        while stack:
            node, i = stack[-1]
            reqs = flags[node].requires
            if i < len(reqs):
                stack[-1] = (node, i + 1)
                nxt = reqs[i][0]
                _require(nxt not in on_path, f"flags.{node}.requires",
                         f"dependency cycle through {nxt!r}")
                if nxt not in done:
                    stack.append((nxt, 0))
                    on_path.add(nxt)
            else:
                stack.pop()
                on_path.discard(node)
                done.add(node)
                order.append(node)
    return order


class FlagSet:
    """A compiled artifact: what a client evaluates against. Immutable once built."""

    __slots__ = ("_env_index", "bucketing", "digest", "emergency_shutdown", "environment",
                 "flags", "generation", "source_commit")

    def __init__(self, flags: dict[str, CompiledFlag], *, emergency_shutdown: bool,
                 digest: str | None, source_commit: str | None,
                 bucketing: str = LEGACY_BUCKETING, generation: int | None = None,
                 environment: str | None = None):
        self.flags = flags
        #: The declared environment the artifact was published for (``[tool.rollout.
        #: environments]``); None: a repository without environments.
        self.environment = environment
        self.emergency_shutdown = emergency_shutdown
        self.digest = digest
        self.source_commit = source_commit
        #: The publication's generation (the first-parent commit count of its source
        #: commit; only grows along the published branch); None for an artifact that was
        #: not published (``rollout build``, a checkout, 0.2).
        self.generation = generation
        #: The flagd fractional scheme the splits are bucketed with (``flagd-v2``/``-v3``).
        self.bucketing = bucketing
        self._env_index: dict[str, list[str]] | None = None

    def env_index(self) -> dict[str, list[str]]:
        """Override variable -> the flags it overrides (usually one)."""
        index = self._env_index
        if index is None:
            index = {}
            for key, f in self.flags.items():
                index.setdefault(f.env_var, []).append(key)
            self._env_index = index
        return index

    @classmethod
    def from_document(cls, doc: Any) -> FlagSet:
        """Compile an artifact document (parsed JSON); :class:`ArtifactError` when unusable."""
        _require(isinstance(doc, Mapping), "artifact", "must be a JSON object")
        _require(doc.get("kind") == ARTIFACT_KIND, "kind",
                 f"expected {ARTIFACT_KIND!r}, found {doc.get('kind')!r} (not a rollout artifact)")
        _require(doc.get("version") == ARTIFACT_VERSION, "version",
                 f"version {doc.get('version')!r} is not supported (this SDK reads "
                 f"{ARTIFACT_VERSION})")
        _require(doc.get("total_weight") == TOTAL_WEIGHT, "total_weight",
                 f"must be {TOTAL_WEIGHT}")
        raw_flags = doc.get("flags")
        _require(isinstance(raw_flags, Mapping), "flags", "must be an object")
        kill = doc.get("emergency_shutdown", False)
        _require(isinstance(kill, bool), "emergency_shutdown", "must be true or false")
        # no field: an artifact of 0.1, which bucketed with flagd-v3
        scheme = doc.get("bucketing", LEGACY_BUCKETING)
        _require(isinstance(scheme, str) and scheme in BUCKETING_SCHEMES, "bucketing",
                 f"{scheme!r} is not a bucketing scheme this SDK knows "
                 f"({', '.join(BUCKETING_SCHEMES)})")
        generation = doc.get("generation")
        _require(generation is None or (isinstance(generation, int)
                                        and not isinstance(generation, bool) and generation >= 0),
                 "generation", f"{generation!r:.40} is not a generation (a whole number, 0 or more)")
        environment = doc.get("environment")
        _require(environment is None or (isinstance(environment, str)
                                         and ENVIRONMENT_NAME.fullmatch(environment) is not None),
                 "environment", f"{environment!r:.40} is not an environment's name")
        # chosen once here: the evaluation path calls them without looking at the scheme
        bucket, text = bucket_function(scheme), text_function(scheme)
        flags = {}
        for k, v in raw_flags.items():
            try:
                flags[k] = _compile_flag(k, v)
            except (TypeError, AttributeError) as e:  # a shape the checks did not foresee
                raise ArtifactError(f"flags.{k}: malformed ({e})") from e
        for k in _check_graph(flags):
            flags[k].resolve = make_resolver(flags[k], flags, bucket=bucket, text=text)
        return cls(flags, emergency_shutdown=kill, digest=doc.get("digest"),
                   source_commit=doc.get("source_commit"), bucketing=scheme,
                   generation=generation, environment=environment)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "artifact") -> FlagSet:
        """Compile an artifact file's content; ``name`` (its path) starts every message.

        Unlike :meth:`from_document`, the ``digest`` must match the content: bytes come from
        a file, which can be damaged or edited by hand.
        """
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ArtifactError(f"{name}: not valid JSON ({e}); truncated or corrupt?") from e
        except RecursionError as e:  # [[[[... nested deeper than any artifact
            raise ArtifactError(f"{name}: JSON nested too deeply; not a rollout artifact") from e
        except ValueError as e:  # a number longer than Python converts (4,300 digits)
            raise ArtifactError(f"{name}: a number too long to read; not a rollout "
                                "artifact") from e
        try:
            flags = cls.from_document(doc)
            digest = content_digest(document_content(doc))
        except ArtifactError as e:
            raise ArtifactError(f"{name}: {e}") from e
        except (TypeError, KeyError, AttributeError, ValueError, RecursionError) as e:
            # a shape from_document's checks did not foresee: still unusable, not a crash
            raise ArtifactError(f"{name}: not a usable artifact ({type(e).__name__})") from e
        if doc.get("digest") != digest:
            raise ArtifactError(f"{name}: content does not match its digest (damaged or edited "
                                "by hand; rebuild it with `rollout build`)")
        return flags

    @classmethod
    def from_repository(cls, repo: Repository) -> FlagSet:
        """The flags a repository serves now, as ``rollout build`` would resolve them."""
        return cls.from_document(artifact_document(repo, source_commit=None))

    def __len__(self) -> int:
        return len(self.flags)
