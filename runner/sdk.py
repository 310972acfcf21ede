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

Evaluations never raise: an unknown flag, a value of the wrong type or a broken context
gives the caller's default with reason ``ERROR`` and an error code.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.evaluate.artifact import MAX_ARTIFACT_BYTES
from runner.evaluate.compile import ArtifactError, FlagSet
from runner.evaluate.environment import EnvState, env_state
from runner.evaluate.resolution import (
    DEFAULT,
    ERROR,
    FLAG_NOT_FOUND,
    GENERAL,
    PROVIDER_NOT_READY,
    TYPE_MISMATCH,
    Resolution,
)
from runner.evaluate.resolver import (
    as_context,
    evaluate_compiled,
    matches_type,
    targeting_key_of,
    type_mismatch,
)
from runner.files import read_regular

log = logging.getLogger("runner.sdk")

#: The artifact the module-level functions (``runner.is_enabled``...) read.
FLAGS_FILE_VAR = "ROLLOUT_FLAGS_FILE"
#: Seconds between two looks at the artifact file (``ROLLOUT_RELOAD_INTERVAL`` overrides).
RELOAD_INTERVAL_VAR = "ROLLOUT_RELOAD_INTERVAL"
DEFAULT_RELOAD_INTERVAL = 1.0

_EMPTY: Mapping[str, Any] = {}
_monotonic = time.monotonic
_EMPTY_FLAGS = FlagSet({}, emergency_shutdown=False, digest=None, source_commit=None)


class _Snapshot:
    """What one evaluation reads: flags and environment, swapped together."""

    __slots__ = ("env", "flags", "outcomes")

    def __init__(self, flags: FlagSet, env: EnvState):
        self.flags = flags
        self.env = env
        self.outcomes = env.outcomes


def _file_signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def load_artifact(path: Path) -> FlagSet:
    """Read and compile an artifact file; :class:`ArtifactError` when it is not usable:
    also when it is not a regular file (a folder, a FIFO, a device: never read, so never a
    hang) or larger than :data:`MAX_ARTIFACT_BYTES`."""
    try:
        data = read_regular(path, MAX_ARTIFACT_BYTES)
    except OSError as e:
        raise ArtifactError(f"{path}: cannot read: {e.strerror or e}") from e
    if len(data) > MAX_ARTIFACT_BYTES:
        raise ArtifactError(f"{path}: larger than {MAX_ARTIFACT_BYTES // (1024 * 1024)} MiB, "
                            "the most an artifact may be; not a rollout artifact?")
    return FlagSet.from_bytes(data, str(path))


