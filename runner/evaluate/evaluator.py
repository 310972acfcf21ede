"""Pure evaluation: (flags, key, context, environment) -> value, variant, reason.

The artifact (a JSON document, see :mod:`runner.evaluate.artifact`) is compiled once into
:class:`FlagSet`, whose flags hold precomputed sets, cumulative weights and hash prefixes,
so that one evaluation is a few dictionary lookups and at most one hash. The environment
(kill switch, per-flag overrides) is parsed once into :class:`EnvState` rather than on
every call.

Order of evaluation, with OpenFeature's reason names:

1. kill switch (``EMERGENCY_SHUTDOWN`` in the environment, or ``emergency_shutdown`` in the
   repository): the default variant, ``DISABLED``;
2. the flag's environment override: that variant, ``STATIC``;
3. ``enabled: false``, or a rollout in phase ``rolled_back`` (the reference document's
   automated rollback sets the flag to false): the default variant, ``DISABLED``, canary
   users and regions included;
4. a prerequisite not serving the required variant: the default variant,
   ``PREREQUISITE_FAILED`` (OpenFeature has no name for it), details naming it;
5. canary users, canary regions, then attribute rules (first match): ``TARGETING_MATCH``;
6. the percentage split: ``SPLIT``;
7. otherwise the default variant, ``DEFAULT``.

Nothing here raises on bad *input to an evaluation*: unknown flags and wrong types give
the caller's default with reason ``ERROR`` and an error code. A bad *artifact* is refused
when it is compiled (:class:`ArtifactError`), so a client keeps its last good one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import mmh3

from runner.evaluate.bucket import TOTAL_WEIGHT, cbor_text, json_logic_text
from runner.model.flag import value_type
from runner.model.state import Phase

log = logging.getLogger("runner.evaluate")

# OpenFeature reason names, plus one of ours where none fits.
STATIC = "STATIC"
DEFAULT = "DEFAULT"
TARGETING_MATCH = "TARGETING_MATCH"
SPLIT = "SPLIT"
DISABLED = "DISABLED"
ERROR = "ERROR"
PREREQUISITE_FAILED = "PREREQUISITE_FAILED"

# OpenFeature error codes.
FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
TYPE_MISMATCH = "TYPE_MISMATCH"
PROVIDER_NOT_READY = "PROVIDER_NOT_READY"
GENERAL = "GENERAL"

KILL_SWITCH_VAR = "EMERGENCY_SHUTDOWN"
TRUE_WORDS = frozenset({"true", "1", "on", "yes"})
FALSE_WORDS = frozenset({"false", "0", "off", "no"})
#: The rollout phase in which a flag serves its default variant to everyone, canaries included.
ROLLED_BACK_PHASE = Phase.ROLLED_BACK.value
RULE_OPS = ("in", "not_in", "equals", "starts_with", "ends_with")

_EMPTY: Mapping[str, Any] = {}


class ArtifactError(ValueError):
    """The artifact cannot be used: not JSON, wrong version, inconsistent content."""


class Resolution(NamedTuple):
    """The outcome of one evaluation (a named tuple: cheap to make, immutable, comparable)."""

    value: Any
    variant: str | None
    reason: str
    error_code: str | None = None
    details: str = ""


# --- warnings said once ----------------------------------------------------------------

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_once(key: tuple[str, str], message: str) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(message)


# --- the compiled artifact ------------------------------------------------------------


def _attribute_getter(attribute: str) -> tuple[str, tuple[str, ...] | None]:
    """JSON Logic's ``var`` reads ``a.b`` as a path into nested objects: so do we."""
    if "." in attribute:
        return attribute, tuple(attribute.split("."))
    return attribute, None


def _lookup(ctx: Mapping[str, Any], attribute: str, path: tuple[str, ...] | None,
            targeting_key: Any) -> Any:
    if path is None:
        if attribute == "targetingKey":
            return targeting_key
        return ctx.get(attribute)
    data: Any = ctx
    for part in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


