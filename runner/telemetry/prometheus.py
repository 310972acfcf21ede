"""Requests, errors and latency per flag variant, for ``prometheus_client`` applications.

An application labels *its own* request outcome with the variant the request was served,
so that the runner can compare the users who got the rollout variant (treatment) with those
who did not (control). One recorder per process::

    from runner import FlagClient
    from runner.telemetry.prometheus import RequestRecorder

    flags = FlagClient.from_file("flags.json")
    recorder = RequestRecorder()            # registers on prometheus_client's REGISTRY

    def handle(request):
        with recorder.request(flags, "checkout_v2", {"targetingKey": request.user_id}) as r:
            if r.value:
                return new_checkout(request)   # an exception counts as an error, re-raised
            return old_checkout(request)

It exports, for every ``(flag, variant, reason)`` a request was labelled with:

* ``rollout_requests_total``: requests;
* ``rollout_request_errors_total``: those that failed (an exception left the ``with``
  block, or :meth:`Request.fail` was called: a 5xx answered without raising);
* ``rollout_request_duration_seconds``: a histogram of their latency (buckets
  :data:`DEFAULT_BUCKETS`, which include 0.5 s; a ``slow_rate`` comparison's
  ``objective_ms`` must be one of the bucket bounds);
* ``rollout_assignments_total``: users, each counted once, at their first request since the
  flag last changed (a new step assigns anew): what the sample-ratio check should count when
  users make many requests each (its test needs independently assigned units), and the
  users of a comparison whose unit is users (``compare: {unit: users}``);
* ``rollout_users_with_errors_total``: of those users, the ones who saw an error, each
  counted once, at their first failed request since the flag last changed;
* ``rollout_users_slow_total``: with a ``slower_than`` label per latency bucket bound, the
  users whose slowest request since the flag last changed was slower than that bound, each
  counted once per bound, when their slowest request first exceeded it.

The user is the context's targeting key (``targetingKey``): requests without one are counted
as requests, never as users. Which users were seen, and what each saw (one int a user), is
kept per flag in this process (at most ``max_users`` of them), forgotten when the flag
changes (a reload that changes it: a new step's split assigns anew). A user served by several
processes is counted in each of them (see docs/guarded.md, "Users as the unit").

``reason`` is the evaluation's (``SPLIT``: assigned by the percentage split,
``TARGETING_MATCH``, ``DEFAULT``, ``DISABLED``, ``ERROR``...): the sample-ratio check counts
``SPLIT`` requests only, since users placed by targeting rules are not part of the split.
``variant`` is empty when the evaluation failed (the caller's default was served): such
requests belong to no cohort.

The first request of a flag creates, at zero, the series of each of its variants with
reason ``SPLIT`` (:meth:`RequestRecorder.declare`): Prometheus then sees every cohort's
counters from before its first request, so ``increase()`` over a step counts the first
requests too, alike for both cohorts. (A series born in the middle of a step loses what
happened before its first scrape, and would skew the treatment's share of the split.)

Only what the loaded artifact knows is a label of its own (a registry holds every label value
it was ever given, for the life of the process): a flag key no artifact of the recorder's
clients has and no :meth:`RequestRecorder.declare` named is labelled ``flag="unknown"``, a
variant the flag does not have ``variant="unknown"``, a reason no evaluation gives
``reason="unknown"``. A typo'd key, or one taken from user input, is then one series, never
one per key.

Which flag labels a request: the one flag under rollout whose code path the request
takes, evaluated once at the start of the request (so that the label is what the user
actually got). A request that takes no flagged path is not recorded here (the
application's usual request metrics count it). A request touching two flags under rollout
at once is labelled with one of them; the other's comparison then sees it in neither
cohort's errors, which is why concurrent rollouts on one code path are best avoided.
"""

from __future__ import annotations

import bisect
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError("runner.telemetry.prometheus needs prometheus_client: "
                      "pip install 'rollout-runner[prometheus]'") from e

from runner.evaluate.resolution import (
    DEFAULT,
    DISABLED,
    ERROR,
    PREREQUISITE_FAILED,
    SPLIT,
    STATIC,
    TARGETING_MATCH,
    Resolution,
)

if TYPE_CHECKING:
    from runner.sdk import FlagClient

