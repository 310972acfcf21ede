"""Notifications: the changes a run committed, announced to Slack and signed JSON webhooks.

``[tool.rollout.notify]`` names the targets (``runner.load.config.load_notify``); each wants
some events (:func:`event_of` maps a decision to at most one). :func:`announce` is called by
the commands after their commits exist where people can follow a link to them: after the
push with ``--push``, after the local commit without it; never on ``--dry-run``.

A receiver never fails or blocks a run: every delivery runs at once in its own thread, each
bounded by its target's timeout (a receiver that accepts and never answers costs that, no
more), and what was not delivered comes back as :class:`Undelivered` for a warning. Each
delivery is attempted once, never retried: at most once per change and target (a receiver
that answered too late may still have received it; its delivery id says so).

URLs and secrets are read from the environment variables the config names, and never
printed: every message is passed through :func:`runner.safetext.redact` with them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runner import __version__
from runner.integrations.links import commit_link, github_repository, run_link
from runner.model import CohortEvidence, GateResult, NotifyConfig, NotifyTarget
from runner.percent import pct
from runner.reconcile.decide import Action, Decision
from runner.reconcile.runs import Report, unreadable
from runner.safemarkup import mrkdwn
from runner.safetext import basic_auth, record_line, redact, safe_line, url_secrets
from runner.timefmt import utc_iso

#: Action -> event; PAUSE is ``stuck`` when its cause is the progress deadline or metrics
#: that could not be read (:func:`event_of`).
EVENTS = {Action.START: "start", Action.ADVANCE: "advance", Action.COMPLETE: "completed",
          Action.ROLLBACK: "rollback", Action.PAUSE: "pause", Action.HOLD: "hold",
          Action.RESUME: "resume", Action.RETRY: "retry"}
#: The webhook's headers (docs/notifications.md says how to verify them).
SIGNATURE_HEADER = "X-Rollout-Signature-256"
TIMESTAMP_HEADER = "X-Rollout-Timestamp"
DELIVERY_HEADER = "X-Rollout-Delivery"
EVENT_HEADER = "X-Rollout-Event"
#: Deliveries one run attempts at most (beyond: reported as not delivered, not sent).
MAX_DELIVERIES = 100
#: The most of a receiver's answer that is read (and shown when it refused the delivery).
_ANSWER_BYTES = 65536
_SHOWN_ANSWER = 200
#: Deliveries ids are UUIDs derived from the change: the same change to the same target
#: always has the same id, so a receiver can drop a duplicate whatever its origin.
_DELIVERY_NAMESPACE = uuid.UUID("3c1f5b52-8f7e-4c1a-9a55-6f1f0d0b6a10")


def event_of(d: Decision) -> str | None:
    """The event a committed decision is, or None (replan, cleanup, observe...). A pause is
    ``stuck`` when the rollout could not go on by itself: no conclusive evaluation by the
    progress deadline, or a metric source that failed ``error_limit`` times in a row (its
    metrics could not be read: ``runner.reconcile.runs.unreadable``)."""
    if d.action is Action.PAUSE and (d.cause == "progress_deadline" or unreadable(d) is not None):
        return "stuck"
    return EVENTS.get(d.action) if d.action is not None else None


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change, as every target is told about it."""

    event: str
    flag: str
    plan: str
    action: str
    from_percentage: float
    to_percentage: float
    phase: str | None
    reason: str
    commit: str
    commit_url: str | None
    pushed: bool
    decided_at: datetime
    gates: tuple[GateResult, ...] = ()
    requested_by: str | None = None
    reverted_commit: str | None = None
    run_url: str | None = None
    repository: str | None = None
    #: The environment the change happened in; None without environments.
    environment: str | None = None

    @property
    def rollout(self) -> str:
        """The flag, or ``flag@environment`` in a repository with environments."""
        return self.flag if self.environment is None else f"{self.flag}@{self.environment}"


@dataclass(frozen=True, slots=True)
class Undelivered:
    """What a target did not receive, and why (no URL, no secret in it)."""

    target: str
    event: str
    flag: str
    why: str

    def __str__(self) -> str:
        return safe_line(f"{self.target}: {self.event} of {self.flag}: {self.why}", 1000)


