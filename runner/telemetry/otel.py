"""OpenTelemetry ``feature_flag.evaluation`` events for every evaluation a client makes.

The events follow OpenTelemetry's semantic conventions for feature flags (status:
development, https://opentelemetry.io/docs/specs/semconv/feature-flags/): an event named
``feature_flag.evaluation``, emitted through the Logs API (a log record with that event
name, in the current context, so it carries the active trace and span), with

=============================== =======================================================
``feature_flag.key``            the flag's key
``feature_flag.provider.name``  ``rollout-runner``
``feature_flag.result.variant`` the variant served (absent when the evaluation failed)
``feature_flag.result.value``   the value, only when there is no variant (or asked for);
                                a JSON text for objects and lists
``feature_flag.result.reason``  the reason, lower case (``split``, ``targeting_match``,
                                ``static``, ``default``, ``disabled``, ``error``...)
``feature_flag.context.id``     the targeting key (``context_id=False`` leaves it out)
``feature_flag.version``        the digest of the flags served
``error.type``                  the error code, lower case, when the reason is ``error``
``feature_flag.error.message``  what went wrong, when the reason is ``error``
=============================== =======================================================

``span_events=True`` also adds the same attributes as an event on the current span (the
older convention, which tracing back ends show beside the request), when one is recording.

    from runner import FlagClient
    from runner.telemetry.otel import EvaluationEvents

    flags = FlagClient.from_file("flags.json")
    EvaluationEvents(flags)       # the global LoggerProvider; or logger_provider=...

Needs ``opentelemetry-api`` (``pip install 'rollout-runner[otel]'``); an SDK and an
exporter are the application's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import trace
    from opentelemetry._logs import LoggerProvider, get_logger
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError("runner.telemetry.otel needs opentelemetry-api: "
                      "pip install 'rollout-runner[otel]'") from e

from runner import __version__
from runner.evaluate.resolution import ERROR, Resolution

if TYPE_CHECKING:
    from runner.sdk import FlagClient

EVENT_NAME = "feature_flag.evaluation"
PROVIDER_NAME = "rollout-runner"  # the same as runner.openfeature.PROVIDER_NAME
KEY = "feature_flag.key"
PROVIDER = "feature_flag.provider.name"
VARIANT = "feature_flag.result.variant"
VALUE = "feature_flag.result.value"
REASON = "feature_flag.result.reason"
CONTEXT_ID = "feature_flag.context.id"
VERSION = "feature_flag.version"
ERROR_TYPE = "error.type"
ERROR_MESSAGE = "feature_flag.error.message"

_PRIMITIVE = (str, bool, int, float)


def _value(value: Any) -> Any:
    """An attribute value: a primitive as is, anything else as JSON text."""
    if isinstance(value, _PRIMITIVE):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _targeting_key(context: Mapping[str, Any] | None) -> str | None:
    if context is None:
        return None
    try:
        tk = context.get("targetingKey")
        if tk is None:
            tk = context.get("targeting_key")
    except Exception:  # a context whose get raises: no id, never an error
        return None
    return tk if isinstance(tk, str) and tk else None


def evaluation_attributes(key: str, context: Mapping[str, Any] | None, r: Resolution, *,
                          version: str | None = None, include_value: bool = False,
                          context_id: bool = True) -> dict[str, Any]:
    """The semantic-convention attributes of one evaluation (see the module's table)."""
    attrs: dict[str, Any] = {KEY: key, PROVIDER: PROVIDER_NAME, REASON: r.reason.lower()}
    if r.variant is not None:
        attrs[VARIANT] = r.variant
    if (r.variant is None or include_value) and r.value is not None:
        attrs[VALUE] = _value(r.value)
    if context_id:
        tk = _targeting_key(context)
        if tk is not None:
            attrs[CONTEXT_ID] = tk
    if version:
        attrs[VERSION] = version
    if r.reason == ERROR:
        attrs[ERROR_TYPE] = (r.error_code or "GENERAL").lower()
        if r.details:
            attrs[ERROR_MESSAGE] = r.details
    return attrs


class EvaluationEvents:
    """An evaluation hook emitting one ``feature_flag.evaluation`` event per evaluation.

    ``client``: added to it at once (:meth:`FlagClient.on_evaluation`); the events then
    carry the digest of the flags it serves as ``feature_flag.version``. Without a
    client, add the instance yourself (``client.on_evaluation(events)``).
    ``logger_provider``: default the global one (``opentelemetry._logs``).
    ``include_value``: the value too when there is a variant (off: values can be large or
    private; the variant names them). ``context_id``: the targeting key as
    ``feature_flag.context.id``. ``span_events``: the event on the current span too."""

    def __init__(self, client: FlagClient | None = None, *,
                 logger_provider: LoggerProvider | None = None, include_value: bool = False,
                 context_id: bool = True, span_events: bool = False):
        self._logger = get_logger("runner.telemetry.otel", __version__,
                                  logger_provider=logger_provider)
        self._client = client
        self.include_value = include_value
        self.context_id = context_id
        self.span_events = span_events
        if client is not None:
            client.on_evaluation(self)

    def __call__(self, key: str, context: Mapping[str, Any] | None, r: Resolution) -> None:
        client = self._client
        attrs = evaluation_attributes(key, context, r,
                                      version=client.digest if client is not None else None,
                                      include_value=self.include_value,
                                      context_id=self.context_id)
        self._logger.emit(event_name=EVENT_NAME, attributes=attrs)
        if self.span_events:
            span = trace.get_current_span()
            if span.is_recording():
                span.add_event(EVENT_NAME, attrs)


__all__ = ["EVENT_NAME", "PROVIDER_NAME", "EvaluationEvents", "evaluation_attributes"]