class CompiledRule:
    __slots__ = ("attribute", "op", "path", "values", "variant")

    def __init__(self, attribute: str, op: str, values: tuple[Any, ...], variant: str):
        self.attribute, self.path = _attribute_getter(attribute)
        self.op = op
        self.values = values
        self.variant = variant

    def matches(self, ctx: Mapping[str, Any], targeting_key: Any) -> bool:
        v = _lookup(ctx, self.attribute, self.path, targeting_key)
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
        "key_bytes", "regions", "requires", "resolve", "rolled_back", "rollout_variant", "rules",
        "split",
        "split_all",
        "targeting_variant", "type", "users", "variants",
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
    #: (context, targeting key, environment outcomes) -> (variant, reason, details)
    resolve: Resolver
    key_bytes: bytes
    bucket_attribute: str | None
    bucket_path: tuple[str, ...] | None

    def outcome(self, variant: str, reason: str, details: str) -> Resolution:
        """A Resolution made once, when the flag is compiled, and returned as is."""
        return Resolution(self.variants[variant], variant, reason, None, details)

    def bucket_of(self, ctx: Mapping[str, Any], targeting_key: Any) -> int | None:
        """This context's bucket in [0, TOTAL_WEIGHT), or None without a bucketing value."""
        if self.bucket_attribute is None:
            raw = targeting_key
        else:
            raw = _lookup(ctx, self.bucket_attribute, self.bucket_path, targeting_key)
        if raw is None:
            return None
        return bucket_of_text(self.key + (raw if raw.__class__ is str else json_logic_text(raw)))


#: CBOR text-string headers as characters, for ASCII strings shorter than 128 characters:
#: one byte (0x60 + n) below 24, then 0x78 and the length. All are ASCII themselves, so the
#: hashed string can be built and hashed as ``str`` without a bytes round trip.
_HEADERS = tuple(chr(0x60 + n) for n in range(24)) + tuple("x" + chr(n) for n in range(24, 128))


def bucket_of_text(text: str) -> int:
    """The bucket of the (flag key + bucketing value) text; see :mod:`runner.evaluate.bucket`."""
    n = len(text)
    if n < 128 and text.isascii():
        h = mmh3.hash(_HEADERS[n] + text, 0, False)
    else:
        h = mmh3.hash(cbor_text(text.encode("utf-8")), 0, False)
    return (h * TOTAL_WEIGHT) >> 32


