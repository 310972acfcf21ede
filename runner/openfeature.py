"""An OpenFeature provider for the ``openfeature-sdk`` package, backed by a :class:`FlagClient`.

    from openfeature import api
    from runner import FlagClient
    from runner.openfeature import RolloutProvider

    api.set_provider(RolloutProvider(FlagClient.from_file("flags.resolved.json")))
    api.get_client().get_boolean_value("phase_4_deployment", False,
                                        EvaluationContext("user-42", {"region": "eu-west-1"}))

Reasons and variants are the client's; errors are raised as OpenFeature's exceptions, which
the SDK turns into the caller's default with the error code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openfeature.evaluation_context import EvaluationContext
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
    FLAG_NOT_FOUND,
    PROVIDER_NOT_READY,
    TYPE_MISMATCH,
    Resolution,
)
from runner.evaluate.resolver import failure_details
from runner.sdk import FlagClient

PROVIDER_NAME = "rollout-runner"


def context_mapping(ctx: EvaluationContext | None) -> Mapping[str, Any]:
    """An OpenFeature context as the client's mapping: attributes plus ``targetingKey``.

    Raises :class:`InvalidContextError` (OpenFeature's ``INVALID_CONTEXT``: the caller's
    default) for anything that is not a context, or whose attributes cannot be read."""
    if ctx is None:
        return {}
    try:
        out = dict(ctx.attributes)
        out["targetingKey"] = ctx.targeting_key
    except Exception as e:
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

    def __init__(self, client: FlagClient):
        super().__init__()
        self.client = client

    def get_metadata(self) -> Metadata:
        return Metadata(name=PROVIDER_NAME)

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
        meta = {"details": r.details} if r.details else {}
        return FlagResolutionDetails(value=value, variant=r.variant, reason=r.reason,
                                     flag_metadata=meta)

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


__all__ = ["PROVIDER_NAME", "TYPE_MISMATCH", "RolloutProvider", "context_mapping"]