class FlagClient:
    """Evaluates flags in-process from an artifact file (reloaded when it changes) or a checkout."""

    def __init__(self, flags: FlagSet | None = None, *, path: Path | str | None = None,
                 env: Mapping[str, str] | None = None,
                 reload_interval: float = DEFAULT_RELOAD_INTERVAL):
        self._path = Path(path) if path is not None else None
        self._fixed_env = env
        self._interval = reload_interval
        self._reload_lock = threading.Lock()  # one look at the file at a time
        self._swap_lock = threading.Lock()  # one writer of the snapshot at a time
        self._signature: tuple[int, int, int, int] | None = None
        self._refused: tuple[int, int, int, int] | None = None
        self._missing_logged = False
        self._loading = False
        self._snapshot = _Snapshot(_EMPTY_FLAGS, EnvState(False, {}))
        self._ready = flags is not None
        if flags is not None:
            self._snapshot = _Snapshot(flags, self._env_for(flags))
        self._next_check = time.monotonic() + reload_interval

    # --- construction ------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: Path | str, *, env: Mapping[str, str] | None = None,
                  reload_interval: float = DEFAULT_RELOAD_INTERVAL,
                  wait: bool = True) -> FlagClient:
        """A client on the artifact at ``path`` (``rollout build``'s output).

        ``env``: the environment to read the kill switch and overrides from (default: the
        process's, re-read at each reload check). ``wait=False`` gives a client that does
        not raise when the file is missing or bad: it serves callers' defaults (reason
        ``ERROR``, ``PROVIDER_NOT_READY``) until a good file appears.
        """
        client = cls(path=path, env=env, reload_interval=reload_interval)
        try:
            client._load(force=True)
        except ArtifactError as e:
            if wait:
                raise
            log.warning("%s; serving defaults until a valid artifact appears", e)
            client._missing_logged = True
        return client

    @classmethod
    def from_repo(cls, root: Path | str = ".", *,
                  env: Mapping[str, str] | None = None) -> FlagClient:
        """A client on a GitOps checkout, resolved now (no reload; see :meth:`reload`).

        Raises :class:`runner.load.InvalidRepository` when the repository is not valid.
        """
        from runner.load import load_repository

        return cls(FlagSet.from_repository(load_repository(root)), env=env)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], *,
                      env: Mapping[str, str] | None = None) -> FlagClient:
        return cls(FlagSet.from_document(doc), env=env)

    # --- reload ------------------------------------------------------------------------

    def _env_for(self, flags: FlagSet) -> EnvState:
        return env_state(flags, os.environ if self._fixed_env is None else self._fixed_env)

    def _check(self) -> None:
        """Called at most about once per interval from the evaluation path; never raises."""
        if not self._reload_lock.acquire(blocking=False):
            return  # another thread is on it; serve what we have
        try:
            self._next_check = time.monotonic() + self._interval
            if self._path is None:
                self._refresh_env()
                return
            try:
                sig = self._changed_signature()
                if sig is not None and not self._loading:
                    # Reading and compiling a large artifact takes a while (about 0.7 s
                    # for 10,000 flags): never on the caller's time. A thread builds the
                    # new flags aside; evaluations go on with the current ones meanwhile.
                    self._loading = True
                    threading.Thread(target=self._load_in_background, args=(sig,),
                                     name="rollout-flags-reload", daemon=True).start()
            except Exception:  # never let a reload failure reach an evaluation
                self._loading = False
                log.exception("unexpected error checking %s; keeping the last good flags",
                              self._path)
        finally:
            self._reload_lock.release()

    def _changed_signature(self) -> tuple[int, int, int, int] | None:
        """The file's signature when it changed since the last load (or refusal); else None.

        Refreshes the environment when nothing is to be loaded.
        """
        assert self._path is not None
        try:
            sig = _file_signature(self._path.stat())
        except OSError as e:
            if not self._missing_logged:
                self._missing_logged = True
                log.warning("%s: %s; keeping the last good flags", self._path,
                            e.strerror or e)
            self._refresh_env()
            return None
        self._missing_logged = False
        if sig == self._signature or sig == self._refused:
            self._refresh_env()
            return None
        return sig

    def _load_in_background(self, sig: tuple[int, int, int, int]) -> None:
        assert self._path is not None
        try:
            try:
                flags = load_artifact(self._path)
            except ArtifactError as e:
                self._refuse(sig, e)
                return
            except Exception:
                log.exception("unexpected error reloading %s; keeping the last good flags",
                              self._path)
                return
            self._install(flags, sig)
        finally:
            self._loading = False

    def _install(self, flags: FlagSet, sig: tuple[int, int, int, int]) -> None:
        """Swap in new flags: one reference, so readers see old or new, never a mix."""
        with self._swap_lock:
            self._signature, self._refused = sig, None
            self._snapshot = _Snapshot(flags, self._env_for(flags))
        if self._ready:
            log.info("reloaded %s (%s)", self._path, flags.digest)
        self._ready = True

    def _load(self, *, force: bool) -> bool:
        """Load now, in this thread (first load, :meth:`reload`). True when flags changed."""
        assert self._path is not None
        if force:
            try:
                sig = _file_signature(self._path.stat())
            except OSError as e:
                raise ArtifactError(f"{self._path}: cannot read: {e.strerror or e}") from e
        else:
            found = self._changed_signature()
            if found is None:
                return False
            sig = found
        try:
            flags = load_artifact(self._path)
        except ArtifactError as e:
            if force:
                raise
            self._refuse(sig, e)
            return False
        self._install(flags, sig)
        return True

    def _refuse(self, sig: tuple[int, int, int, int], error: ArtifactError) -> None:
        """Keep the last good flags; say so once per bad file, not once per look."""
        if sig != self._refused:
            self._refused = sig
            log.error("%s; keeping the last good flags%s", error,
                      f" ({self._snapshot.flags.digest})" if self._ready else "")

    def _refresh_env(self) -> None:
        # under the swap lock: a reload finishing meanwhile must not be undone
        with self._swap_lock:
            snap = self._snapshot
            env = self._env_for(snap.flags)
            if env != snap.env:
                self._snapshot = _Snapshot(snap.flags, env)

    def reload(self) -> bool:
        """Look at the file now (not waiting for the interval); re-read the environment.

        Returns True when new flags were installed. Never raises: a bad file is logged and
        the last good flags stay.
        """
        with self._reload_lock:
            self._next_check = time.monotonic() + self._interval
            if self._path is None:
                self._refresh_env()
                return False
            try:
                return self._load(force=False)
            except ArtifactError:
                return False

    # --- evaluation --------------------------------------------------------------------

    def _current(self) -> _Snapshot:
        if _monotonic() >= self._next_check:
            self._check()
        return self._snapshot

    def is_enabled(self, key: str, context: Mapping[str, Any] | None = None) -> bool:
        """True when the flag serves ``True`` for this context; False for unknown flags too."""
        if _monotonic() >= self._next_check:
            self._check()
        snap = self._snapshot
        try:  # free when nothing raises; anything odd goes the careful way
            f = snap.flags.flags.get(key)
            if f is None:
                return False
            if context is None:
                context = _EMPTY
            tk = context.get("targetingKey")
            if tk is None:
                tk = context.get("targeting_key")
            return f.resolve(context, tk, snap.outcomes)[0] is True  # .value
        except Exception:
            return evaluate_compiled(snap.flags, key, context, snap.env).value is True

    def value(self, key: str, context: Mapping[str, Any] | None = None,
              default: Any = None) -> Any:
        """The flag's value for this context; ``default`` when unknown or of another type."""
        return self.evaluate(key, context, default).value

    def evaluate(self, key: str, context: Mapping[str, Any] | None = None,
                 default: Any = None) -> Resolution:
        """Value, variant, reason (and error code, details) of one evaluation."""
        if _monotonic() >= self._next_check:
            self._check()
        snap = self._snapshot
        # evaluate_compiled, inlined: this is the call applications make most. The try is
        # free when nothing raises; the uncommon cases (an unknown or unhashable key, no
        # context, a context that raises) go the careful way, which never raises.
        try:
            f = snap.flags.flags.get(key)
            if f is not None and context is not None:
                tk = context.get("targetingKey")
                if tk is None:
                    tk = context.get("targeting_key")
                r = f.resolve(context, tk, snap.outcomes)
                if default is not None and not matches_type(r[0], default):
                    return type_mismatch(f, default)
                return r
        except Exception:
            pass
        if not self._ready:
            return Resolution(default, None, ERROR, PROVIDER_NOT_READY,
                              f"no valid artifact loaded from {self._path}")
        return evaluate_compiled(snap.flags, key, context, snap.env, default)

    def all_flags(self, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every flag's value for this context (the reference's ``get_all_flags``).

        Never raises: a flag whose evaluation fails (reason ``ERROR`` from
        :meth:`evaluate`) is ``None``, the default when none is given; a context that is
        not a mapping, or whose methods raise, makes every flag ``None``."""
        snap = self._current()
        ctx = context if context is not None else _EMPTY
        try:
            tk = targeting_key_of(ctx)
        except Exception:  # checked only on failure: no cost to the common case
            try:
                ctx = as_context(ctx)  # an OpenFeature EvaluationContext, or TypeError
                tk = targeting_key_of(ctx)
            except Exception:
                return dict.fromkeys(snap.flags.flags)
        out = {}
        outcomes = snap.outcomes
        for key, f in snap.flags.flags.items():
            try:
                out[key] = f.resolve(ctx, tk, outcomes)[0]
            except Exception:
                out[key] = None
        return out

    get_all_flags = all_flags

    @property
    def digest(self) -> str | None:
        """The content digest of the flags being served (None before any were loaded)."""
        return self._snapshot.flags.digest if self._ready else None

    @property
    def source_commit(self) -> str | None:
        return self._snapshot.flags.source_commit

    def flag_keys(self) -> list[str]:
        """The keys of every flag being served, sorted."""
        return sorted(self._current().flags.flags)

    def flag_type(self, key: str) -> str | None:
        """The flag's type (``boolean``, ``string``...), None for an unknown key."""
        try:
            f = self._current().flags.flags.get(key)
        except Exception:  # an unhashable key, or one whose hash raises
            return None
        return f.type if f is not None else None


