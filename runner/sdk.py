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
A client without hooks pays nothing for them: adding the first hook replaces the
evaluation methods on that one instance; removing the last restores the plain ones.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # imported when a URL is used: applications on a file never pay for HTTP
    from runner.remote import UrlSource

log = logging.getLogger("runner.sdk")

#: The artifact the module-level functions (``runner.is_enabled``...) read.
FLAGS_FILE_VAR = "ROLLOUT_FLAGS_FILE"
#: Seconds between two looks at the artifact file (``ROLLOUT_RELOAD_INTERVAL`` overrides).
RELOAD_INTERVAL_VAR = "ROLLOUT_RELOAD_INTERVAL"
DEFAULT_RELOAD_INTERVAL = 1.0
#: The artifact URL the module-level functions poll; wins over ``ROLLOUT_FLAGS_FILE``.
FLAGS_URL_VAR = "ROLLOUT_FLAGS_URL"
#: Seconds between two polls of ``ROLLOUT_FLAGS_URL`` (default 30).
POLL_INTERVAL_VAR = "ROLLOUT_POLL_INTERVAL"
#: The variable holding the bearer token the default client sends to ``ROLLOUT_FLAGS_URL``.
FLAGS_TOKEN_VAR = "ROLLOUT_FLAGS_TOKEN"
DEFAULT_POLL_INTERVAL = 30.0
DEFAULT_TIMEOUT = 10.0
#: Each wait between polls is the interval times a random factor in [1 - JITTER, 1]: a fleet
#: started at once does not poll in lockstep, and no wait is ever longer than the interval,
#: so a published change reaches every process within one poll interval.
JITTER = 0.15
#: While the source fails, the wait doubles, up to this many poll intervals.
MAX_BACKOFF_INTERVALS = 10

_EMPTY: Mapping[str, Any] = {}
_monotonic = time.monotonic

#: ``hook(key, context, resolution)``: called after each evaluation, on the caller's thread.
#: ``context`` is the one the caller passed (None when none was).
EvaluationHook = Callable[[str, Mapping[str, Any] | None, Resolution], None]
#: The evaluation methods an instance with hooks replaces (see ``FlagClient.on_evaluation``).
_HOOKED_METHODS = ("evaluate", "is_enabled")
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


# --- what a reload changed -----------------------------------------------------------------

def _plain(value: Any) -> Any:
    """A compiled object as comparable data: its slots, recursively; functions left out."""
    if isinstance(value, tuple | list):
        return tuple(_plain(v) for v in value)
    slots = getattr(type(value), "__slots__", None)
    if slots and not isinstance(value, str | bytes):
        return tuple((name, _plain(getattr(value, name, None))) for name in slots
                     if not name.startswith("_") and not callable(getattr(value, name, None)))
    return value


def changed_keys(old: FlagSet | None, new: FlagSet) -> frozenset[str]:
    """The keys whose evaluation may differ between ``old`` and ``new``: added, removed,
    changed (variants, targeting, split, rollout...), and the flags that require one of
    those, transitively. A change of the whole set (``emergency_shutdown``...) is every key."""
    if old is None:
        return frozenset(new.flags)
    if old.digest is not None and old.digest == new.digest:
        return frozenset()
    everything = frozenset(old.flags) | frozenset(new.flags)
    for name in FlagSet.__slots__:
        if name not in ("flags", "digest", "source_commit") and not name.startswith("_") \
                and _plain(getattr(old, name, None)) != _plain(getattr(new, name, None)):
            return everything
    changed = set(everything.symmetric_difference(old.flags.keys() & new.flags.keys()))
    for key in old.flags.keys() & new.flags.keys():
        if _plain(old.flags[key]) != _plain(new.flags[key]):
            changed.add(key)
    dependents: dict[str, list[str]] = {}
    for flags in (old.flags, new.flags):
        for key, f in flags.items():
            for required, _variant in f.requires:
                dependents.setdefault(required, []).append(key)
    todo = list(changed)
    while todo:
        for key in dependents.get(todo.pop(), ()):
            if key not in changed:
                changed.add(key)
                todo.append(key)
    return frozenset(changed)


# --- sources a poller reads ----------------------------------------------------------------

