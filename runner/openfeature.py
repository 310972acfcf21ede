"""An OpenFeature provider for the ``openfeature-sdk`` package, backed by a :class:`FlagClient`.

    from openfeature import api
    from runner import FlagClient
    from runner.openfeature import RolloutProvider

    api.set_provider(RolloutProvider(FlagClient.from_file("flags.json")))
    api.get_client().get_boolean_value("phase_4_deployment", False,
                                        EvaluationContext("user-42", {"region": "eu-west-1"}))

Variants are the client's, and so are its reasons, but for two that OpenFeature names
otherwise (its reasons are STATIC, DEFAULT, TARGETING_MATCH, SPLIT, CACHED, DISABLED,
UNKNOWN, STALE, ERROR: a client such as OFREP's treats any other as a failure and serves the
caller's default):

* a failed prerequisite (the client's ``PREREQUISITE_FAILED``) is ``DEFAULT``: the flag's
  default variant, served because no rule of the flag applies to this context; the client's
  reason is kept in ``flag_metadata["rollout_reason"]``, the prerequisite in ``details``;
* the default variant of a flag that depends on no context at all (no prerequisite, no
  targeting, no split: a constant flag, a rollout at 0 % without canaries) is ``STATIC``.

Errors are raised as OpenFeature's exceptions, which the SDK turns into the caller's default
with the error code.

Events, as the provider specification has them (``openfeature-sdk`` turns them into the
provider's status and runs the handlers applications add):

* ``PROVIDER_READY``: ``initialize`` returns once the client has flags (the SDK emits it);
  emitted by the provider when flags first arrive after a failed first load, and when the
  source answers again after ``PROVIDER_STALE``.
* ``PROVIDER_ERROR``: ``initialize`` raises ``ProviderNotReadyError`` when the client has no
  flags (its first load failed: an unreachable URL, a missing file), so the SDK emits it.
* ``PROVIDER_CONFIGURATION_CHANGED``: after each reload that changes something, with
  ``flags_changed`` (the keys, sorted; see ``FlagClient.on_change``).
* ``PROVIDER_STALE``: a client with a poller (``from_url``, ``from_repo``) whose looks have
  failed for ``stale_after`` seconds (default three poll intervals), at the first failed
  look past that; the flags served are the last good ones. An artifact older than the one
  served (a lower generation: a stale copy, a replay) is such a failed look.

``shutdown`` closes the client (stops its poller).

A provider of one flag set reads what its client reads:
``RolloutProvider(FlagClient.from_url(url, set="checkout"))`` (docs/serving.md, Flag sets).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import (
    FlagNotFoundError,
    GeneralError,
    InvalidContextError,
    ProviderNotReadyError,
    TypeMismatchError,
)
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.provider import AbstractProvider, Metadata

from runner.evaluate.resolution import (
    DEFAULT,
    FLAG_NOT_FOUND,
    PREREQUISITE_FAILED,
    PROVIDER_NOT_READY,
    STATIC,
    TYPE_MISMATCH,
    Resolution,
)
from runner.evaluate.resolver import failure_details
from runner.sdk import FlagClient

PROVIDER_NAME = "rollout-runner"
#: Poll intervals without a successful look before a poller's provider is STALE.
STALE_AFTER_INTERVALS = 3
#: The longest ``initialize`` waits for a poller's first look.
INIT_TIMEOUT = 30.0


def context_mapping(ctx: EvaluationContext | None) -> Mapping[str, Any]:
    """An OpenFeature context as the client's mapping: attributes plus ``targetingKey``.

    Raises :class:`InvalidContextError` (OpenFeature's ``INVALID_CONTEXT``: the caller's
    default) for anything that is not a context, or whose attributes cannot be read."""
    if ctx is None:
        return {}
    try:
        out: dict[str, Any] = dict(ctx.attributes)
        out["targetingKey"] = ctx.targeting_key
    except Exception as e:  # a hostile context (its attributes raise anything): the caller's default
        raise InvalidContextError(f"not a usable evaluation context: "
                                  f"{failure_details(e)}") from None
    return out


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, Mapping | list)  # object


class RolloutProvider(AbstractProvider):
    """Resolves OpenFeature evaluations with Rollout Runner's in-process client."""

    def __init__(self, client: FlagClient, *, stale_after: float | None = None,
                 allow_generation_reset: bool = False):
        """``allow_generation_reset=True`` lets ``client`` accept an artifact of any
        generation (as if it was built with it: a deliberately rebuilt history); False
        leaves the client's own setting."""
        super().__init__()
        self.client = client
        if allow_generation_reset:
            client.allow_generation_reset = True
        interval = client.poll_interval
        #: Seconds without a successful look before PROVIDER_STALE (pollers only).
        self.stale_after = (stale_after if stale_after is not None
                            else STALE_AFTER_INTERVALS * interval if interval else None)
        self._lock = threading.Lock()
        self._state = "NOT_READY"  # as far as events told the SDK: READY, ERROR, STALE
        client.on_change(self._changed)
        client._on_check(self._checked)

    def get_metadata(self) -> Metadata:
        return Metadata(name=PROVIDER_NAME)

    # --- lifecycle and events ----------------------------------------------------------

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Returns when the client has flags (the SDK then emits PROVIDER_READY); raises
        ``ProviderNotReadyError`` when its first load failed (the SDK: PROVIDER_ERROR)."""
        self.client.wait_ready(INIT_TIMEOUT)
        with self._lock:
            if self.client.ready:
                self._state = "READY"
                return
            self._state = "ERROR"
        reason = self.client.last_error or "no valid artifact loaded"
        raise ProviderNotReadyError(f"first load failed: {reason}")

    def shutdown(self) -> None:
        self.client.close()

    def _changed(self, keys: frozenset[str]) -> None:
        with self._lock:
            first = self._state == "ERROR"
            if first:
                self._state = "READY"
            elif self._state == "NOT_READY":  # not initialized yet: nobody listens
                return
        if first:
            self.emit_provider_ready(ProviderEventDetails(
                message=f"flags loaded from {self.client.source}"))
        else:
            self.emit_provider_configuration_changed(ProviderEventDetails(
                flags_changed=sorted(keys), message=f"flags reloaded ({self.client.digest})"))

    def _checked(self) -> None:
        """After each look of the client's poller: STALE past the threshold, READY back."""
        error = self.client.last_error
        with self._lock:
            if error is None and self._state == "STALE":
                self._state = event = "READY"
            elif (error is not None and self._state == "READY" and self.stale_after is not None
                  and self.client.staleness >= self.stale_after):
                self._state = event = "STALE"
            else:
                return
        if event == "READY":
            self.emit_provider_ready(ProviderEventDetails(
                message=f"{self.client.source} answers again"))
        else:
            self.emit_provider_stale(ProviderEventDetails(
                message=f"no successful look for {self.client.staleness:.0f} s: {error}"))

    def _resolve(self, kind: str, key: str, default: Any,
                 ctx: EvaluationContext | None) -> FlagResolutionDetails[Any]:
        r: Resolution = self.client.evaluate(key, context_mapping(ctx))
        if r.error_code == FLAG_NOT_FOUND:
            raise FlagNotFoundError(r.details)
        if r.error_code == PROVIDER_NOT_READY:
            raise ProviderNotReadyError(r.details)
        if r.error_code is not None:
            raise GeneralError(r.details)
        value = r.value
        if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not _type_ok(kind, value):
            raise TypeMismatchError(f"{key!r} is a {self.client.flag_type(key)} flag, "
                                    f"not {kind}")
        meta: dict[str, str] = {"details": r.details} if r.details else {}
        return FlagResolutionDetails(value=value, variant=r.variant,
                                     reason=self._reason(key, r, meta), flag_metadata=meta)

    def _reason(self, key: str, r: Resolution, meta: dict[str, str]) -> str:
        """The client's reason in OpenFeature's words (the module's docstring)."""
        if r.reason == PREREQUISITE_FAILED:
            meta["rollout_reason"] = PREREQUISITE_FAILED
            return DEFAULT
        if r.reason == DEFAULT:
            # the compiled flag's outcome when it depends on no context (compile.py
            # _fixed_outcome): DEFAULT only for a flag with nothing dynamic
            flag = self.client._current().flags.flags.get(key)
            if flag is not None and flag.fixed is not None and flag.fixed.reason == DEFAULT:
                return STATIC
        return r.reason

    def resolve_boolean_details(self, flag_key: str, default_value: bool,
                                evaluation_context: EvaluationContext | None = None,
                                ) -> FlagResolutionDetails[bool]:
        return self._resolve("boolean", flag_key, default_value, evaluation_context)

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None,
                               ) -> FlagResolutionDetails[str]:
        return self._resolve("string", flag_key, default_value, evaluation_context)

    def resolve_integer_details(self, flag_key: str, default_value: int,
                                evaluation_context: EvaluationContext | None = None,
                                ) -> FlagResolutionDetails[int]:
        return self._resolve("integer", flag_key, default_value, evaluation_context)

    def resolve_float_details(self, flag_key: str, default_value: float,
                              evaluation_context: EvaluationContext | None = None,
                              ) -> FlagResolutionDetails[float]:
        return self._resolve("float", flag_key, default_value, evaluation_context)

    def resolve_object_details(
        self, flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve("object", flag_key, default_value, evaluation_context)


__all__ = ["PROVIDER_NAME", "STALE_AFTER_INTERVALS", "TYPE_MISMATCH", "RolloutProvider",
           "context_mapping"]