#: Request latency buckets, seconds: prometheus_client's defaults, which include 0.5 s.
DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5,
                                      0.75, 1.0, 2.5, 5.0, 7.5, 10.0, float("inf"))
LABELS = ("flag", "variant", "reason")
REQUESTS = "rollout_requests_total"
ERRORS = "rollout_request_errors_total"
DURATION = "rollout_request_duration_seconds"
EVALUATIONS = "rollout_evaluations_total"
ASSIGNMENTS = "rollout_assignments_total"
USERS_WITH_ERRORS = "rollout_users_with_errors_total"
USERS_SLOW = "rollout_users_slow_total"
#: The label of USERS_SLOW: a latency bound in seconds, written as a histogram's ``le``.
SLOWER_THAN = "slower_than"
#: Targeting keys a flag's assignment count remembers before it forgets them all.
DEFAULT_MAX_USERS = 100_000  # about 10 MB of keys a flag at most

#: The label value of a flag, variant or reason the recorder does not know.
UNKNOWN = "unknown"
#: The reasons an evaluation gives (ours and OpenFeature's): any other is ``unknown``.
REASONS = frozenset({STATIC, DEFAULT, TARGETING_MATCH, SPLIT, DISABLED, ERROR,
                     PREREQUISITE_FAILED, "CACHED", "STALE", "UNKNOWN"})

_clock = time.perf_counter


class Request:
    """One request being recorded: the evaluation it was served, and whether it failed.

    Made by :meth:`RequestRecorder.request`; a context manager that records the request
    when the block ends (its duration from entering it)."""

    __slots__ = ("_recorder", "_start", "failed", "flag", "resolution", "user")

    def __init__(self, recorder: RequestRecorder, flag: str, resolution: Resolution,
                 user: str | None = None):
        self._recorder = recorder
        self.flag = flag
        #: The targeting key the request was evaluated for (None: no user to count).
        self.user = user
        #: The evaluation the request was served (value, variant, reason).
        self.resolution = resolution
        #: True once :meth:`fail` was called or an exception left the block.
        self.failed = False
        self._start = _clock()

    @property
    def value(self) -> Any:
        return self.resolution.value

    @property
    def variant(self) -> str | None:
        return self.resolution.variant

    @property
    def reason(self) -> str:
        return self.resolution.reason

    def fail(self) -> None:
        """Count this request as an error although no exception is raised (a 5xx page)."""
        self.failed = True

    def __enter__(self) -> Request:
        self._start = _clock()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None and issubclass(exc_type, Exception):
            self.failed = True
        self._recorder.observe_resolution(self.flag, self.resolution, _clock() - self._start,
                                          error=self.failed, user=self.user)