# --- the module-level default client -------------------------------------------------------

_default: FlagClient | None = None
_default_lock = threading.Lock()


def default_client() -> FlagClient:
    """The client the module-level functions use: on ``$ROLLOUT_FLAGS_FILE``, made once.

    Never raises: without the variable, or with a missing or bad file, it serves callers'
    defaults (reason ``ERROR``) and keeps looking for the file.
    """
    global _default
    client = _default
    if client is not None:
        return client
    with _default_lock:
        if _default is None:
            path = os.environ.get(FLAGS_FILE_VAR, "")
            try:
                interval = float(os.environ.get(RELOAD_INTERVAL_VAR, DEFAULT_RELOAD_INTERVAL))
            except ValueError:
                interval = DEFAULT_RELOAD_INTERVAL
            if not 0 <= interval < 1e9:  # nan, inf (never reloading), negative
                log.warning("%s=%r is not a number of seconds; using %s",
                            RELOAD_INTERVAL_VAR, os.environ.get(RELOAD_INTERVAL_VAR),
                            DEFAULT_RELOAD_INTERVAL)
                interval = DEFAULT_RELOAD_INTERVAL
            if not path:
                log.warning("%s is not set: every flag evaluates to the caller's default",
                            FLAGS_FILE_VAR)
                _default = FlagClient(None)
            else:
                _default = FlagClient.from_file(path, reload_interval=interval, wait=False)
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

__all__ = [
    "DEFAULT",
    "FLAGS_FILE_VAR",
    "FLAG_NOT_FOUND",
    "GENERAL",
    "TYPE_MISMATCH",
    "ArtifactError",
    "FlagClient",
    "Resolution",
    "all_flags",
    "default_client",
    "evaluate",
    "get_all_flags",
    "is_enabled",
    "set_default_client",
    "value",
]