def _require(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise ArtifactError(f"{where}: {message}")


def _compile_flag(key: str, d: Any) -> CompiledFlag:
    where = f"flags.{key}"
    _require(isinstance(d, Mapping), where, "must be an object")
    f = CompiledFlag()
    f.key = key
    variants = d.get("variants")
    _require(isinstance(variants, Mapping) and len(variants) > 0, f"{where}.variants",
             "must be a non-empty object")
    f.variants = dict(variants)
    f.default_variant = d.get("default_variant")  # type: ignore[assignment]
    _require(f.default_variant in f.variants, f"{where}.default_variant",
             f"{f.default_variant!r} is not a variant")
    f.rollout_variant = d.get("rollout_variant", f.default_variant)
    _require(f.rollout_variant in f.variants, f"{where}.rollout_variant",
             f"{f.rollout_variant!r} is not a variant")
    f.type = value_type(f.variants[f.default_variant])
    _require(d.get("type", f.type) == f.type, f"{where}.type",
             f"{d.get('type')!r} does not match the default variant's {f.type}")
    f.enabled = d.get("enabled", True)
    _require(isinstance(f.enabled, bool), f"{where}.enabled", "must be true or false")
    rollout = d.get("rollout")
    _require(rollout is None or isinstance(rollout, Mapping), f"{where}.rollout",
             "must be an object or null")
    f.rolled_back = None
    if rollout is not None and rollout.get("phase") == ROLLED_BACK_PHASE:
        f.rolled_back = str(rollout.get("plan") or key)
    f.env_var = d.get("env_var") or key.upper()
    _require(isinstance(f.env_var, str), f"{where}.env_var", "must be a string")
    reqs = []
    for i, r in enumerate(d.get("requires") or ()):
        _require(isinstance(r, Mapping) and isinstance(r.get("flag"), str)
                 and isinstance(r.get("variant"), str), f"{where}.requires[{i}]",
                 "must be {flag, variant}")
        reqs.append((r["flag"], r["variant"]))
    f.requires = tuple(reqs)
    t = d.get("targeting") or {}
    _require(isinstance(t, Mapping), f"{where}.targeting", "must be an object")
    f.users = frozenset(t.get("users") or ())
    f.regions = frozenset(t.get("regions") or ())
    f.targeting_variant = t.get("variant") or f.rollout_variant
    _require(f.targeting_variant in f.variants, f"{where}.targeting.variant",
             f"{f.targeting_variant!r} is not a variant")
    rules = []
    for i, r in enumerate(t.get("rules") or ()):
        rw = f"{where}.targeting.rules[{i}]"
        _require(isinstance(r, Mapping) and r.get("op") in RULE_OPS
                 and isinstance(r.get("attribute"), str), rw, "needs attribute and a known op")
        values = tuple(r.get("values") or ())
        _require(len(values) > 0, rw, "needs values")
        if r["op"] in ("starts_with", "ends_with"):
            _require(isinstance(values[0], str), rw, "starts_with/ends_with take a string")
        _require(r.get("variant") in f.variants, rw, f"{r.get('variant')!r} is not a variant")
        rules.append(CompiledRule(r["attribute"], r["op"], values, r["variant"]))
    f.rules = tuple(rules)
    split = []
    end = 0
    for i, s in enumerate(d.get("split") or ()):
        sw = f"{where}.split[{i}]"
        _require(isinstance(s, Mapping) and s.get("variant") in f.variants, sw,
                 "names no variant of the flag")
        w = s.get("weight")
        _require(isinstance(w, int) and not isinstance(w, bool) and w >= 0, sw,
                 "weight must be a non-negative integer")
        if w:
            end += w
            split.append((end, s["variant"]))
    _require(end in (0, TOTAL_WEIGHT), f"{where}.split",
             f"weights add up to {end}, not {TOTAL_WEIGHT}")
    f.split = tuple(split)
    f.split_all = split[0][1] if len(split) == 1 else None
    if not f.enabled:
        f.fixed = f.outcome(f.default_variant, DISABLED, "flag disabled")
    elif f.rolled_back is not None:
        f.fixed = f.outcome(f.default_variant, DISABLED,
                            f"rolled back in rollout plan {f.rolled_back!r}")
    elif not (f.requires or f.users or f.regions or f.rules or f.split):
        f.fixed = f.outcome(f.default_variant, DEFAULT, "")
    elif not (f.requires or f.users or f.regions or f.rules) and f.split_all is not None:
        f.fixed = f.outcome(f.split_all, SPLIT, "")
    else:
        f.fixed = None
    f.key_bytes = key.encode("utf-8")
    bucket_by = d.get("bucket_by")
    _require(bucket_by is None or isinstance(bucket_by, str), f"{where}.bucket_by",
             "must be a string")
    if bucket_by is None:
        f.bucket_attribute, f.bucket_path = None, None
    else:
        f.bucket_attribute, f.bucket_path = _attribute_getter(bucket_by)
    return f


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

    __slots__ = ("_env_index", "digest", "emergency_shutdown", "flags", "source_commit")

    def __init__(self, flags: dict[str, CompiledFlag], *, emergency_shutdown: bool,
                 digest: str | None, source_commit: str | None):
        self.flags = flags
        self.emergency_shutdown = emergency_shutdown
        self.digest = digest
        self.source_commit = source_commit
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
        from runner.evaluate.artifact import ARTIFACT_KIND, ARTIFACT_VERSION

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
        flags = {}
        for k, v in raw_flags.items():
            try:
                flags[k] = _compile_flag(k, v)
            except (TypeError, AttributeError) as e:  # a shape the checks did not foresee
                raise ArtifactError(f"flags.{k}: malformed ({e})") from e
        for k in _check_graph(flags):
            flags[k].resolve = _make_resolver(flags[k], flags)
        return cls(flags, emergency_shutdown=kill, digest=doc.get("digest"),
                   source_commit=doc.get("source_commit"))

    def __len__(self) -> int:
        return len(self.flags)


# --- the environment ---------------------------------------------------------------------


class EnvState:
    """The environment as evaluation needs it: the kill switch and the parsed overrides.

    ``outcomes`` holds, per flag the environment decides, the (variant, reason, details)
    it serves, so that evaluation asks one question: is this flag in it?
    """

    __slots__ = ("killed", "outcomes", "overrides")

    def __init__(self, killed: bool, overrides: dict[str, str],
                 outcomes: dict[str, Resolution] | None = None):
        self.killed = killed
        self.overrides = overrides
        self.outcomes = outcomes if outcomes is not None else {}

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, EnvState) and self.killed == other.killed
                and self.overrides == other.overrides)

    __hash__ = None  # type: ignore[assignment]


