"""The poller: a daemon thread that looks at a client's source (a URL, a checkout) on a schedule.

Each wait is the interval times a jitter factor, doubled per failed look (a URL; up to
a cap, never sooner than a ``Retry-After``). A failure streak is logged once, with each
new bad state of the source; the client keeps its last good flags meanwhile. The thread
holds its client only while looking, so a client nobody holds any more is collected and
its thread ends at its next wake.
"""

from __future__ import annotations

import logging
import random
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runner.sdk.sources import FlagSource, FlagSourceError

if TYPE_CHECKING:
    from runner.sdk.client import FlagClient

log = logging.getLogger("runner.sdk")

#: Each wait between polls is the interval times a random factor in [1 - JITTER, 1]: a fleet
#: started at once does not poll in lockstep, and no wait is ever longer than the interval,
#: so a published change reaches every process within one poll interval.
JITTER = 0.15
#: While the source fails, the wait doubles, up to this many poll intervals.
MAX_BACKOFF_INTERVALS = 10


@dataclass(frozen=True)
class Schedule:
    """When a poller looks: every ``interval`` seconds; with ``backoff``, the wait doubles
    per failed look up to ``max_backoff``; each wait is shortened by up to ``jitter``."""

    interval: float
    max_backoff: float
    backoff: bool = False
    jitter: float = 0.0

    def next_delay(self, failures: int, retry_after: float | None) -> float:
        """Seconds until the next look after ``failures`` failed looks in a row: the
        interval, doubled per failure up to the cap, no sooner than a ``Retry-After``;
        times the jitter."""
        delay = self.interval
        if failures and self.backoff:
            delay = min(self.max_backoff, delay * 2.0 ** min(failures - 1, 32))
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.max_backoff))
        return delay * random.uniform(1.0 - self.jitter, 1.0) if self.jitter else delay


class Poller:
    """Looks at ``source`` for ``client`` on ``schedule``, in a daemon thread of its own."""

    def __init__(self, client: FlagClient, source: FlagSource, schedule: Schedule, *,
                 look_timeout: float = 0.0):
        self.source = source
        self.schedule = schedule
        self.look_timeout = look_timeout  # the most one look may take: close() waits that
        self._client = weakref.ref(client)
        self._lock = threading.Lock()  # one look at the source at a time
        self._stop = threading.Event()
        #: Set once the first look is done (at once when the client starts with flags).
        self.first_done = threading.Event()
        self.thread: threading.Thread | None = None
        self.failures = 0  # failed looks in a row
        self.retry_after: float | None = None
        #: Why the last look failed; None when it succeeded.
        self.error: str | None = None

    def start(self, first_delay: float) -> None:
        client = self._client()
        if client is not None and client.ready:
            self.first_done.set()
        self.thread = threading.Thread(target=self._run, args=(first_delay,),
                                       name=f"rollout-flags-poll {self.source.name}",
                                       daemon=True)
        self.thread.start()

    def _run(self, delay: float) -> None:
        while not self._stop.wait(delay):
            client = self._client()
            if client is None:
                return
            try:
                self.poll(client)
                delay = self.schedule.next_delay(self.failures, self.retry_after)
            except Exception:  # never let the poller die: a bug must not end the reloads for good
                log.exception("unexpected error polling %s", self.source.name)
                delay = self.schedule.interval
            finally:
                self.first_done.set()
            del client

    def poll(self, client: FlagClient) -> bool:
        """One look at the source; True when new flags were installed. Never raises."""
        installed = False
        with self._lock:
            try:
                flags = self.source.load()
            except FlagSourceError as e:
                if self._stop.is_set():
                    return False  # cut short by stop(): not a failure of the source
                self._failed(client, str(e), e.retry_after, loud=e.new)
            except Exception as e:  # a bug, or what urllib or a loader did not expect: never the caller's
                self._failed(client, f"{self.source.name}: unexpected {type(e).__name__}", None,
                             loud=False, exc_info=True)
            else:
                if self.failures:
                    log.warning("%s: back after %d failed look%s", self.source.name,
                                self.failures, "s" if self.failures > 1 else "")
                self.failures, self.error, self.retry_after = 0, None, None
                installed = client._took(flags)
        client._looked()
        return installed

    def _failed(self, client: FlagClient, message: str, retry_after: float | None, *,
                loud: bool, exc_info: bool = False) -> None:
        """Keep the last good flags; log once per failure streak (and per new bad state)."""
        self.failures += 1
        self.error, self.retry_after = message, retry_after
        if self.failures == 1 or loud:
            if client.ready:
                log.error("%s; keeping the last good flags (%s)", message, client.digest,
                          exc_info=exc_info)
            else:
                log.error("%s; serving callers' defaults until a valid artifact arrives",
                          message, exc_info=exc_info)
        else:
            log.debug("%s (failed look %d)", message, self.failures)

    def stop(self) -> None:
        """Stop the thread and wait for it (not from the thread itself). Idempotent. A
        look in flight is cut now when the source can (a URL), never waited out."""
        self._stop.set()
        abort = getattr(self.source, "abort", None)
        if abort is not None:
            abort()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.look_timeout + 5.0)
            if thread.is_alive():
                log.warning("%s: the poller did not stop within %g s (a request hanging)",
                            self.source.name, self.look_timeout + 5.0)