class SourceError(Exception):
    """A look at the source failed; the message is safe to log. ``new``: a different
    failure worth logging even within a failure streak (a repository's new bad state)."""

    def __init__(self, message: str, *, retry_after: float | None = None, new: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.new = new


class _UrlFeed:
    """An artifact URL: conditional GETs; a changed body is compiled and its digest checked."""

    backoff = True
    jitter = JITTER

    def __init__(self, source: UrlSource):
        self.http = source
        self.name = source.shown
        self._body_hash: bytes | None = None

    def poll(self) -> FlagSet | None:
        """New flags, or None when the artifact did not change; :class:`SourceError`."""
        from runner.remote import FetchError

        try:
            got = self.http.get()
        except FetchError as e:
            raise SourceError(str(e), retry_after=e.retry_after) from None
        if got is None:
            return None
        body, etag, last_modified = got
        digest = hashlib.sha256(body).digest()
        if digest == self._body_hash:  # the same bytes again (no validators, a re-upload)
            self.http.accept(etag, last_modified)
            return None
        try:
            flags = FlagSet.from_bytes(body, self.name)
        except ArtifactError as e:
            raise SourceError(str(e)) from None
        self._body_hash = digest
        self.http.accept(etag, last_modified)
        return flags


def _repo_signature(root: Path) -> tuple[Any, ...]:
    """What changes when a repository's flags may: pyproject.toml, and the names, inodes,
    sizes and modification times of the flags and rollouts folders' entries. A few stats."""
    from runner.load.layout import folders

    def sig(path: Path) -> tuple[int, int, int, int] | None:
        try:
            return _file_signature(path.stat())
        except OSError:
            return None

    out: list[Any] = [sig(root / "pyproject.toml")]
    for folder in dict.fromkeys(folders(root)):
        where = root / folder
        out.append((folder, sig(where)))
        try:
            with os.scandir(where) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    try:
                        out.append((entry.name, _file_signature(entry.stat())))
                    except OSError:
                        out.append((entry.name, None))
        except OSError:
            pass
    return tuple(out)


class _RepoFeed:
    """A GitOps checkout: reloaded (validated, resolved) when its files change."""

    backoff = False
    jitter = 0.0

    def __init__(self, root: Path, signature: tuple[Any, ...]):
        self.root = root
        self.name = str(root)
        self._signature: tuple[Any, ...] | None = signature
        self._refused: tuple[Any, ...] | None = None
        self._refusal = ""

    def poll(self) -> FlagSet | None:
        from runner.load import InvalidRepository, load_repository

        sig = _repo_signature(self.root)  # before reading: a change meanwhile is seen next time
        if sig == self._signature:
            return None
        if sig == self._refused:
            raise SourceError(self._refusal)
        try:
            flags = FlagSet.from_repository(load_repository(self.root))
        except InvalidRepository as e:
            self._refused, self._refusal = sig, f"{self.root}: not a valid repository: {e}"
            raise SourceError(self._refusal, new=True) from None
        except (OSError, ArtifactError) as e:
            self._refused, self._refusal = sig, f"{self.root}: cannot resolve: {e}"
            raise SourceError(self._refusal, new=True) from None
        self._signature = sig
        return flags


def _poller_loop(ref: weakref.ref[FlagClient], stop: threading.Event, delay: float) -> None:
    """The poller thread: holds the client only while polling, so a client nobody holds
    any more is collected and its thread ends at its next wake."""
    while not stop.wait(delay):
        client = ref()
        if client is None:
            return
        try:
            client._poll()
            delay = client._next_delay()
        except Exception:  # never let the poller die
            log.exception("unexpected error polling %s", client._name)
            delay = client._poll_interval
        finally:
            client._first_done.set()
        del client


class FlagClient:
    """Evaluates flags in-process from an artifact file or URL, or a checkout; reloaded when
    they change."""

    def __init__(self, flags: FlagSet | None = None, *, path: Path | str | None = None,
                 env: Mapping[str, str] | None = None,
                 reload_interval: float = DEFAULT_RELOAD_INTERVAL,
                 on_evaluation: EvaluationHook | Iterable[EvaluationHook] | None = None):
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
        self._name = str(self._path) if self._path is not None else "flags given in-process"
        # what a poller (from_url, from_repo) needs; idle for the other clients
        self._feed: _UrlFeed | _RepoFeed | None = None
        self._poll_interval = 0.0
        self._max_backoff = 0.0
        self._poll_lock = threading.Lock()  # one look at the source at a time
        self._stop = threading.Event()
        self._first_done = threading.Event()
        self._first_done.set()  # cleared by a poller that starts without flags
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._retry_after: float | None = None
        self._error: str | None = None
        self._last_ok = time.monotonic()
        self._listeners: list[Callable[[frozenset[str]], None]] = []
        self._check_listeners: list[Callable[[], None]] = []
        self._hooks: tuple[EvaluationHook, ...] = ()
        self._hooks_lock = threading.Lock()
        self._hook_errors = 0
        self._hooks_logged: set[int] = set()  # ids of the hooks whose failure was logged
        if on_evaluation is not None:
            for hook in (on_evaluation,) if callable(on_evaluation) else on_evaluation:
                self.on_evaluation(hook)

    # --- construction ------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: Path | str, *, env: Mapping[str, str] | None = None,
                  reload_interval: float = DEFAULT_RELOAD_INTERVAL,
                  wait: bool = True,
                  on_evaluation: EvaluationHook | Iterable[EvaluationHook] | None = None,
                  ) -> FlagClient:
        """A client on the artifact at ``path`` (``rollout build``'s output).

        ``env``: the environment to read the kill switch and overrides from (default: the
        process's, re-read at each reload check). ``wait=False`` gives a client that does
        not raise when the file is missing or bad: it serves callers' defaults (reason
        ``ERROR``, ``PROVIDER_NOT_READY``) until a good file appears.
        """
        client = cls(path=path, env=env, reload_interval=reload_interval,
                     on_evaluation=on_evaluation)
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
                  env: Mapping[str, str] | None = None,
                  reload_interval: float | None = DEFAULT_RELOAD_INTERVAL,
                  on_evaluation: EvaluationHook | Iterable[EvaluationHook] | None = None,
                  ) -> FlagClient:
        """A client on a GitOps checkout, resolved now, then hot-reloaded.

        Raises :class:`runner.load.InvalidRepository` when the repository is not valid.
        A poller thread looks every ``reload_interval`` seconds at the stats of
        ``pyproject.toml`` and the flags and rollouts folders' files (no reading), and
        loads and resolves the repository again only when one changed; an invalid new
        state is logged once and the last good flags stay. ``reload_interval=None``: no
        reload, no thread. :meth:`close` stops the poller.
        """
        from runner.load import load_repository

        root = Path(root)
        if reload_interval is not None and not 0 < reload_interval < math.inf:
            raise ValueError(f"reload_interval must be a positive number of seconds (or "
                             f"None: no reload), not {reload_interval!r}")
        signature = _repo_signature(root) if reload_interval is not None else ()
        client = cls(FlagSet.from_repository(load_repository(root)), env=env,
                     on_evaluation=on_evaluation)
        client._name = str(root)
        if reload_interval is not None:
            client._start_poller(_RepoFeed(root, signature), reload_interval,
                                 max_backoff=reload_interval, first_delay=reload_interval)
        return client

    @classmethod
    def from_url(cls, url: str, *, poll_interval: float = DEFAULT_POLL_INTERVAL,
                 timeout: float = DEFAULT_TIMEOUT, bearer_token_env: str | None = None,
                 env: Mapping[str, str] | None = None, wait: bool = True,
                 max_backoff: float | None = None,
                 on_evaluation: EvaluationHook | Iterable[EvaluationHook] | None = None,
                 ) -> FlagClient:
        """A client on the artifact served at ``url`` (``http://`` or ``https://``).

        A daemon thread fetches it at once, then every ``poll_interval`` seconds (± 15 %
        jitter) with ``If-None-Match`` / ``If-Modified-Since``: an unchanged artifact is a
        ``304``. While the source fails the wait doubles, up to ``max_backoff`` (default
        10 poll intervals); the last good flags stay. ``timeout``: of each request, and
        how long this call waits for the first fetch. It raises :class:`ArtifactError` when
        that fetch fails or does not finish in time (and stops the thread), unless
        ``wait=False``: then the client serves callers' defaults (reason ``ERROR``, code
        ``PROVIDER_NOT_READY``, :attr:`ready` False) and keeps polling until a good
        artifact arrives. ``bearer_token_env``: the name of the environment variable
        holding a bearer token (read at each request, sent only to the URL's origin,
        never logged). Call :meth:`close` (or use ``with``) to stop the poller.
        """
        from runner.remote import UrlSource

        if not 0 < poll_interval < math.inf:
            raise ValueError(f"poll_interval must be a positive number of seconds, not "
                             f"{poll_interval!r}")
        source = UrlSource(url, timeout=timeout, max_bytes=MAX_ARTIFACT_BYTES,
                           bearer_token_env=bearer_token_env)
        if source.plain_http_with_token:
            log.warning("%s: sending the bearer token over plain http", source.shown)
        client = cls(env=env, on_evaluation=on_evaluation)
        client._name = source.shown
        if max_backoff is None:
            max_backoff = poll_interval * MAX_BACKOFF_INTERVALS
        client._start_poller(_UrlFeed(source), poll_interval,
                             max_backoff=max(max_backoff, poll_interval), first_delay=0.0)
        client._first_done.wait(timeout + 1.0)
        if not client._ready and wait:
            error = client._error or f"{source.shown}: no answer within {timeout:g} s"
            client.close()
            raise ArtifactError(error)
        return client

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], *,
                      env: Mapping[str, str] | None = None,
                      on_evaluation: EvaluationHook | Iterable[EvaluationHook] | None = None,
                      ) -> FlagClient:
        return cls(FlagSet.from_document(doc), env=env, on_evaluation=on_evaluation)

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
            if sig == self._signature:
                self._last_ok = time.monotonic()
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

    def _install(self, flags: FlagSet, sig: tuple[int, int, int, int] | None) -> None:
        """Swap in new flags: one reference, so readers see old or new, never a mix. Then
        tell the ``on_change`` callbacks which keys changed (if any did)."""
        with self._swap_lock:
            old = self._snapshot.flags if self._ready else None
            self._signature, self._refused = sig, None
            self._snapshot = _Snapshot(flags, self._env_for(flags))
            self._last_ok = time.monotonic()
            was_ready, self._ready = self._ready, True
        if was_ready:
            log.info("reloaded %s (%s)", self._name, flags.digest)
        if self._listeners:
            changed = changed_keys(old, flags)
            if changed:
                self._tell(self._listeners, changed)

    def _tell(self, listeners: Iterable[Callable[..., None]], *args: Any) -> None:
        for callback in tuple(listeners):
            try:
                callback(*args)
            except Exception:  # a callback's bug must not stop reloads
                log.exception("callback %r raised; ignored", callback)

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
        if self._feed is not None:
            self._refresh_env()
            return self._poll()
        with self._reload_lock:
            self._next_check = time.monotonic() + self._interval
            if self._path is None:
                self._refresh_env()
                return False
            try:
                return self._load(force=False)
            except ArtifactError:
                return False

    # --- the poller (from_url, from_repo) ----------------------------------------------

    def _start_poller(self, feed: _UrlFeed | _RepoFeed, interval: float, *,
                      max_backoff: float, first_delay: float) -> None:
        self._feed = feed
        self._poll_interval = float(interval)
        self._max_backoff = float(max_backoff)
        if not self._ready:
            self._first_done.clear()
        self._thread = threading.Thread(
            target=_poller_loop, args=(weakref.ref(self), self._stop, first_delay),
            name=f"rollout-flags-poll {feed.name}", daemon=True)
        self._thread.start()

    def _poll(self) -> bool:
        """One look at the source; True when new flags were installed. Never raises."""
        feed = self._feed
        if feed is None:
            return False
        installed = False
        with self._poll_lock:
            try:
                flags = feed.poll()
            except SourceError as e:
                self._failed(str(e), e.retry_after, loud=e.new)
            except Exception as e:  # a bug, not the source: still never the caller's
                self._failed(f"{self._name}: unexpected {type(e).__name__}", None,
                             loud=False, exc_info=True)
            else:
                if self._failures:
                    log.warning("%s: back after %d failed look%s", self._name,
                                self._failures, "s" if self._failures > 1 else "")
                self._failures, self._error, self._retry_after = 0, None, None
                if flags is not None:
                    self._install(flags, None)
                    installed = True
                else:
                    self._last_ok = time.monotonic()
        self._tell(self._check_listeners)
        return installed

    def _failed(self, message: str, retry_after: float | None, *, loud: bool,
                exc_info: bool = False) -> None:
        """Keep the last good flags; log once per failure streak (and per new bad state)."""
        self._failures += 1
        self._error, self._retry_after = message, retry_after
        if self._failures == 1 or loud:
            if self._ready:
                log.error("%s; keeping the last good flags (%s)", message,
                          self._snapshot.flags.digest, exc_info=exc_info)
            else:
                log.error("%s; serving callers' defaults until a valid artifact arrives",
                          message, exc_info=exc_info)
        else:
            log.debug("%s (failed look %d)", message, self._failures)

    def _next_delay(self) -> float:
        """Seconds until the next look: the interval, doubled per failure up to the cap,
        no sooner than a ``Retry-After``; times the jitter."""
        feed = self._feed
        delay = self._poll_interval
        if self._failures and feed is not None and feed.backoff:
            delay = min(self._max_backoff, delay * 2.0 ** min(self._failures - 1, 32))
            if self._retry_after is not None:
                delay = max(delay, min(self._retry_after, self._max_backoff))
        jitter = feed.jitter if feed is not None else 0.0
        return delay * random.uniform(1.0 - jitter, 1.0) if jitter else delay

    def close(self) -> None:
        """Stop the poller (a client on a URL or a checkout) and wait for its thread; the
        flags loaded stay served. Idempotent; a client without a poller has nothing to stop."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            feed = self._feed
            timeout = feed.http.timeout if isinstance(feed, _UrlFeed) else 0.0
            thread.join(timeout + 5.0)
            if thread.is_alive():
                log.warning("%s: the poller did not stop within %g s (a request hanging)",
                            self._name, timeout + 5.0)

    def __enter__(self) -> FlagClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what applications watch -------------------------------------------------------

    def on_change(self, callback: Callable[[frozenset[str]], None]
                  ) -> Callable[[frozenset[str]], None]:
        """Call ``callback(keys)`` after each reload that changes something, with the keys
        added, removed or changed (and those requiring them). Called on the reloading
        thread (the poller); exceptions are logged, never stop reloads. Returns the
        callback (usable as a decorator)."""
        self._listeners.append(callback)
        return callback

    def _on_check(self, callback: Callable[[], None]) -> None:
        """``callback()`` after each look of a poller, good or bad (for the provider)."""
        self._check_listeners.append(callback)

    def on_evaluation(self, hook: EvaluationHook) -> EvaluationHook:
        """Call ``hook(key, context, resolution)`` after each :meth:`evaluate`,
        :meth:`value` and :meth:`is_enabled` (and each OpenFeature evaluation through
        :class:`runner.openfeature.RolloutProvider`), on the caller's thread, in the order
        the hooks were added. ``context`` is what the caller passed; ``resolution`` is
        what the caller gets (for ``is_enabled``, the evaluation whose value it tests).
        :meth:`all_flags` calls no hook: it serves every flag, not the one a request uses.

        A hook that raises never changes the evaluation: the first failure of each hook is
        logged with its traceback, later ones at debug level; :attr:`hook_errors` counts
        them all. Hooks run inline, so keep them cheap (a counter, an event). Returns the
        hook (usable as a decorator)."""
        if not callable(hook):
            raise TypeError(f"an evaluation hook must be callable, not {hook!r}")
        with self._hooks_lock:
            self._hooks = (*self._hooks, hook)
            # The plain methods check nothing: a client without hooks pays nothing. This
            # instance gets the hooked ones instead (instance attributes shadow the class's).
            self.__dict__.update(evaluate=self._hooked_evaluate,
                                 is_enabled=self._hooked_is_enabled)
        return hook

    def remove_evaluation_hook(self, hook: EvaluationHook) -> bool:
        """Stop calling ``hook`` (its first registration); False when it was not added.
        Without hooks left, the plain evaluation methods are back."""
        with self._hooks_lock:
            hooks = list(self._hooks)
            if hook not in hooks:
                return False
            hooks.remove(hook)
            self._hooks = tuple(hooks)
            if not hooks:
                for name in _HOOKED_METHODS:
                    self.__dict__.pop(name, None)
        return True

    @property
    def evaluation_hooks(self) -> tuple[EvaluationHook, ...]:
        """The hooks called after each evaluation, in order."""
        return self._hooks

    @property
    def hook_errors(self) -> int:
        """How many times an evaluation hook raised (each ignored; export it as a counter)."""
        return self._hook_errors

    def _run_hooks(self, key: str, context: Mapping[str, Any] | None, r: Resolution) -> None:
        for hook in self._hooks:
            try:
                hook(key, context, r)
            except Exception:  # a hook's bug must never reach the caller's evaluation
                self._hook_errors += 1
                first = id(hook) not in self._hooks_logged
                if first:
                    self._hooks_logged.add(id(hook))
                log.log(logging.ERROR if first else logging.DEBUG,
                        "evaluation hook %r raised on %r; ignored%s", hook, key,
                        "" if first else " (again)", exc_info=first)

    def _hooked_evaluate(self, key: str, context: Mapping[str, Any] | None = None,
                         default: Any = None) -> Resolution:
        r = FlagClient.evaluate(self, key, context, default)
        self._run_hooks(key, context, r)
        return r

    def _hooked_is_enabled(self, key: str, context: Mapping[str, Any] | None = None) -> bool:
        r = FlagClient.evaluate(self, key, context)
        self._run_hooks(key, context, r)
        return r.value is True

    @property
    def ready(self) -> bool:
        """True once flags were loaded (always, for a client that did not raise at creation,
        except ``wait=False`` ones still waiting for a good artifact)."""
        return self._ready

    @property
    def staleness(self) -> float:
        """Seconds since the last successful look at the source (a ``304`` is one): export
        it as a gauge. 0 for a client on flags given in-process. A client on a file looks
        only when evaluations come, at most every ``reload_interval``."""
        if self._feed is None and self._path is None:
            return 0.0
        return max(0.0, time.monotonic() - self._last_ok)

    @property
    def source(self) -> str:
        """Where the flags come from, as messages name it (a URL without its query)."""
        return self._name

    @property
    def last_error(self) -> str | None:
        """Why the last look at a poller's source failed; None when it succeeded."""
        return self._error

    @property
    def poll_interval(self) -> float | None:
        """Seconds between a poller's looks; None for a client without one."""
        return self._poll_interval if self._feed is not None else None

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the first look of a poller is done (at most ``timeout`` seconds);
        returns :attr:`ready`."""
        self._first_done.wait(timeout)
        return self._ready

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
                              f"no valid artifact loaded from {self._name}")
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

    def flag_variants(self, key: str) -> tuple[str, ...] | None:
        """The names of the flag's variants, sorted; None for an unknown key."""
        try:
            f = self._current().flags.flags.get(key)
        except Exception:  # an unhashable key, or one whose hash raises
            return None
        return tuple(sorted(f.variants)) if f is not None else None