@dataclass
class Outcome:
    delivered: list[tuple[str, str, str]] = field(default_factory=list)  # target, event, flag
    undelivered: list[Undelivered] = field(default_factory=list)
    #: Problems of the configuration or the environment (a target left out, a variable unset).
    warnings: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> bool:
        return bool(self.delivered or self.undelivered)


# --- what changed ------------------------------------------------------------------------


def changes(decisions: Sequence[Decision], commits: Mapping[str, str], config: NotifyConfig,
            env: Mapping[str, str], now: datetime, pushed: bool) -> list[Change]:
    """The committed decisions that are events, as :class:`Change` records."""
    out = []
    gh = github_repository(env)
    for d in decisions:
        event = event_of(d)
        sha = commits.get(d.key)
        if event is None or sha is None:
            continue
        # as the commit records them: one line each, anything like a credential redacted
        gates = tuple(dataclasses.replace(g, detail=record_line(g.detail)) for g in d.gates)
        out.append(Change(
            event=event, flag=d.flag, plan=d.plan, action=d.action.value if d.action else "",
            from_percentage=d.from_percentage, to_percentage=d.to_percentage,
            phase=d.after.phase.value if d.after else None, reason=record_line(d.reason),
            commit=sha, commit_url=commit_link(sha, config.commit_url, env), pushed=pushed,
            decided_at=now, gates=gates, requested_by=d.requested_by,
            reverted_commit=d.reverted_commit, run_url=run_link(env),
            repository=gh[1] if gh else None, environment=d.environment))
    return out


# --- what is sent ------------------------------------------------------------------------------


def _num(x: float | None) -> float | int | None:
    if x is None or x != x or x in (float("inf"), float("-inf")):
        return None
    return int(x) if float(x).is_integer() else x


def _signed(x: float | None) -> str:
    return "none" if x is None else f"{x:+g}"


def cohort_words(c: CohortEvidence) -> str:
    """Treatment against control, in one line."""
    def rate(r: float | None, n: int) -> str:
        return f"{'none' if r is None else f'{r:g}%'} of {n:,} requests"

    conf = c.confidence * 100 if c.confidence <= 1 else c.confidence
    interval = ("too few requests for an interval" if c.low is None or c.high is None else
                f"{conf:g}% interval of the difference [{_signed(c.low)}, {_signed(c.high)}] "
                "points")
    return (f"treatment {rate(c.treatment_rate, c.treatment_requests)} vs control "
            f"{rate(c.control_rate, c.control_requests)}; {interval}, allowed +{c.margin:g} points")


def gate_words(g: GateResult) -> str:
    value = "none" if g.value is None else f"{g.value:g}"
    dry = ", dry run" if g.dry_run else ""
    detail = f" — {g.detail}" if g.detail else ""
    cohorts = f"; {cohort_words(g.cohorts)}" if g.cohorts is not None else ""
    return safe_line(f"{g.name} = {value} ({g.threshold or 'no threshold'}{dry}): "
                     f"{g.verdict.value}{cohorts}{detail}", 600)


def _gate_dict(g: GateResult) -> dict[str, Any]:
    c = g.cohorts
    return {
        "name": g.name, "verdict": g.verdict.value, "value": _num(g.value),
        "threshold": g.threshold, "dry_run": g.dry_run, "detail": g.detail,
        "evaluated_at": utc_iso(g.evaluated_at),
        "cohorts": None if c is None else {
            "treatment_rate": _num(c.treatment_rate), "control_rate": _num(c.control_rate),
            "treatment_requests": c.treatment_requests, "control_requests": c.control_requests,
            "low": _num(c.low), "high": _num(c.high), "margin": _num(c.margin),
            "confidence": _num(c.confidence)},
    }


def delivery_id(target: str, change: Change) -> str:
    return str(uuid.uuid5(_DELIVERY_NAMESPACE,
                          f"{target}\0{change.flag}\0{change.event}\0{change.commit}"))


