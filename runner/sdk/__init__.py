"""The application SDK: ``from runner import FlagClient, is_enabled``.

A :class:`FlagClient` holds a compiled artifact (:class:`runner.evaluate.FlagSet`) and the
parsed environment, and evaluates in-process: no I/O on the call path. Hot reload is
cheap: a call looks at the clock, and at most once per ``reload_interval`` seconds the
client stats the artifact; only a changed file (inode, size or modification time) is read.
A new file that is not a valid artifact (corrupt, half-written by a careless writer, from
a newer version) is refused: the client keeps the last good flags and logs that once per
bad file. Reloading swaps one reference, so threads evaluating during a reload see either
the old flags or the new, never a mix. The environment (kill switch, overrides) is re-read
at the same moments: a change made in-process takes effect within ``reload_interval``.

A client on a URL (:meth:`FlagClient.from_url`) or on a checkout (:meth:`FlagClient.from_repo`)
has a poller instead: a daemon thread that looks at the source every ``poll_interval``
seconds (with jitter, and backing off exponentially while the source fails), builds the
new flags aside and swaps them in. The evaluation path then never does any I/O at all.
Every client can report ``staleness`` (seconds since its last successful look) and call
``on_change`` callbacks with the keys a reload changed.

Evaluations never raise: an unknown flag, a value of the wrong type or a broken context
gives the caller's default with reason ``ERROR`` and an error code.

Evaluation hooks (``on_evaluation``) see each evaluation an application makes: the flag key,
the context and the :class:`Resolution` (value, variant, reason). They are how an
application labels its own telemetry with the variant it served (``runner.telemetry``).
A client without hooks pays one test of an empty tuple for them.

The modules, one job each: ``client.py`` (:class:`FlagClient`: the public API, the hot
path, installing what a source hands over), ``sources.py`` (the file, URL and checkout
sources behind one interface), ``poller.py`` (the thread and schedule that look at a URL
or a checkout), ``hooks.py`` (the application's hooks and listeners, their failures
contained), ``changes.py`` (which keys a reload changed), ``default.py`` (the module-level
client and its ``ROLLOUT_*`` variables). All loggers are ``runner.sdk``.
"""

from __future__ import annotations

from runner.evaluate.artifact import MAX_ARTIFACT_BYTES
from runner.evaluate.compile import ArtifactError, FlagSet
from runner.evaluate.resolution import (
    DEFAULT,
    ERROR,
    FLAG_NOT_FOUND,
    GENERAL,
    PROVIDER_NOT_READY,
    TYPE_MISMATCH,
    Resolution,
)
from runner.sdk.changes import changed_keys
from runner.sdk.client import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RELOAD_INTERVAL,
    DEFAULT_TIMEOUT,
    FlagClient,
)
from runner.sdk.default import (
    FLAG_SET_VAR,
    FLAGS_FILE_VAR,
    FLAGS_TOKEN_VAR,
    FLAGS_URL_VAR,
    POLL_INTERVAL_VAR,
    RELOAD_INTERVAL_VAR,
    all_flags,
    default_client,
    evaluate,
    get_all_flags,
    is_enabled,
    set_default_client,
    value,
)
from runner.sdk.hooks import EvaluationHook
from runner.sdk.poller import JITTER, MAX_BACKOFF_INTERVALS
from runner.sdk.sources import FlagSourceError, load_artifact

__all__ = [
    "DEFAULT",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_RELOAD_INTERVAL",
    "DEFAULT_TIMEOUT",
    "ERROR",
    "FLAGS_FILE_VAR",
    "FLAGS_TOKEN_VAR",
    "FLAGS_URL_VAR",
    "FLAG_NOT_FOUND",
    "FLAG_SET_VAR",
    "GENERAL",
    "JITTER",
    "MAX_ARTIFACT_BYTES",
    "MAX_BACKOFF_INTERVALS",
    "POLL_INTERVAL_VAR",
    "PROVIDER_NOT_READY",
    "RELOAD_INTERVAL_VAR",
    "TYPE_MISMATCH",
    "ArtifactError",
    "EvaluationHook",
    "FlagClient",
    "FlagSet",
    "FlagSourceError",
    "Resolution",
    "all_flags",
    "changed_keys",
    "default_client",
    "evaluate",
    "get_all_flags",
    "is_enabled",
    "load_artifact",
    "set_default_client",
    "value",
]