# --- the module-level default client -------------------------------------------------------

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
    if url:
        if path:
            log.warning("both %s and %s are set: reading %s, ignoring %s", FLAGS_URL_VAR,
                        FLAGS_FILE_VAR, FLAGS_URL_VAR, FLAGS_FILE_VAR)
        interval = _seconds_var(POLL_INTERVAL_VAR, DEFAULT_POLL_INTERVAL, positive=True)
        token_env = FLAGS_TOKEN_VAR if os.environ.get(FLAGS_TOKEN_VAR) else None
        try:
            return FlagClient.from_url(url, poll_interval=interval, wait=False,
                                       bearer_token_env=token_env)
        except ValueError as e:  # not an http(s) URL
            log.error("%s: %s; every flag evaluates to the caller's default", FLAGS_URL_VAR, e)
            return FlagClient(None)
    if not path:
        log.warning("neither %s nor %s is set: every flag evaluates to the caller's default",
                    FLAGS_URL_VAR, FLAGS_FILE_VAR)
        return FlagClient(None)
    interval = _seconds_var(RELOAD_INTERVAL_VAR, DEFAULT_RELOAD_INTERVAL, positive=False)
    return FlagClient.from_file(path, reload_interval=interval, wait=False)


def default_client() -> FlagClient:
    """The client the module-level functions use, made once: on ``$ROLLOUT_FLAGS_URL``
    (polled every ``$ROLLOUT_POLL_INTERVAL`` seconds, bearer token ``$ROLLOUT_FLAGS_TOKEN``
    when set), else on ``$ROLLOUT_FLAGS_FILE``. Both set: the URL wins, with a warning.

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

__all__ = [
    "DEFAULT",
    "FLAGS_FILE_VAR",
    "FLAGS_URL_VAR",
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