def parse_switch(raw: str) -> bool | None:
    low = raw.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    return None


def parse_override(flag: CompiledFlag, raw: str) -> str | None:
    """The variant an override value selects; None when it selects none."""
    text = raw.strip()
    if text in flag.variants:
        return text
    if flag.type == "boolean":
        want = parse_switch(text)
        if want is not None:
            for name in (flag.rollout_variant, flag.default_variant, *flag.variants):
                if flag.variants[name] is want:
                    return name
    return None


def env_state(flags: FlagSet, env: Mapping[str, str] | None) -> EnvState:
    """Parse the kill switch and every flag's override from ``env``, warning once per bad value."""
    killed = flags.emergency_shutdown
    if not env:
        return _with_outcomes(flags, killed, {})
    raw = env.get(KILL_SWITCH_VAR)
    if raw is not None and raw.strip():
        on = parse_switch(raw)
        if on is None:
            warn_once((KILL_SWITCH_VAR, raw), f"{KILL_SWITCH_VAR}={raw!r} is not true/false/1/0/"
                      "on/off/yes/no: ignored")
        else:
            killed = killed or on
    overrides = {}
    # Walk the environment (tens of variables), not the flags (maybe tens of thousands):
    # a client re-reads the environment once per reload interval.
    by_var = flags.env_index()
    for var, raw in _items(env):
        keys = by_var.get(var)
        if not keys or raw is None or not raw.strip():
            continue
        for key in keys:
            f = flags.flags[key]
            variant = parse_override(f, raw)
            if variant is None:
                choices = "true/false/1/0/on/off/yes/no or " if f.type == "boolean" else ""
                warn_once((var, raw), f"{var}={raw!r} does not select a variant of "
                          f"{key!r} (expected {choices}one of {', '.join(sorted(f.variants))}): "
                          "override ignored")
                continue
            overrides[key] = variant
    return _with_outcomes(flags, killed, overrides)


