"""The client applications hold: :class:`FlagClient`, its public API and the hot path.

A client serves a snapshot (the compiled flags and the parsed environment, swapped as one
reference, so threads evaluating during a reload see the old or the new, never a mix) and
installs what its source (``sources.py``) hands it: on the evaluation path for a file (at
most once per ``reload_interval`` a stat; a changed file is read on another thread), or
from a poller (``poller.py``) for a URL or a checkout. It calls the application's hooks
and listeners (``hooks.py``) with what it served and what a reload changed
(``changes.py``).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from runner.evaluate.compile import ArtifactError, FlagSet
from runner.evaluate.environment import EnvState, env_state
from runner.evaluate.resolution import ERROR, PROVIDER_NOT_READY, Resolution
from runner.evaluate.resolver import (
    as_context,
    evaluate_compiled,
    matches_type,
    targeting_key_of,
    type_mismatch,
)
from runner.sdk.changes import changed_keys
from runner.sdk.hooks import EvaluationHook, EvaluationHooks, call_each
from runner.sdk.poller import JITTER, MAX_BACKOFF_INTERVALS, Poller, Schedule
from runner.sdk.sources import (
    FileSource,
    FlagSource,
    FlagSourceError,
    HttpSource,
    RepoSource,
    environment_file,
    environment_url,
    load_checkout,
    repo_signature,
    set_file,
    set_url,
)
from runner.signing import public_keys as signing_keys

log = logging.getLogger("runner.sdk")

#: Seconds between two looks at an artifact file.
DEFAULT_RELOAD_INTERVAL = 1.0
#: Seconds between two polls of an artifact URL.
DEFAULT_POLL_INTERVAL = 30.0
DEFAULT_TIMEOUT = 10.0

_EMPTY: Mapping[str, Any] = {}
_monotonic = time.monotonic
_EMPTY_FLAGS = FlagSet({}, emergency_shutdown=False, digest=None, source_commit=None)


def generation_refusal(serving: FlagSet, new: FlagSet) -> str | None:
    """Why ``new`` must not replace ``serving`` (one line naming both generations), or None.

    Publications only move forward: a lower generation than the one served is a stale copy
    or a replay (a CDN edge, an attacker) and would undo what came after it, a rollback
    included; the same generation with other content is not the publication served; and
    once a generation was served, an artifact without one (``rollout build``, 0.2) cannot
    say where it stands. An artifact without one is fine while none was served (a
    checkout, an unpublished build)."""
    served, got = serving.generation, new.generation
    if served is None:
        return None
    keeping = (f"refused, keeping generation {served} (allow_generation_reset=True accepts a "
               "rebuilt history)")
    if got is None:
        return (f"an artifact without a generation (built by `rollout build`, or 0.2) while "
                f"generation {served} is served; {keeping}")
    if got < served:
        return (f"generation {got} is older than generation {served} being served (a stale "
                f"copy or a replay of an earlier publication); {keeping}")
    if got == served and new.digest != serving.digest:
        return (f"generation {got} again, with other content ({new.digest}) than generation "
                f"{served} being served ({serving.digest}); {keeping}")
    return None


def _admitting(client: FlagClient) -> Callable[[FlagSet], None]:
    """``client._admit`` for its source, holding the client weakly: a poller's thread holds
    the source, and must not keep a client nobody references any more alive."""
    ref = weakref.ref(client)

    def admit(flags: FlagSet) -> None:
        target = ref()
        if target is not None:
            target._admit(flags)
    return admit


class _Snapshot:
    """What one evaluation reads: flags and environment, swapped together."""

    __slots__ = ("env", "flags", "outcomes")

    def __init__(self, flags: FlagSet, env: EnvState):
        self.flags = flags
        self.env = env
        self.outcomes = env.outcomes


class FlagClient:
    """Evaluates flags in-process from an artifact file or URL, or a checkout; reloaded when
    they change."""

    def __init__(self, flags: FlagSet | None = None, *, path: Path | str | None = None,
                 env: Mapping[str, str] | None = None,
                 reload_interval: float = DEFAULT_RELOAD_INTERVAL,
                 on_evaluation: EvaluationHook | Iterable[EvaluationHook] | None = None,
                 allow_generation_reset: bool = False):
        #: True: accept an artifact of any generation (a deliberately rebuilt history);
        #: False: refuse one older than the flags served (:func:`generation_refusal`).
        self.allow_generation_reset = allow_generation_reset
        #: The declared environment whose artifact this client serves (``environment=``):
        #: an artifact of another environment, or of none, is refused. None: any artifact.
        self.environment: str | None = None
        #: The artifact file looked at from the evaluation path (None: no file).
        self._file = FileSource(Path(path)) if path is not None else None
        if self._file is not None:
            self._file.admit = _admitting(self)
        self._file_error: str | None = None  # why the last look at the file failed
        self._fixed_env = env
        self._interval = reload_interval
        self._reload_lock = threading.Lock()  # one look at the file at a time
        self._swap_lock = threading.Lock()  # one writer of the snapshot at a time
        self._loading = False  # a thread is reading a changed file
        self._snapshot = _Snapshot(_EMPTY_FLAGS, EnvState(False, {}))
        self._ready = flags is not None
        if flags is not None:
            self._snapshot = _Snapshot(flags, self._env_for(flags))
        self._next_check = time.monotonic() + reload_interval
        self._name = self._file.name if self._file is not None else "flags given in-process"
        self._poller: Poller | None = None  # a client on a URL or a checkout
        self._last_ok = time.monotonic()
        self._listeners: list[Callable[[frozenset[str]], None]] = []
        self._check_listeners: list[Callable[[], None]] = []
        self._hooks = EvaluationHooks()
        if on_evaluation is not None:
            for hook in (on_evaluation,) if callable(on_evaluation) else on_evaluation:
                self.on_evaluation(hook)

    # --- construction ------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: Path | str, *, env: Mapping[str, str] | None = None,
                  reload_interval: float = DEFAULT_RELOAD_INTERVAL,
                  wait: bool = True,
                  on_evaluation: EvaluationHook | Iterable[EvaluationHook] | None = None,
                  allow_generation_reset: bool = False,
                  public_key: str | Sequence[str] | None = None,
                  set: str | None = None,
                  environment: str | None = None,
                  ) -> FlagClient:
        """A client on the artifact at ``path`` (``rollout build``'s output).

        ``environment``: read that environment's publication (a repository that declares
        ``[tool.rollout.environments]``): ``{environment}`` in ``path`` replaced by the name,
        else ``NAME/flags.json`` in the folder ``path`` is or holds; an artifact made for
        another environment (or for none) is refused like a bad one. ``ValueError`` for a
        name no environment can have.

        ``set``: read flag set ``set`` of the publication whose ``flags.json`` (or folder)
        ``path`` is: ``sets/NAME/flags.json`` beside it (``[tool.rollout.publish.sets]``),
        with its own signature beside it. ``ValueError`` for a name no set can have.

        ``env``: the environment to read the kill switch and overrides from (default: the
        process's, re-read at each reload check). ``wait=False`` gives a client that does
        not raise when the file is missing or bad: it serves callers' defaults (reason
        ``ERROR``, ``PROVIDER_NOT_READY``) until a good file appears. A new file of a
        lower generation than the one served (or the same with other content, or none)
        is refused like a bad file, unless ``allow_generation_reset``.

        ``public_key``: a public key (base64, ``rollout keygen``'s ``public:``), or a list
        of them (a rotation: any of them). Then only an artifact signed by one of them is
        loaded: the signature beside it (``flags.sig`` beside ``flags.json``, else
        ``NAME.sig``) must sign its exact bytes; a missing or bad one is refused like a
        bad artifact. ``ValueError`` when a key is not one.
        """
        keys = signing_keys(public_key)
        if environment is not None:
            path = environment_file(Path(path), environment)
        if set is not None:
            path = set_file(Path(path), set)
        client = cls(path=path, env=env, reload_interval=reload_interval,
                     on_evaluation=on_evaluation, allow_generation_reset=allow_generation_reset)
        client.environment = environment
        if keys:  # the one file source, verifying; the ordering rule kept
            client._file = FileSource(Path(path), keys)
            client._file.admit = _admitting(client)
        assert client._file is not None
        try:
            first = client._file.load_first()
            client._admit(first)
            client._install(first)
        except ArtifactError as e:
            if wait:
                raise
            log.warning("%s; serving defaults until a valid artifact appears", e)
        return client

    @classmethod
    def from_repo(cls, root: Path | str = ".", *,
                  env: Mapping[str, str] | None = None,
                  reload_interval: float | None = DEFAULT_RELOAD_INTERVAL,
                  on_evaluation: EvaluationHook | Iterable[EvaluationHook] | None = None,
                  allow_generation_reset: bool = False,
                  ) -> FlagClient:
        """A client on a GitOps checkout, resolved now, then hot-reloaded.

        Raises :class:`runner.load.InvalidRepository` when the repository is not valid.
        A poller thread looks every ``reload_interval`` seconds at the stats of
        ``pyproject.toml`` and the flags and rollouts folders' files (no reading), and
        loads and resolves the repository again only when one changed; an invalid new
        state is logged once and the last good flags stay. ``reload_interval=None``: no
        reload, no thread. :meth:`close` stops the poller. A checkout is no publication: its
        flags have no generation, so the ordering rule never refuses them
        (``allow_generation_reset`` is accepted for symmetry).
        """
        root = Path(root)
        if reload_interval is not None and not 0 < reload_interval < math.inf:
            raise ValueError(f"reload_interval must be a positive number of seconds (or "
                             f"None: no reload), not {reload_interval!r}")
        signature = repo_signature(root) if reload_interval is not None else ()
        client = cls(load_checkout(root), env=env, on_evaluation=on_evaluation,
                     allow_generation_reset=allow_generation_reset)
        client._name = str(root)
        if reload_interval is not None:
            client._start_poller(RepoSource(root, signature),
                                 Schedule(float(reload_interval), float(reload_interval)),
                                 first_delay=reload_interval)
        return client

    @classmethod
    def from_url(cls, url: str, *, poll_interval: float = DEFAULT_POLL_INTERVAL,
                 timeout: float = DEFAULT_TIMEOUT, bearer_token_env: str | None = None,
                 env: Mapping[str, str] | None = None, wait: bool = True,
                 max_backoff: float | None = None,
                 on_evaluation: EvaluationHook | Iterable[EvaluationHook] | None = None,
                 allow_generation_reset: bool = False,
                 public_key: str | Sequence[str] | None = None,
                 set: str | None = None,
                 environment: str | None = None,
                 ) -> FlagClient:
        """A client on the artifact served at ``url`` (``http://`` or ``https://``).

        ``environment``: read that environment's publication: ``{environment}`` in ``url``
        replaced by the name, else ``NAME/flags.json`` beside the ``flags.json`` ``url``
        names (or in the folder a URL ending in ``/`` names); an artifact made for another
        environment (or for none) is refused like a bad one. With ``set``, the set of that
        environment's publication. ``ValueError`` for a name no environment can have.

        ``set``: read flag set ``set`` of the publication ``url`` serves (the URL of its
        ``flags.json``, or of its folder ending in ``/``): ``sets/NAME/flags.json`` there,
        only the flags of that set and their prerequisites (``[tool.rollout.publish.sets]``),
        its signature ``sets/NAME/flags.sig``. ``ValueError`` for a name no set can have.

        A daemon thread fetches it at once, then every ``poll_interval`` seconds (± 15 %
        jitter) with ``If-None-Match`` / ``If-Modified-Since``: an unchanged artifact is a
        ``304``. While the source fails the wait doubles, up to ``max_backoff`` (default
        10 poll intervals); the last good flags stay. An artifact of a lower generation
        than the one served (a stale edge, a replay), or the same generation with other
        content, or none once one was served, is such a failure unless
        ``allow_generation_reset``. ``timeout``: of each whole request (connecting, the
        headers and the body), and how long this call waits for the first fetch. It raises
        :class:`ArtifactError` when that fetch fails or does not finish in time (and stops
        the thread), unless ``wait=False``: then the client serves callers' defaults
        (reason ``ERROR``, code ``PROVIDER_NOT_READY``, :attr:`ready` False) and keeps
        polling until a good artifact arrives. ``bearer_token_env``: the name of the environment variable
        holding a bearer token (read at each request, sent only to the URL's origin,
        never logged). Call :meth:`close` (or use ``with``) to stop the poller.
        ``public_key``: a public key or a list of them, as :meth:`from_file`: each new
        artifact is loaded only when ``flags.sig`` beside it (the URL's last path segment
        replaced) signs its exact bytes; a ``304`` needs no new signature.
        """
        if not 0 < poll_interval < math.inf:
            raise ValueError(f"poll_interval must be a positive number of seconds, not "
                             f"{poll_interval!r}")
        if environment is not None:
            url = environment_url(url, environment)
        if set is not None:
            url = set_url(url, set)
        source = HttpSource.open(url, timeout=timeout, bearer_token_env=bearer_token_env,
                                 public_keys=signing_keys(public_key))
        if source.http.plain_http_with_token:
            log.warning("%s: sending the bearer token over plain http", source.name)
        client = cls(env=env, on_evaluation=on_evaluation,
                     allow_generation_reset=allow_generation_reset)
        client.environment = environment
        client._name = source.name
        source.admit = _admitting(client)
        if max_backoff is None:
            max_backoff = poll_interval * MAX_BACKOFF_INTERVALS
        schedule = Schedule(float(poll_interval), float(max(max_backoff, poll_interval)),
                            backoff=True, jitter=JITTER)
        poller = client._start_poller(source, schedule, first_delay=0.0,
                                      look_timeout=source.timeout)
        poller.first_done.wait(timeout + 1.0)
        if not client._ready and wait:
            error = poller.error or f"{source.name}: no answer within {timeout:g} s"
            client.close()
            raise ArtifactError(error)
        return client

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], *,
                      env: Mapping[str, str] | None = None,
                      on_evaluation: EvaluationHook | Iterable[EvaluationHook] | None = None,
                      ) -> FlagClient:
        return cls(FlagSet.from_document(doc), env=env, on_evaluation=on_evaluation)

    def _start_poller(self, source: FlagSource, schedule: Schedule, *, first_delay: float,
                      look_timeout: float = 0.0) -> Poller:
        self._poller = Poller(self, source, schedule, look_timeout=look_timeout)
        self._poller.start(first_delay)
        return self._poller

    # --- installing what a source hands over -------------------------------------------

    def _env_for(self, flags: FlagSet) -> EnvState:
        return env_state(flags, os.environ if self._fixed_env is None else self._fixed_env)

    def _admit(self, flags: FlagSet) -> None:
        """Called by the source with each new artifact before it hands it over: raises
        :class:`ArtifactError` (the source refuses it as a bad artifact, so it is neither
        installed nor remembered as unchanged) when it would move the flags served back, or
        when it was made for another environment than the client's."""
        if self.environment is not None and flags.environment != self.environment:
            made = (f"environment {flags.environment!r}" if flags.environment is not None
                    else "a repository without environments")
            raise ArtifactError(f"{self._name}: an artifact made for {made}, not for "
                                f"{self.environment!r} as this client is; refused")
        if self.allow_generation_reset or not self._ready:
            return
        refusal = generation_refusal(self._snapshot.flags, flags)
        if refusal is not None:
            raise ArtifactError(f"{self._name}: {refusal}")

    def _install(self, flags: FlagSet) -> None:
        """Swap in new flags: one reference, so readers see old or new, never a mix. Then
        tell the ``on_change`` callbacks which keys changed (if any did)."""
        with self._swap_lock:
            old = self._snapshot.flags if self._ready else None
            self._snapshot = _Snapshot(flags, self._env_for(flags))
            self._last_ok = time.monotonic()
            self._file_error = None
            was_ready, self._ready = self._ready, True
        if was_ready:
            log.info("reloaded %s (%s)", self._name, flags.digest)
        if self._listeners:
            changed = changed_keys(old, flags)
            if changed:
                call_each(self._listeners, changed)

    def _took(self, flags: FlagSet | None) -> bool:
        """A good look at the source: install its new flags (True), or note that it was
        looked at (None: nothing changed)."""
        if flags is None:
            self._last_ok = time.monotonic()
            self._file_error = None
            return False
        self._install(flags)
        return True

    def _looked(self) -> None:
        """After each look of the poller, good or bad: tell the provider."""
        call_each(self._check_listeners)

    def _refresh_env(self) -> None:
        # under the swap lock: a reload finishing meanwhile must not be undone
        with self._swap_lock:
            snap = self._snapshot
            env = self._env_for(snap.flags)
            if env != snap.env:
                self._snapshot = _Snapshot(snap.flags, env)

    # --- the file, looked at from the evaluation path ----------------------------------

    def _check(self) -> None:
        """Called at most about once per interval from the evaluation path; never raises."""
        if not self._reload_lock.acquire(blocking=False):
            return  # another thread is on it; serve what we have
        try:
            self._next_check = time.monotonic() + self._interval
            file = self._file
            if file is None:
                self._refresh_env()
                return
            try:
                if file.changed():
                    if not self._loading:
                        # Reading and compiling a large artifact takes a while (about 0.7 s
                        # for 10,000 flags): never on the caller's time. A thread builds the
                        # new flags aside; evaluations go on with the current ones meanwhile.
                        self._loading = True
                        threading.Thread(target=self._load_in_background,
                                         name="rollout-flags-reload", daemon=True).start()
                    return
                self._last_ok = time.monotonic()
                self._file_error = None
            except FlagSourceError as e:
                self._file_failed(e)
            except Exception:  # on the caller's evaluation, which never raises (no thread left...)
                self._loading = False
                log.exception("unexpected error checking %s; keeping the last good flags",
                              file.path)
                return
            self._refresh_env()
        finally:
            self._reload_lock.release()

    def _load_in_background(self) -> None:
        file = self._file
        assert file is not None
        try:
            self._load_file(file)
        except Exception:  # a daemon thread of the application's: a bug is logged, never its end
            log.exception("unexpected error reloading %s; keeping the last good flags",
                          file.path)
        finally:
            self._loading = False

    def _load_file(self, file: FileSource) -> bool:
        """Look at the file and read it if it changed, in this thread. True when new flags
        were installed; a bad or missing file is logged (once) and the last good flags stay."""
        try:
            flags = file.load()
        except FlagSourceError as e:
            self._file_failed(e)
            return False
        return self._took(flags)

    def _file_failed(self, error: FlagSourceError) -> None:
        """Keep the last good flags; say so once per bad file, not once per look."""
        self._file_error = str(error)
        if not error.new:
            return
        if error.missing:
            log.warning("%s; keeping the last good flags", error)
        else:
            log.error("%s; keeping the last good flags%s", error,
                      f" ({self._snapshot.flags.digest})" if self._ready else "")

    def reload(self) -> bool:
        """Look at the file now (not waiting for the interval); re-read the environment.

        Returns True when new flags were installed. Never raises: a bad file is logged and
        the last good flags stay.
        """
        if self._poller is not None:
            self._refresh_env()
            return self._poller.poll(self)
        with self._reload_lock:
            self._next_check = time.monotonic() + self._interval
            if self._file is None or not self._load_file(self._file):
                self._refresh_env()
                return False
            return True

    def close(self) -> None:
        """Stop the poller (a client on a URL or a checkout) and wait for its thread (a
        request in flight is cut, not waited out); the flags loaded stay served.
        Idempotent; a client without a poller has nothing to stop."""
        if self._poller is not None:
            self._poller.stop()

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
        self._hooks.add(hook)
        return hook

    def remove_evaluation_hook(self, hook: EvaluationHook) -> bool:
        """Stop calling ``hook`` (its first registration); False when it was not added."""
        return self._hooks.remove(hook)

    @property
    def evaluation_hooks(self) -> tuple[EvaluationHook, ...]:
        """The hooks called after each evaluation, in order."""
        return self._hooks.called

    @property
    def hook_errors(self) -> int:
        """How many times an evaluation hook raised (each ignored; export it as a counter)."""
        return self._hooks.errors

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
        if self._poller is None and self._file is None:
            return 0.0
        return max(0.0, time.monotonic() - self._last_ok)

    @property
    def source(self) -> str:
        """Where the flags come from, as messages name it (a URL without its query)."""
        return self._name

    @property
    def last_error(self) -> str | None:
        """Why the last look at the source (a poller's, or the file) failed; None when it
        succeeded."""
        return self._poller.error if self._poller is not None else self._file_error

    @property
    def poll_interval(self) -> float | None:
        """Seconds between a poller's looks; None for a client without one."""
        return self._poller.schedule.interval if self._poller is not None else None

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the first look of a poller is done (at most ``timeout`` seconds);
        returns :attr:`ready`."""
        if self._poller is not None:
            self._poller.first_done.wait(timeout)
        return self._ready

    # --- evaluation --------------------------------------------------------------------

    def _current(self) -> _Snapshot:
        if _monotonic() >= self._next_check:
            self._check()
        return self._snapshot

    def is_enabled(self, key: str, context: Mapping[str, Any] | None = None) -> bool:
        """True when the flag serves ``True`` for this context; False for unknown flags too."""
        if self._hooks.called:  # the hooks see the whole evaluation, reason and all
            return FlagClient.evaluate(self, key, context).value is True
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
        except Exception:  # a hostile context or key (its methods raise anything): never the caller's
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
                    r = type_mismatch(f, default)
            else:
                r = self._evaluate_carefully(snap, key, context, default)
        except Exception:  # a hostile context or key (its methods raise anything): never the caller's
            r = self._evaluate_carefully(snap, key, context, default)
        if self._hooks.called:
            self._hooks.run(key, context, r)
        return r

    def _evaluate_carefully(self, snap: _Snapshot, key: str, context: Mapping[str, Any] | None,
                            default: Any) -> Resolution:
        """The uncommon cases of :meth:`evaluate`: no flags yet, an unknown key, no
        context, a context that raises. Never raises."""
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
        except Exception:  # a hostile context; checked only on failure: no cost to the common case
            try:
                ctx = as_context(ctx)  # an OpenFeature EvaluationContext, or TypeError
                tk = targeting_key_of(ctx)
            except Exception:  # a hostile context: every flag None, never the caller's exception
                return dict.fromkeys(snap.flags.flags)
        out = {}
        outcomes = snap.outcomes
        for key, f in snap.flags.flags.items():
            try:
                out[key] = f.resolve(ctx, tk, outcomes)[0]
            except Exception:  # a context whose values raise on comparison: this flag None
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

    @property
    def generation(self) -> int | None:
        """The generation of the publication served (None: not published, or none loaded)."""
        return self._snapshot.flags.generation

    def flag_keys(self) -> list[str]:
        """The keys of every flag being served, sorted."""
        return sorted(self._current().flags.flags)

    def flag_type(self, key: str) -> str | None:
        """The flag's type (``boolean``, ``string``...), None for an unknown key."""
        try:
            f = self._current().flags.flags.get(key)
        except Exception:  # a hostile key: unhashable, or one whose hash raises anything
            return None
        return f.type if f is not None else None

    def flag_variants(self, key: str) -> tuple[str, ...] | None:
        """The names of the flag's variants, sorted; None for an unknown key."""
        try:
            f = self._current().flags.flags.get(key)
        except Exception:  # a hostile key: unhashable, or one whose hash raises anything
            return None
        return tuple(sorted(f.variants)) if f is not None else None