def webhook_document(change: Change, delivery: str, sent_at: datetime) -> dict[str, Any]:
    """The JSON webhook's body (docs/notifications.md lists its fields)."""
    return {
        "version": 1, "event": change.event, "delivery": delivery,
        "timestamp": int(sent_at.timestamp()), "flag": change.flag, "plan": change.plan,
        "action": change.action, "from_percentage": _num(change.from_percentage),
        "to_percentage": _num(change.to_percentage), "phase": change.phase,
        "reason": change.reason, "decided_at": utc_iso(change.decided_at),
        "requested_by": change.requested_by, "reverted_commit": change.reverted_commit,
        "commit": {"sha": change.commit, "url": change.commit_url, "pushed": change.pushed},
        "repository": change.repository, "run_url": change.run_url,
        "gates": [_gate_dict(g) for g in change.gates],
        **({"environment": change.environment} if change.environment is not None else {}),
    }


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body, as GitHub signs its webhooks."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _mrkdwn(text: str, limit: int = 2900) -> str:
    """Input text made inert in Slack's mrkdwn (:func:`runner.safemarkup.mrkdwn`): no
    mention, link or Slack syntax of the input's making."""
    return mrkdwn(text, limit)


def _input(text: str) -> dict[str, Any]:
    """A mrkdwn text object holding input: ``verbatim`` so that Slack links and mentions
    nothing in it on its own (escaping does the rest)."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


_TITLES = {"start": "started", "advance": "advanced", "completed": "completed",
           "rollback": "rolled back", "pause": "paused", "stuck": "stuck (paused)",
           "hold": "held", "resume": "resumed", "retry": "retried", "halt": "halted",
           "unhalt": "unhalted"}
_ICONS = {"rollback": ":rotating_light:", "stuck": ":hourglass:", "pause": ":double_vertical_bar:",
          "hold": ":raised_hand:", "completed": ":white_check_mark:", "halt": ":octagonal_sign:"}
#: The flag a halt or unhalt is announced for: every rollout (of its environment, the plan).
EVERY_ROLLOUT = "*"


def slack_message(change: Change) -> dict[str, Any]:
    """A Block Kit message: header, fields (flag, action, percentage, commit), the reason,
    the gate evidence, and a context line with the plan and the run."""
    who = "every rollout" if change.flag == EVERY_ROLLOUT else change.rollout
    title = f"{_ICONS.get(change.event, ':arrow_forward:')} {who} {_TITLES[change.event]}"
    move = (f"{pct(change.from_percentage)}% → {pct(change.to_percentage)}%"
            if change.from_percentage != change.to_percentage
            else f"{pct(change.to_percentage)}%")
    short = change.commit[:7]
    commit = f"<{change.commit_url}|{short}>" if change.commit_url else f"`{short}`"
    if not change.pushed:
        commit += " (local commit, not pushed)"
    fields = [f"*Flag*\n`{_mrkdwn(change.flag, 200)}`", f"*Action*\n{change.action}",
              f"*Percentage*\n{move}", f"*Commit*\n{commit}"]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                    "text": safe_line(title, 150)}},
        {"type": "section", "fields": [_input(f) for f in fields]},
        {"type": "section", "text": _input(f"*Reason*\n{_mrkdwn(change.reason)}")},
    ]
    if change.gates:
        lines = "\n".join(f"• {_mrkdwn(gate_words(g), 600)}" for g in change.gates[:8])
        more = f"\n… and {len(change.gates) - 8} more" if len(change.gates) > 8 else ""
        blocks.append({"type": "section",
                       "text": _input(f"*Gate evidence*\n{lines}{more}"[:2990])})
    context = [f"plan `{_mrkdwn(change.plan, 200)}`"]
    if change.requested_by:
        context.append(f"by {_mrkdwn(change.requested_by, 200)}")
    if change.run_url:
        context.append(f"<{change.run_url}|workflow run>")
    blocks.append({"type": "context", "elements": [
        _input(" · ".join(["rollout-runner", *context]))]})
    said = "" if change.flag == EVERY_ROLLOUT else f": {move}"  # a halt moves no percentage
    return {"text": safe_line(f"{who} {_TITLES[change.event]}{said}", 300),
            "blocks": blocks}


# --- sending ---------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a new place to post the body (and its signature) to."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Failed(Exception):
    """One delivery failed (the message says how). Private (no
    :class:`runner.errors.RolloutError`): caught in this module and recorded as undelivered;
    a receiver never fails a run."""


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as answer:
            answer.read(_ANSWER_BYTES)
            status = answer.status
    except urllib.error.HTTPError as e:
        try:
            said = e.read(_SHOWN_ANSWER).decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            said = ""
        raise _Failed(f"the receiver answered HTTP {e.code}" + (f": {said}" if said else "")) \
            from None
    except TimeoutError:
        raise _Failed(f"no answer within {timeout:g}s") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, TimeoutError):
            raise _Failed(f"no answer within {timeout:g}s") from None
        raise _Failed(f"cannot reach the receiver: {reason}") from None
    except (OSError, ValueError, http.client.HTTPException) as e:
        raise _Failed(f"cannot reach the receiver: {type(e).__name__}: {e}") from None
    if not 200 <= status < 300:
        raise _Failed(f"the receiver answered HTTP {status}")


def _url_problem(url: str) -> str | None:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http:// or https:// URL"
    if any(c.isspace() for c in url):
        return "holds blanks"
    return None


def _secrets(url: str, secret: str | None) -> list[str]:
    """What must never be printed of a target: its URL and its parts (its userinfo and every
    query value whatever their length: :func:`runner.safetext.url_secrets`), its key."""
    out = [url, *(s for s in (secret,) if s), *url_secrets(url)]
    try:
        parts = urllib.parse.urlsplit(url)
        out += [p for p in (parts.path, parts.query, *parts.path.split("/")) if p and len(p) >= 8]
    except ValueError:
        pass
    return out


@dataclass
class _Delivery:
    target: NotifyTarget
    change: Change
    url: str
    body: bytes
    headers: dict[str, str]
    error: str | None = "not attempted"
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            _post(self.url, self.body, self.headers, self.target.timeout)
            self.error = None
        except _Failed as e:
            self.error = str(e)
        except Exception as e:  # a receiver must never fail a run, whatever it does
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.done.set()


def _prepare(target: NotifyTarget, change: Change, url: str, secret: str | None,
             sent_at: datetime) -> _Delivery:
    headers = {"Content-Type": "application/json; charset=utf-8",
               "User-Agent": f"rollout-runner/{__version__}"}
    url, basic = basic_auth(url)  # user:password@ in the URL: sent as HTTP Basic auth
    if basic:
        headers["Authorization"] = basic
    if target.type == "slack":
        body = json.dumps(slack_message(change), ensure_ascii=False,
                          separators=(",", ":")).encode()
    else:
        delivery = delivery_id(target.name, change)
        body = json.dumps(webhook_document(change, delivery, sent_at), sort_keys=True,
                          ensure_ascii=False, separators=(",", ":")).encode()
        assert secret is not None
        headers.update({EVENT_HEADER: change.event, DELIVERY_HEADER: delivery,
                        TIMESTAMP_HEADER: str(int(sent_at.timestamp())),
                        SIGNATURE_HEADER: signature(secret, body)})
    return _Delivery(target, change, url, body, headers)


def deliver(config: NotifyConfig, found: Sequence[Change], env: Mapping[str, str],
            sent_at: datetime, warnings: Sequence[str] = ()) -> Outcome:
    """Send each change to every target that wants its event, all at once; wait for each
    at most its target's timeout. Never raises for anything a receiver or the environment
    does."""
    outcome = Outcome(warnings=list(warnings))
    hidden: list[str] = []
    deliveries: list[_Delivery] = []
    for target in config.targets:
        wanted = [c for c in found if c.event in target.events]
        if not wanted:
            continue
        url = env.get(target.url_env, "").strip()
        secret = env.get(target.secret_env, "") if target.secret_env else None
        why = None
        if not url:
            why = f"${target.url_env} is not set"
        elif (bad := _url_problem(url)) is not None:
            why = f"${target.url_env} {bad}"
        elif target.secret_env and not secret:
            why = f"${target.secret_env} (its signing key) is not set"
        if url:
            hidden += _secrets(url, secret)
        if why is not None:
            outcome.undelivered += [Undelivered(target.name, c.event, c.flag, why) for c in wanted]
            continue
        for c in wanted:
            if len(deliveries) >= MAX_DELIVERIES:
                outcome.undelivered.append(Undelivered(
                    target.name, c.event, c.flag, f"more than {MAX_DELIVERIES} deliveries "
                    "in one run; not sent"))
                continue
            deliveries.append(_prepare(target, c, url, secret, sent_at))
    started = time.monotonic()
    for d in deliveries:
        threading.Thread(target=d.run, name=f"notify-{d.target.name}", daemon=True).start()
    for d in deliveries:
        # the socket's timeout bounds each read; this bounds the whole delivery (a name
        # that never resolves, a receiver that answers a byte at a time)
        left = started + d.target.timeout + 0.25 - time.monotonic()
        if not d.done.wait(max(left, 0.0)):
            d.error = f"no answer within {d.target.timeout:g}s"
        if d.error is None:
            outcome.delivered.append((d.target.name, d.change.event, d.change.flag))
        else:
            outcome.undelivered.append(Undelivered(
                d.target.name, d.change.event, d.change.flag, d.error))
    outcome.undelivered = [Undelivered(u.target, u.event, u.flag, safe_line(redact(u.why, hidden), 500))
                           for u in outcome.undelivered]
    return outcome


def left_out(problem: object) -> str:
    """What a problem of ``[tool.rollout.notify]`` turns off."""
    field_name = str(getattr(problem, "field", ""))
    if field_name.startswith("tool.rollout.notify.targets."):
        return "this target is left out"
    if field_name == "tool.rollout.notify.commit_url":
        return "no commit links from it"
    return "notifications are off"


def announce_switch(config: NotifyConfig, problems: Sequence[object], event: str,
                    environment: str | None, reason: str, sha: str, pushed: bool,
                    requested_by: str, env: Mapping[str, str], now: datetime,
                    sent_at: datetime) -> Outcome:
    """``rollout halt``/``unhalt`` (``event``), committed as ``sha``, to the targets that ask
    for it: flag ``*`` (every rollout), plan the environment (``*``: all of them)."""
    warnings = [safe_line(f"{p} ({left_out(p)}; `rollout validate` checks it)", 1000)
                for p in problems]
    gh = github_repository(env)
    change = Change(
        event=event, flag=EVERY_ROLLOUT, plan=environment or EVERY_ROLLOUT, action=event,
        from_percentage=0.0, to_percentage=0.0, phase=None, reason=record_line(reason),
        commit=sha, commit_url=commit_link(sha, config.commit_url, env), pushed=pushed,
        decided_at=now, requested_by=requested_by, run_url=run_link(env),
        repository=gh[1] if gh else None)
    return deliver(config, [change], env, sent_at, warnings)


def announce(config: NotifyConfig, problems: Sequence[object], run: Report,
             env: Mapping[str, str], now: datetime, sent_at: datetime, *, push: bool) -> Outcome:
    """What the commands call after a run (never a dry run): what ``run`` committed, to the
    targets. With ``push`` only once the commits were pushed (a run that pushed nothing
    announces nothing): a change is announced when a link can reach it. ``problems`` (of
    ``[tool.rollout.notify]``) become warnings: a target with a problem is left out, never
    the run."""
    warnings = [safe_line(f"{p} ({left_out(p)}; `rollout validate` checks it)", 1000)
                for p in problems]
    sent = run.commits if not push or run.pushed else {}
    return deliver(config, changes(run.decisions, sent, config, env, now, run.pushed), env,
                   sent_at, warnings)


__all__ = [
    "DELIVERY_HEADER",
    "EVENTS",
    "EVENT_HEADER",
    "EVERY_ROLLOUT",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Change",
    "Outcome",
    "Undelivered",
    "announce",
    "announce_switch",
    "changes",
    "cohort_words",
    "deliver",
    "delivery_id",
    "event_of",
    "gate_words",
    "signature",
    "slack_message",
    "webhook_document",
]