def _items(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """A copy of the environment's items; another thread may be changing os.environ."""
    for _ in range(3):
        try:
            return list(env.items())
        except RuntimeError:  # changed size during iteration
            continue
    return []


def _with_outcomes(flags: FlagSet, killed: bool, overrides: dict[str, str]) -> EnvState:
    if killed:
        outcomes = {k: f.outcome(f.default_variant, DISABLED, "kill switch")
                    for k, f in flags.flags.items()}
    else:
        outcomes = {k: flags.flags[k].outcome(v, STATIC,
                                              f"environment override {flags.flags[k].env_var}")
                    for k, v in overrides.items()}
    return EnvState(killed, overrides, outcomes)


# --- evaluation --------------------------------------------------------------------------


def as_context(ctx: Any) -> Mapping[str, Any]:
    """An OpenFeature ``EvaluationContext`` (or look-alike) as a context mapping."""
    attributes = getattr(ctx, "attributes", None)
    if not isinstance(attributes, Mapping):
        raise TypeError(f"a context is a mapping, not {type(ctx).__name__}")
    return {**attributes, "targetingKey": getattr(ctx, "targeting_key", None)}


def targeting_key_of(ctx: Mapping[str, Any]) -> Any:
    tk = ctx.get("targetingKey")
    if tk is None:
        tk = ctx.get("targeting_key")
    return tk


def resolve(flags: FlagSet, f: CompiledFlag, ctx: Mapping[str, Any], tk: Any,
            env: EnvState) -> Resolution:
    """The outcome of flag ``f`` for this context."""
    return f.resolve(ctx, tk, env.outcomes)


def _rule_test(rule: CompiledRule) -> Callable[[Mapping[str, Any], Any], bool]:
    """A rule as a function of (context, targeting key), specialised for its operator."""
    attr, path, values, op = rule.attribute, rule.path, rule.values, rule.op
    if path is not None or attr == "targetingKey":
        return rule.matches
    if op == "in" or op == "equals":
        def test_in(ctx: Mapping[str, Any], tk: Any) -> bool:
            v = ctx.get(attr)
            return v is not None and v in values
        return test_in
    if op == "not_in":
        def test_not_in(ctx: Mapping[str, Any], tk: Any) -> bool:
            v = ctx.get(attr)
            return v is not None and v not in values
        return test_not_in
    affix = values[0]
    if op == "starts_with":
        def test_starts(ctx: Mapping[str, Any], tk: Any) -> bool:
            v = ctx.get(attr)
            return v.__class__ is str and v.startswith(affix)
        return test_starts

    def test_ends(ctx: Mapping[str, Any], tk: Any) -> bool:
        v = ctx.get(attr)
        return v.__class__ is str and v.endswith(affix)
    return test_ends


#: (context, targeting key, environment outcomes) -> a precomputed Resolution
Resolver = Callable[[Mapping[str, Any], Any, Mapping[str, Resolution]], Resolution]


_CANARY_USER, _CANARY_REGION = "canary user", "canary region"
_unbucketed_details: dict[str | None, str] = {}


def _unbucketed(attribute: str | None) -> str:
    """One shared details string per bucketing attribute, not one per flag."""
    text = _unbucketed_details.get(attribute)
    if text is None:
        text = f"no {attribute or 'targeting key'} in the context: not bucketed"
        _unbucketed_details[attribute] = text
    return text


def _make_resolver(f: CompiledFlag, flags: Mapping[str, CompiledFlag]) -> Resolver:
    """Flag ``f`` as one closure over precomputed outcomes: the hot path of every evaluation.

    Prerequisites must have their resolvers already (compile in dependency order).
    """
    key = f.key
    fixed = f.fixed
    if fixed is not None:
        def resolve_fixed(ctx: Mapping[str, Any], tk: Any,
                          outcomes: Mapping[str, Resolution]) -> Resolution:
            if outcomes:
                decided = outcomes.get(key)
                if decided is not None:
                    return decided
            return fixed
        return resolve_fixed

    default = f.default_variant
    reqs = tuple(
        (flags[rk].resolve, rv, {got: f.outcome(default, PREREQUISITE_FAILED,
                                                f"prerequisite {rk!r} serves {got!r}, not {rv!r}")
                                 for got in flags[rk].variants})
        for rk, rv in f.requires
    )
    tv = f.targeting_variant
    rules = tuple((_rule_test(r), f.outcome(r.variant, TARGETING_MATCH, f"rule on {r.attribute!r}"))
                  for r in f.rules)
    canary_user = f.outcome(tv, TARGETING_MATCH, _CANARY_USER)
    canary_region = f.outcome(tv, TARGETING_MATCH, _CANARY_REGION)
    split_all = f.outcome(f.split_all, SPLIT, "") if f.split_all is not None else None
    split = tuple((end, f.outcome(variant, SPLIT, "")) for end, variant in f.split)
    unbucketed = f.outcome(default, DEFAULT, _unbucketed(f.bucket_attribute))
    fallback = f.outcome(default, DEFAULT, "")

    # Everything the closure reads is bound as a default argument: a local variable is the
    # fastest read there is, and a defaults tuple is smaller than a cell per variable
    # (this function exists once per flag; a client may hold tens of thousands).
    def resolve_flag(ctx: Mapping[str, Any], tk: Any,
                     outcomes: Mapping[str, Resolution],
                     key: str = key, reqs: tuple[Any, ...] = reqs,
                     users: frozenset[str] = f.users, regions: frozenset[str] = f.regions,
                     canary_user: Resolution = canary_user,
                     canary_region: Resolution = canary_region,
                     rules: tuple[Any, ...] = rules,
                     split_all: Resolution | None = split_all,
                     split: tuple[tuple[int, Resolution], ...] = split,
                     bucket_attr: str | None = f.bucket_attribute,
                     bucket_path: tuple[str, ...] | None = f.bucket_path,
                     unbucketed: Resolution = unbucketed,
                     fallback: Resolution = fallback,
                     headers: tuple[str, ...] = _HEADERS, hash32: Any = _hash,
                     weight_total: int = TOTAL_WEIGHT,
                     ) -> Resolution:
        if outcomes:
            decided = outcomes.get(key)
            if decided is not None:
                return decided
        for req_resolve, req_variant, failed in reqs:
            got = req_resolve(ctx, tk, outcomes)[1]  # .variant
            if got != req_variant:
                return failed[got]  # type: ignore[no-any-return]
        if users and tk.__class__ is str and tk in users:
            return canary_user
        if regions:
            region = ctx.get("region")
            if region.__class__ is str and region in regions:
                return canary_region
        for test, matched in rules:
            if test(ctx, tk):
                return matched  # type: ignore[no-any-return]
        if split_all is not None:
            return split_all
        if split:
            raw = tk if bucket_attr is None else _lookup(ctx, bucket_attr, bucket_path, tk)
            if raw is None:
                return unbucketed
            text = key + (raw if raw.__class__ is str else json_logic_text(raw))
            n = len(text)
            if n < 128 and text.isascii():
                h = hash32(headers[n] + text, 0, False)
            else:
                h = hash32(cbor_text(text.encode("utf-8")), 0, False)
            b = (h * weight_total) >> 32
            for end, chosen in split:
                if b < end:
                    return chosen
        return fallback

    return resolve_flag


_hash = mmh3.hash


def matches_type(value: Any, default: Any) -> bool:
    """Whether a flag value can be returned where the caller's default has this type."""
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, Mapping):
        return isinstance(value, Mapping)
    return isinstance(value, type(default))


