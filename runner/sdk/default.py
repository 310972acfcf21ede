"""The module-level default client (``runner.is_enabled``...), made from the ``ROLLOUT_*`` variables."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Mapping
from typing import Any

from runner.evaluate.resolution import Resolution
from runner.model.environments import ENVIRONMENT_NAME
from runner.model.flagsets import SET_NAME
from runner.sdk.client import DEFAULT_POLL_INTERVAL, DEFAULT_RELOAD_INTERVAL, FlagClient

log = logging.getLogger("runner.sdk")

#: The artifact the module-level functions (``runner.is_enabled``...) read.
FLAGS_FILE_VAR = "ROLLOUT_FLAGS_FILE"
#: Seconds between two looks at the artifact file (``ROLLOUT_RELOAD_INTERVAL`` overrides).
RELOAD_INTERVAL_VAR = "ROLLOUT_RELOAD_INTERVAL"
#: The artifact URL the module-level functions poll; wins over ``ROLLOUT_FLAGS_FILE``.
FLAGS_URL_VAR = "ROLLOUT_FLAGS_URL"
#: Seconds between two polls of ``ROLLOUT_FLAGS_URL`` (default 30).
POLL_INTERVAL_VAR = "ROLLOUT_POLL_INTERVAL"
#: The variable holding the bearer token the default client sends to ``ROLLOUT_FLAGS_URL``.
FLAGS_TOKEN_VAR = "ROLLOUT_FLAGS_TOKEN"
#: The flag set the default client reads (``sets/NAME/flags.json`` beside the
#: ``flags.json`` of ``ROLLOUT_FLAGS_URL`` or ``ROLLOUT_FLAGS_FILE``); unset: the whole.
FLAG_SET_VAR = "ROLLOUT_FLAG_SET"
#: The environment whose publication the default client reads (a repository that declares
#: ``[tool.rollout.environments]``): ``{environment}`` in ``ROLLOUT_FLAGS_URL`` or
#: ``ROLLOUT_FLAGS_FILE`` replaced by it, else its folder beside the ``flags.json`` they
#: name (``…/NAME/flags.json``); an artifact of another environment is refused. Unset: the
#: URL or file as it is.
ENVIRONMENT_VAR = "ROLLOUT_ENVIRONMENT"

_default: FlagClient | None = None
_default_lock = threading.Lock()


def _seconds_var(name: str, default: float, *, positive: bool) -> float:
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = math.nan
    if not (0 < value < 1e9 if positive else 0 <= value < 1e9):  # nan, inf, negative
        log.warning("%s=%r is not a number of seconds; using %s", name, raw, default)
        value = default
    return value


def _make_default() -> FlagClient:
    url = os.environ.get(FLAGS_URL_VAR, "")
    path = os.environ.get(FLAGS_FILE_VAR, "")
    flag_set = os.environ.get(FLAG_SET_VAR, "").strip() or None
    if flag_set is not None and not SET_NAME.fullmatch(flag_set):
        log.error("%s=%r is not a set's name (lower-case letters, digits, _ and -); every "
                  "flag evaluates to the caller's default", FLAG_SET_VAR, flag_set)
        return FlagClient(None)
    environment = os.environ.get(ENVIRONMENT_VAR, "").strip() or None
    if environment is not None and not ENVIRONMENT_NAME.fullmatch(environment):
        log.error("%s=%r is not an environment's name (lower-case letters, digits, _ and -, "
                  "starting with a letter); every flag evaluates to the caller's default",
                  ENVIRONMENT_VAR, environment)
        return FlagClient(None)
    if url:
        if path:
            log.warning("both %s and %s are set: reading %s, ignoring %s", FLAGS_URL_VAR,
                        FLAGS_FILE_VAR, FLAGS_URL_VAR, FLAGS_FILE_VAR)
        interval = _seconds_var(POLL_INTERVAL_VAR, DEFAULT_POLL_INTERVAL, positive=True)
        token_env = FLAGS_TOKEN_VAR if os.environ.get(FLAGS_TOKEN_VAR) else None
        try:
            return FlagClient.from_url(url, poll_interval=interval, wait=False,
                                       bearer_token_env=token_env, set=flag_set,
                                       environment=environment)
        except ValueError as e:  # not an http(s) URL
            log.error("%s: %s; every flag evaluates to the caller's default", FLAGS_URL_VAR, e)
            return FlagClient(None)
    if not path:
        log.warning("neither %s nor %s is set: every flag evaluates to the caller's default",
                    FLAGS_URL_VAR, FLAGS_FILE_VAR)
        return FlagClient(None)
    interval = _seconds_var(RELOAD_INTERVAL_VAR, DEFAULT_RELOAD_INTERVAL, positive=False)
    return FlagClient.from_file(path, reload_interval=interval, wait=False, set=flag_set,
                                environment=environment)


def default_client() -> FlagClient:
    """The client the module-level functions use, made once: on ``$ROLLOUT_FLAGS_URL``
    (polled every ``$ROLLOUT_POLL_INTERVAL`` seconds, bearer token ``$ROLLOUT_FLAGS_TOKEN``
    when set), else on ``$ROLLOUT_FLAGS_FILE``. Both set: the URL wins, with a warning.
    ``$ROLLOUT_FLAG_SET``: read that flag set of the publication (``set=``), not the whole.
    ``$ROLLOUT_ENVIRONMENT``: read that environment's publication (``environment=``).

    Never raises: without the variables, or with an unreachable URL or a missing or bad
    file, it serves callers' defaults (reason ``ERROR``) and keeps looking.
    """
    global _default
    client = _default
    if client is not None:
        return client
    with _default_lock:
        if _default is None:
            _default = _make_default()
        return _default


def set_default_client(client: FlagClient | None) -> None:
    """Use ``client`` for the module-level functions (None: rebuild from the environment)."""
    global _default
    with _default_lock:
        _default = client


def is_enabled(key: str, context: Mapping[str, Any] | None = None) -> bool:
    return default_client().is_enabled(key, context)


def value(key: str, context: Mapping[str, Any] | None = None, default: Any = None) -> Any:
    return default_client().value(key, context, default)


def evaluate(key: str, context: Mapping[str, Any] | None = None,
             default: Any = None) -> Resolution:
    return default_client().evaluate(key, context, default)


def all_flags(context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return default_client().all_flags(context)


get_all_flags = all_flags
