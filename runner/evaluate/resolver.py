"""The hot path: each compiled flag as one closure, and the call that runs it safely.

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

Steps 1 and 2 are the environment's outcomes (:mod:`runner.evaluate.environment`); step 3
is decided when the flag is compiled. Every outcome is a :class:`Resolution` built in
advance, so one evaluation is a few dictionary lookups and at most one hash.

Nothing here raises on bad *input to an evaluation*: unknown flags and wrong types give
the caller's default with reason ``ERROR`` and an error code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from runner.evaluate.bucket import (
    BucketFunction,
    TextFunction,
    bucket_function,
    text_function,
)
from runner.evaluate.resolution import (
    DEFAULT,
    ERROR,
    FLAG_NOT_FOUND,
    GENERAL,
    PREREQUISITE_FAILED,
    SPLIT,
    TARGETING_MATCH,
    TYPE_MISMATCH,
    Resolution,
)
from runner.model.config import DEFAULT_BUCKETING
from runner.model.flag import value_type

if TYPE_CHECKING:
    from runner.evaluate.compile import CompiledFlag, CompiledRule, FlagSet
    from runner.evaluate.environment import EnvState

#: (context, targeting key, environment outcomes) -> a precomputed Resolution
Resolver = Callable[[Mapping[str, Any], Any, Mapping[str, Resolution]], Resolution]

_EMPTY: Mapping[str, Any] = {}


def attribute_path(attribute: str) -> tuple[str, ...] | None:
    """JSON Logic's ``var`` reads ``a.b`` as a path into nested objects: so do we."""
    return tuple(attribute.split(".")) if "." in attribute else None


def lookup(ctx: Mapping[str, Any], attribute: str, path: tuple[str, ...] | None,
           targeting_key: Any) -> Any:
    """A context attribute: ``targetingKey`` as found, a dotted path followed into objects."""
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


_CANARY_USER, _CANARY_REGION = "canary user", "canary region"
_unbucketed_details: dict[str | None, str] = {}


def _unbucketed(attribute: str | None) -> str:
    """One shared details string per bucketing attribute, not one per flag."""
    text = _unbucketed_details.get(attribute)
    if text is None:
        text = f"no {attribute or 'targeting key'} in the context: not bucketed"
        _unbucketed_details[attribute] = text
    return text


def make_resolver(f: CompiledFlag, flags: Mapping[str, CompiledFlag], *,
                  bucket: BucketFunction | None = None,
                  text: TextFunction | None = None) -> Resolver:
    """Flag ``f`` as one closure over precomputed outcomes: the hot path of every evaluation.

    ``bucket`` and ``text`` are the bucketing scheme's hash and text conversion
    (:func:`runner.evaluate.bucket.bucket_function`; the default scheme's when not given),
    bound into the closure so that an evaluation never looks at the scheme.
    Prerequisites must have their resolvers already (compile in dependency order).
    """
    if f.fixed is not None:
        return _fixed_resolver(f.key, f.fixed)
    return _dynamic_resolver(f, flags,
                             bucket_function(DEFAULT_BUCKETING) if bucket is None else bucket,
                             text_function(DEFAULT_BUCKETING) if text is None else text)


def _fixed_resolver(key: str, fixed: Resolution) -> Resolver:
    """A flag whose outcome depends on no context: the environment's outcome, else ``fixed``."""
    def resolve_fixed(ctx: Mapping[str, Any], tk: Any,
                      outcomes: Mapping[str, Resolution]) -> Resolution:
        if outcomes:
            decided = outcomes.get(key)
            if decided is not None:
                return decided
        return fixed
    return resolve_fixed


def _dynamic_resolver(f: CompiledFlag, flags: Mapping[str, CompiledFlag],
                      bucket: BucketFunction, text: TextFunction) -> Resolver:
    """A flag whose outcome depends on the context, in the order of this module's docstring.

    Its outcomes are made here, once; ``resolve_flag`` stays one function (about 50 lines):
    a call per step would cost the hot path more than a step itself does."""
    key = f.key
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
                     bucket: BucketFunction = bucket,
                     text: TextFunction = text,
                     ) -> Resolution:
        if outcomes:
            decided = outcomes.get(key)
            if decided is not None:
                return decided
        # ``if`` before ``for``: looping over an empty tuple still makes an iterator, and
        # most flags have neither prerequisites nor rules
        if reqs:
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
        if rules:
            for test, matched in rules:
                if test(ctx, tk):
                    return matched  # type: ignore[no-any-return]
        if split_all is not None:
            return split_all
        if split:
            raw = tk if bucket_attr is None else lookup(ctx, bucket_attr, bucket_path, tk)
            if raw is None:
                return unbucketed
            b = bucket(key, raw if raw.__class__ is str else text(raw))  # type: ignore[arg-type]
            for end, chosen in split:
                if b < end:
                    return chosen
        return fallback

    return resolve_flag


# --- one evaluation, safely --------------------------------------------------------------


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


def type_mismatch(f: CompiledFlag, default: Any) -> Resolution:
    return Resolution(default, None, ERROR, TYPE_MISMATCH,
                      f"{f.key!r} is a {f.type} flag, the default given is a "
                      f"{value_type(default)}")


#: The longest part of an error's ``details`` taken from the caller's input (a key, an
#: exception's message): a huge or hostile value never makes a huge answer.
DETAILS_LIMIT = 200


def shown(value: Any) -> str:
    """``repr(value)`` for a message, never raising, at most :data:`DETAILS_LIMIT` long."""
    try:
        text = repr(value)
    except Exception:  # a caller's object whose __repr__ raises: its type still names it
        text = f"<{type(value).__name__}>"
    return text if len(text) <= DETAILS_LIMIT else text[:DETAILS_LIMIT - 1] + "…"


def failure_details(e: BaseException) -> str:
    """``TypeError: message`` of an exception raised by a caller's context, never raising
    (an exception whose ``str`` raises too), capped."""
    try:
        message = str(e)
    except Exception:  # a caller's exception whose __str__ raises: its name still says it
        message = ""
    if len(message) > DETAILS_LIMIT:
        message = message[:DETAILS_LIMIT - 1] + "…"
    name = type(e).__name__
    return f"{name}: {message}" if message else name


def evaluate_compiled(flags: FlagSet, key: str, context: object,
                      env: EnvState, default: Any = None) -> Resolution:
    """One evaluation on compiled flags and a parsed environment; never raises: not for an
    unknown or unhashable key, a context that is no mapping or whose methods raise, nor a
    value that breaks a comparison (the caller's default, reason ``ERROR``)."""
    try:
        f = flags.flags.get(key)
    except Exception:  # an unhashable key: no flag has it
        f = None
    if f is None:
        return Resolution(default, None, ERROR, FLAG_NOT_FOUND, f"no flag {shown(key)}")
    if context is None:
        context = _EMPTY
    try:
        if not isinstance(context, Mapping):
            context = as_context(context)
        tk = context.get("targetingKey")
        if tk is None:
            tk = context.get("targeting_key")
        r = f.resolve(context, tk, env.outcomes)
        if default is not None and not matches_type(r[0], default):
            return type_mismatch(f, default)
    except Exception as e:  # a context that breaks a comparison: never the caller's problem
        return Resolution(default, None, ERROR, GENERAL, failure_details(e))
    return r