def evaluate_compiled(flags: FlagSet, key: str, context: Mapping[str, Any] | None,
                      env: EnvState, default: Any = None) -> Resolution:
    f = flags.flags.get(key)
    if f is None:
        return Resolution(default, None, ERROR, FLAG_NOT_FOUND, f"no flag {key!r}")
    if context is None:
        context = _EMPTY
    try:
        if not isinstance(context, Mapping):
            context = as_context(context)
        tk = context.get("targetingKey")
        if tk is None:
            tk = context.get("targeting_key")
        r = f.resolve(context, tk, env.outcomes)
    except Exception as e:  # a context that breaks a comparison: never the caller's problem
        return Resolution(default, None, ERROR, GENERAL, f"{type(e).__name__}: {e}")
    if default is not None and not matches_type(r[0], default):
        return type_mismatch(f, default)
    return r


def type_mismatch(f: CompiledFlag, default: Any) -> Resolution:
    return Resolution(default, None, ERROR, TYPE_MISMATCH,
                      f"{f.key!r} is a {f.type} flag, the default given is a "
                      f"{value_type(default)}")


# --- the pure entry point --------------------------------------------------------------

_compiled_cache: dict[int, tuple[Any, FlagSet]] = {}
_cache_lock = threading.Lock()


def as_flag_set(flags: Any) -> FlagSet:
    """A FlagSet from a FlagSet, an artifact document, or a :class:`Repository`."""
    if isinstance(flags, FlagSet):
        return flags
    with _cache_lock:
        hit = _compiled_cache.get(id(flags))
        if hit is not None and hit[0] is flags:
            return hit[1]
    from runner.model import Repository

    if isinstance(flags, Repository):
        from runner.evaluate.artifact import artifact_document

        compiled = FlagSet.from_document(artifact_document(flags, source_commit=None))
    else:
        compiled = FlagSet.from_document(flags)
    with _cache_lock:
        if len(_compiled_cache) >= 8:
            _compiled_cache.clear()
        _compiled_cache[id(flags)] = (flags, compiled)
    return compiled


def evaluate(flags: Any, key: str, context: Mapping[str, Any] | None = None,
             env: Mapping[str, str] | None = None, default: Any = None) -> Resolution:
    """Evaluate one flag. Pure: the environment is what ``env`` says (None: empty).

    ``flags`` is a :class:`Repository`, an artifact document (parsed JSON) or a
    :class:`FlagSet`; ``context`` a mapping with ``targetingKey`` (the user id) and
    attributes such as ``region``. Never raises for an unknown flag or a wrong type.
    """
    fs = as_flag_set(flags)
    return evaluate_compiled(fs, key, context, env_state(fs, env), default)