class RequestRecorder:
    """Counts requests, errors and latency per ``flag``, ``variant`` and ``reason``.

    ``registry``: where the metrics are registered (prometheus_client's default
    ``REGISTRY``: what ``start_http_server`` and ``make_wsgi_app`` expose). A registry holds
    one recorder: make one per process. ``buckets``: the latency histogram's bounds in
    seconds (default :data:`DEFAULT_BUCKETS`). ``max_users``: how many targeting keys a
    flag's user counts remember (beyond, they forget them all and start again).

    Flags are labelled by name only when known: from the artifact of a client the recorder
    was given (:meth:`request`, :meth:`count_evaluations`, :meth:`watch`) or named by
    :meth:`declare`; anything else is ``unknown`` (see the module's text)."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY, *,
                 buckets: Sequence[float] = DEFAULT_BUCKETS,
                 max_users: int = DEFAULT_MAX_USERS):
        self.requests = Counter(REQUESTS.removesuffix("_total"),
                                "Requests, by the flag variant they were served.", LABELS,
                                registry=registry)
        self.errors = Counter(ERRORS.removesuffix("_total"),
                              "Failed requests, by the flag variant they were served.",
                              LABELS, registry=registry)
        self.duration = Histogram(DURATION, "Request latency, by the flag variant served.",
                                  LABELS, registry=registry, buckets=tuple(buckets))
        self.evaluations = Counter(EVALUATIONS.removesuffix("_total"),
                                   "Flag evaluations (FlagClient.on_evaluation), by variant.",
                                   LABELS, registry=registry)
        self.assignments = Counter(ASSIGNMENTS.removesuffix("_total"),
                                   "Users assigned a variant: the first request of each "
                                   "targeting key since the flag last changed.", LABELS,
                                   registry=registry)
        self.users_with_errors = Counter(
            USERS_WITH_ERRORS.removesuffix("_total"),
            "Users who saw an error: the first failed request of each targeting key since the "
            "flag last changed.", LABELS, registry=registry)
        self.users_slow = Counter(
            USERS_SLOW.removesuffix("_total"),
            "Users with a request slower than slower_than seconds since the flag last changed, "
            "each counted once per bound.", (*LABELS, SLOWER_THAN), registry=registry)
        #: The finite bucket bounds, ascending, and as the slower_than label writes them: as
        #: the runner's ``objective_seconds`` (and prometheus_client's ``le``) does, 0.5, 1.0.
        self._bounds = tuple(sorted(float(b) for b in buckets if b != float("inf")))
        self._bound_labels = tuple(repr(b) for b in self._bounds)
        self._declared: set[str] = set()
        #: flag -> its variants: those declared by hand, and those read from a client's
        #: artifact (dropped when a reload changes the flag). Only known flags are kept,
        #: so it is as large as the artifacts, whatever keys the application is given.
        self._declared_variants: dict[str, frozenset[str]] = {}
        self._artifact_variants: dict[str, frozenset[str]] = {}
        self.max_users = max_users
        #: flag -> targeting key -> what the user saw since the flag changed: bit 0, an
        #: error; the rest, how many of ``_bounds`` their slowest request exceeded.
        self._seen: dict[str, dict[str, int]] = {}
        self._seen_lock = threading.Lock()
        self._watched: weakref.WeakSet[FlagClient] = weakref.WeakSet()

    def request(self, client: FlagClient, flag: str,
                context: Mapping[str, Any] | None = None, default: Any = None) -> Request:
        """Evaluate ``flag`` for this request's ``context`` and record the request, under
        the variant it was served, when the ``with`` block ends. Use ``r.value`` to choose
        the code path: the label is then exactly what the user got. The first request of
        a flag declares its variants (:meth:`declare`)."""
        self.watch(client)
        if flag not in self._declared:
            variants = client.flag_variants(flag)
            if variants is not None:
                self.declare(flag, variants)
        r = client.evaluate(flag, context, default)
        user = _targeting_key(context)
        if r.variant is not None and user is not None:
            self._count_user(self.labels(flag, r.variant, r.reason), user)
        return Request(self, flag, r, user)

    def watch(self, client: FlagClient) -> None:
        """Know the flags of ``client``'s artifact (as it reloads): their keys and variants
        are labelled by name. :meth:`request` and :meth:`count_evaluations` call it; call
        it yourself for a client whose requests reach only :meth:`observe`."""
        if client not in self._watched:
            self._watched.add(client)
            client.on_change(self.forget)

    def _variants(self, flag: str) -> frozenset[str] | None:
        """The variants of a known ``flag``; None when no artifact and no declare knows it."""
        known = self._declared_variants.get(flag)
        if known is None:
            known = self._artifact_variants.get(flag)
        if known is not None:
            return known
        for client in list(self._watched):
            found = client.flag_variants(flag)
            if found is not None:
                known = self._artifact_variants[flag] = frozenset(found)
                return known
        return None

    def labels(self, flag: str, variant: str | None, reason: str) -> tuple[str, str, str]:
        """The label values a request of ``flag`` served ``variant`` for ``reason`` is
        counted under: an unknown flag, variant or reason is ``unknown``."""
        try:
            variants = self._variants(flag) if isinstance(flag, str) else None
        except Exception:  # a hostile key (unhashable...): nothing the artifact knows
            variants = None
        if variants is None:
            flag = UNKNOWN
        served = variant or ""
        if served and (variants is None or served not in variants):
            served = UNKNOWN
        return flag, served, reason if reason in REASONS else UNKNOWN

    def _count_user(self, labels: tuple[str, str, str], user: str, *, error: bool = False,
                    seconds: float | None = None) -> None:
        """Count ``user`` under ``labels``: as assigned at their first request since the flag
        changed, as a user with errors at their first error, as slow beyond each bound their
        slowest request first exceeds."""
        with self._seen_lock:
            users = self._seen.setdefault(labels[0], {})
            state = users.get(user)
            new = state is None
            if state is None:
                if len(users) >= self.max_users:
                    users.clear()
                state = 0
            first_error = error and not state & 1
            was = state >> 1  # bounds the user's slowest request exceeded so far
            now = was if seconds is None else max(was, bisect.bisect_left(self._bounds, seconds))
            users[user] = now << 1 | (state & 1) | int(error)
        if new:
            self.assignments.labels(*labels).inc()
        if first_error:
            self.users_with_errors.labels(*labels).inc()
        for bound in self._bound_labels[was:now]:
            self.users_slow.labels(*labels, bound).inc()

    def forget(self, flags: Iterable[str]) -> None:
        """Count every user of ``flags`` again from their next request: called (an
        ``on_change`` callback) when a reload changes those flags, since a new step's split
        assigns anew."""
        with self._seen_lock:
            for flag in flags:
                self._seen.pop(flag, None)
                self._artifact_variants.pop(flag, None)  # read again from the new artifact

    def declare(self, flag: str, variants: Iterable[str],
                reasons: Iterable[str] = (SPLIT,)) -> None:
        """Create the series of ``flag``'s ``variants`` (for each of ``reasons``) at zero,
        before any request is served them: a cohort's first requests are then counted by
        ``increase()`` like the later ones."""
        reasons = tuple(reasons)
        variants = tuple(variants)
        self._declared_variants[flag] = frozenset(variants)
        for variant in variants:
            for reason in reasons:
                labels = (flag, variant, reason)
                self.requests.labels(*labels)
                self.errors.labels(*labels)
                self.duration.labels(*labels)
                self.assignments.labels(*labels)
                self.users_with_errors.labels(*labels)
                for bound in self._bound_labels:
                    self.users_slow.labels(*labels, bound)
        self._declared.add(flag)

    def observe(self, flag: str, variant: str | None, reason: str, seconds: float, *,
                error: bool = False, user: str | None = None) -> None:
        """Record one finished request (for middleware that times requests itself): under
        :meth:`labels`, so an unknown flag, variant or reason is ``unknown``. ``user``: the
        targeting key the request was evaluated for, to count users (``rollout_assignments_
        total``, ``rollout_users_with_errors_total``, ``rollout_users_slow_total``)."""
        labels = self.labels(flag, variant, reason)
        self.requests.labels(*labels).inc()
        if error:
            self.errors.labels(*labels).inc()
        self.duration.labels(*labels).observe(seconds)
        if isinstance(user, str) and variant:
            self._count_user(labels, user, error=error, seconds=seconds)

    def observe_resolution(self, flag: str, resolution: Resolution, seconds: float, *,
                           error: bool = False, user: str | None = None) -> None:
        """:meth:`observe` with the variant and reason of an evaluation."""
        self.observe(flag, resolution.variant, resolution.reason, seconds, error=error,
                     user=user)

    def count_evaluations(self, client: FlagClient) -> None:
        """Count every evaluation ``client`` makes in ``rollout_evaluations_total`` (an
        evaluation hook): how often each variant is served, requests or not."""
        self.watch(client)
        client.on_evaluation(self._count)

    def _count(self, key: str, context: Mapping[str, Any] | None, r: Resolution) -> None:
        self.evaluations.labels(*self.labels(key, r.variant, r.reason)).inc()


def _targeting_key(context: Mapping[str, Any] | None) -> str | None:
    """The user of an evaluation context: its targeting key, when it is a string."""
    try:
        tk = context.get("targetingKey") if context is not None else None
        if tk is None and context is not None:
            tk = context.get("targeting_key")
    except Exception:  # a context that raises: no user to count
        return None
    return tk if isinstance(tk, str) else None


__all__ = ["ASSIGNMENTS", "DEFAULT_BUCKETS", "DEFAULT_MAX_USERS", "DURATION", "ERRORS",
           "EVALUATIONS", "LABELS", "REASONS", "REQUESTS", "SLOWER_THAN", "UNKNOWN",
           "USERS_SLOW", "USERS_WITH_ERRORS", "Request", "RequestRecorder"]
