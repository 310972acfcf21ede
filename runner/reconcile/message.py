"""The runner's commit message (the trailer contract of docs/runner.md): its one format and its one parse.

A runner commit is a subject (``rollout(flag): 10% → 25%``), a body with the evidence in
words, and trailers in the last paragraph. :class:`RunnerMessage` is that message as one
record: :func:`from_decision` builds it from a decision, :func:`format_message` writes it,
:func:`parse_message` (a whole message) and :func:`parse_trailers` (trailers already split
by ``runner.trailers``) read it back, and ``format_message(parse_message(text)) == text``
for every message the runner writes. The values of ``Rollout-Gate`` and ``Rollout-Compare``
have grammars of their own: :func:`gate_trailer` / :func:`parse_gate` and
:func:`compare_trailer` / :func:`parse_compare`. The publication branch's two trailers
(``Rollout-Source-Commit``, ``Rollout-Digest``) are named here too.

Every text a person or a metric source wrote (a reason, a requester, a gate's detail) is
recorded through :func:`runner.safetext.record_line`: one line, so that nothing in it can
end the trailer paragraph early or start a trailer of its own.

Start-up: ``rollout history`` reads messages through this module on every run, so it imports
no layer at module level; the model types it returns (~15 ms of its start-up) are imported
where they are built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from runner.percent import pct
from runner.safetext import record_line
from runner.trailers import split_message

if TYPE_CHECKING:
    from runner.model import CohortEvidence, GateResult, RolloutPlan
    from runner.reconcile.decide import Decision

# --- the trailer names ------------------------------------------------------------------------

FLAG = "Rollout-Flag"
#: Repositories with environments only: the environment the commit acts in (after the flag).
ENVIRONMENT = "Rollout-Environment"
ACTION = "Rollout-Action"
FROM = "Rollout-From"
TO = "Rollout-To"
PHASE = "Rollout-Phase"
PLAN = "Rollout-Plan"
PLAN_DIGEST = "Rollout-Plan-Digest"
STATE_BEFORE = "Rollout-State-Before"
STATE_AFTER = "Rollout-State-After"
GATE = "Rollout-Gate"
COMPARE = "Rollout-Compare"
REASON = "Rollout-Reason"
REQUESTED_BY = "Rollout-Requested-By"
APPROVED_BY = "Rollout-Approved-By"
REVERTED_COMMIT = "Rollout-Reverted-Commit"
REVERTED_BY = "Rollout-Reverted-By"
#: Every trailer of a runner commit, in the order the runner writes them (docs/runner.md, "Commit format").
TRAILER_KEYS = (FLAG, ENVIRONMENT, ACTION, FROM, TO, PHASE, PLAN, PLAN_DIGEST, STATE_BEFORE, STATE_AFTER,
                GATE, COMPARE, REASON, REQUESTED_BY, APPROVED_BY, REVERTED_COMMIT, REVERTED_BY)

#: The trailers of a publication branch's commits (runner/reconcile/publish.py).
SOURCE_COMMIT = "Rollout-Source-Commit"
DIGEST = "Rollout-Digest"


class RunnerMessage(NamedTuple):
    """One runner commit message, field by field as it is written.

    ``subject`` and ``body`` are the text as written (the body: the reason line, then a
    blank line and one evidence line per gate); the rest are the trailers. Percentages are
    numbers (None when a trailer is missing or not one); ``gate_lines`` and
    ``compare_lines`` are the values of ``Rollout-Gate`` / ``Rollout-Compare`` as written,
    typed by :attr:`gates` and :attr:`comparisons`. ``flags`` keeps every ``Rollout-Flag``
    (the runner writes one: :attr:`flag`); every other trailer its first value.

    A NamedTuple rather than a frozen dataclass: ``rollout history`` builds one per commit,
    20,000 of them on a long history, and a tuple is built several times faster.
    """

    subject: str
    flags: tuple[str, ...]
    action: str
    from_percentage: float | None = None
    to_percentage: float | None = None
    phase: str | None = None
    plan: str | None = None
    plan_digest: str | None = None
    reason: str | None = None
    body: tuple[str, ...] = ()
    state_before: str | None = None
    state_after: str | None = None
    gate_lines: tuple[str, ...] = ()
    compare_lines: tuple[str, ...] = ()
    requested_by: str | None = None
    approved_by: str | None = None
    reverted_commit: str | None = None
    reverted_by: str | None = None
    #: ``Rollout-Environment``: None in a repository without environments.
    environment: str | None = None

    @property
    def flag(self) -> str:
        return self.flags[0] if self.flags else ""

    @property
    def gates(self) -> tuple[GateResult, ...]:
        """The ``Rollout-Gate`` values that follow the grammar, typed (the others left out)."""
        return tuple(g for g in map(parse_gate, self.gate_lines) if g is not None)

    @property
    def comparisons(self) -> tuple[Comparison, ...]:
        """The ``Rollout-Compare`` values that follow the grammar, typed."""
        return tuple(c for c in map(parse_compare, self.compare_lines) if c is not None)


# --- percentages and the subject ----------------------------------------------------------------


def _pct(p: float | None) -> str:
    return "none" if p is None else pct(p)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def subject_line(action: str, flag: str, frm: float | None, to: float | None,
                 reverted_commit: str | None = None, approved_step: int | None = None,
                 environment: str | None = None) -> str:
    """The subject of a runner commit: ``rollout(flag): 10% → 25%``, ``rollout(flag):
    rollback 25% → 0%``... (``approved_step``: the index of the step an approval is for);
    with an ``environment``: ``rollout(flag@production): 10% → 25%``."""
    head = f"rollout({flag}):" if environment is None else f"rollout({flag}@{environment}):"
    a, f, t = action, _pct(frm), _pct(to)
    if a == "start":
        return f"{head} start at {t}%"
    if a in ("advance", "complete"):
        return f"{head} {f}% → {t}%"
    if a == "rollback":
        return f"{head} rollback {f}% → {t}%"
    if a == "pause":
        return f"{head} pause at {t}%"
    if a == "resume":
        return f"{head} resume at {t}%"
    if a == "retry":
        return f"{head} retry from {t}%"
    if a == "hold":
        return f"{head} hold at {t}% after revert of {(reverted_commit or '')[:7]}"
    if a == "replan":
        return f"{head} replan at {t}%"
    if a == "cleanup":
        return f"{head} remove orphaned state"
    if a == "observe":
        return f"{head} observe at {t}%"
    if a == "approve":
        return f"{head} approve step {(approved_step or 0) + 1} at {t}%"
    raise ValueError(f"no commit for {a}")


def subject(d: Decision) -> str:
    assert d.action is not None
    return subject_line(d.action.value, d.flag, d.from_percentage, d.to_percentage,
                        d.reverted_commit, d.after.approved_step if d.after else None,
                        d.environment)


# --- Rollout-Gate ---------------------------------------------------------------------------

_GATE = re.compile(r"(?P<name>[^=\s]+)=(?P<value>\S+) (?P<verdict>pass|fail|inconclusive|error)"
                   r" \((?P<threshold>.*)\)(?P<dry> dry-run)?")


def _value(g: GateResult) -> str:
    return "none" if g.value is None else f"{g.value:g}"


def gate_trailer(g: GateResult) -> str:
    """``name=value verdict (threshold)[ dry-run]``, the value of a ``Rollout-Gate``."""
    dry = " dry-run" if g.dry_run else ""
    return f"{g.name}={_value(g)} {g.verdict.value} ({g.threshold}){dry}"


def parse_gate(text: str) -> GateResult | None:
    """A ``Rollout-Gate`` value (:func:`gate_trailer`'s grammar) as a gate result; None when
    it does not follow the grammar. A value that is not a finite number reads as none."""
    from runner.model import GateResult, Verdict  # typed on use: see the module docstring

    m = _GATE.fullmatch(text.strip())
    if m is None:
        return None
    value = _number(m["value"]) if m["value"] != "none" else None
    if value is not None and not math.isfinite(value):
        value = None  # JSON has no NaN or infinity
    return GateResult(m["name"], Verdict(m["verdict"]), value, m["threshold"], bool(m["dry"]))


#: The threshold of an absolute gate with a confidence (``<= 1 at 95 %``, ``Gate.threshold``).
_CONFIDENT_THRESHOLD = re.compile(r".* at [0-9.e+-]+ %")


def judged_since_step(g: GateResult) -> bool:
    """Whether ``g`` judged the counts since the step started rather than the source's
    window: a comparison, or an absolute gate with a confidence."""
    return (g.name.startswith("compare.") or g.counts is not None
            or _CONFIDENT_THRESHOLD.fullmatch(g.threshold) is not None)


def evidence_line(g: GateResult, window: str) -> str:
    """A gate in words, one line of a runner commit's body."""
    if judged_since_step(g):  # cumulative since the step started, not the window
        window = "since the step started"
    extra = ", dry run" if g.dry_run else ""
    detail = f" — {g.detail}" if g.detail else ""
    return (f"{g.name} = {_value(g)} (threshold {g.threshold or 'none'}, window {window}{extra})"
            f": {g.verdict.value}{detail}")


# --- Rollout-Compare ------------------------------------------------------------------------


class Comparison(NamedTuple):
    """A ``Rollout-Compare`` value: a comparison gate's cohorts as the commit shows them
    (``diff`` is the difference the runner computed before rounding, as shown)."""

    name: str
    cohorts: CohortEvidence
    diff: float | None
    verdict: str
    dry_run: bool = False


def _rate(x: float | None) -> str:
    return "none" if x is None else f"{x:.3g}%"


def _points(x: float) -> str:
    return f"{x:+.3g}"


def _cohort_text(c: CohortEvidence, diff: float | None) -> str:
    parts = [f"treatment {_rate(c.treatment_rate)} (n={c.treatment_requests:,})",
             f"control {_rate(c.control_rate)} (n={c.control_requests:,})"]
    if diff is not None:
        parts.append(f"diff {_points(diff)} pp")
    if c.low is not None and c.high is not None:
        parts.append(f"[{_points(c.low)}, {_points(c.high)}] at {c.confidence * 100:.4g}%")
    else:
        parts.append("no interval yet")
    parts.append(f"margin {c.margin:g} pp")
    return " ".join(parts)


def _diff(c: CohortEvidence) -> float | None:
    if c.treatment_rate is None or c.control_rate is None:
        return None
    return c.treatment_rate - c.control_rate


def cohort_text(c: CohortEvidence) -> str:
    """Treatment against control in one bounded line: ``treatment 5.1% (n=1,204) control
    0.3% (n=22,870) diff +4.8 pp [+3.9, +5.7] margin 0.5 pp``."""
    return _cohort_text(c, _diff(c))


def comparison_of(g: GateResult) -> Comparison:
    """The ``Rollout-Compare`` of a result with cohort evidence."""
    assert g.cohorts is not None
    return Comparison(g.name.removeprefix("compare."), g.cohorts, _diff(g.cohorts),
                      g.verdict.value, g.dry_run)


def format_comparison(c: Comparison) -> str:
    dry = " dry-run" if c.dry_run else ""
    return f"{c.name} {_cohort_text(c.cohorts, c.diff)}: {c.verdict}{dry}"


def compare_trailer(g: GateResult) -> str:
    """``error_rate treatment 5.1% (n=…) control 0.3% (n=…) diff +4.8 pp [+3.9, +5.7] at
    99.2% margin 0.5 pp: fail``; only for a result with cohort evidence."""
    return format_comparison(comparison_of(g))


_RATE = r"(none|[-+0-9.e]+%)"
_COUNT = r"([0-9,]+)"
_POINTS = r"([-+][-+0-9.e]+|[-+]?(?:inf|nan))"
_COMPARE = re.compile(
    rf"(?P<name>\S+) treatment {_RATE} \(n={_COUNT}\) control {_RATE} \(n={_COUNT}\)"
    rf"(?: diff {_POINTS} pp)?"
    rf" (?:\[{_POINTS}, {_POINTS}\] at (?P<conf>[0-9.e+-]+)%|no interval yet)"
    r" margin (?P<margin>[-+0-9.e]+|inf|nan) pp: (?P<verdict>pass|fail|inconclusive|error)"
    r"(?P<dry> dry-run)?")


def parse_compare(text: str) -> Comparison | None:
    """A ``Rollout-Compare`` value (:func:`compare_trailer`'s grammar); None when it does
    not follow it. Confidence without an interval is not written: it reads as 0."""
    from runner.model import CohortEvidence  # typed on use: see the module docstring

    m = _COMPARE.fullmatch(text.strip())
    if m is None:
        return None
    t_rate, t_n, c_rate, c_n, diff, low, high = m.group(2, 3, 4, 5, 6, 7, 8)

    def rate(x: str) -> float | None:
        return None if x == "none" else _number(x[:-1])

    conf = _number(m["conf"])
    cohorts = CohortEvidence(
        rate(t_rate), rate(c_rate), int(t_n.replace(",", "")), int(c_n.replace(",", "")),
        _number(low), _number(high), _number(m["margin"]) or 0.0,
        0.0 if conf is None else conf / 100)
    return Comparison(m["name"], cohorts, _number(diff), m["verdict"], bool(m["dry"]))


# --- the whole message --------------------------------------------------------------------------


def from_decision(d: Decision, plan: RolloutPlan | None, state_before: str | None = None,
                  state_after: str | None = None) -> RunnerMessage:
    """The message of ``d``; ``state_before``/``state_after`` are the digests of the state
    file the commit starts from and writes (``sha256:<hex>`` or ``none``)."""
    assert d.action is not None
    window = plan.metrics.window if plan and plan.metrics else "5m"
    reason = record_line(d.reason)
    body = [reason]
    if d.gates:
        body.append("")
        body.extend(record_line(evidence_line(g, window)) for g in d.gates)
    return RunnerMessage(
        subject=subject(d), flags=(d.flag,), action=d.action.value,
        from_percentage=d.from_percentage, to_percentage=d.to_percentage,
        phase=d.after.phase.value if d.after else "removed", plan=d.plan,
        plan_digest=d.plan_digest, reason=reason, body=tuple(body),
        state_before=state_before, state_after=state_after,
        gate_lines=tuple(record_line(gate_trailer(g)) for g in d.gates),
        compare_lines=tuple(record_line(compare_trailer(g)) for g in d.gates
                            if g.cohorts is not None),
        requested_by=record_line(d.requested_by) if d.requested_by else None,
        approved_by=record_line(d.approved_by) if d.approved_by else None,
        reverted_commit=d.reverted_commit or None,
        reverted_by=record_line(d.reverted_by) if d.reverted_by else None,
        environment=d.environment)


def message(d: Decision, plan: RolloutPlan | None, state_before: str | None = None,
            state_after: str | None = None) -> str:
    """The commit message of ``d`` (see :func:`from_decision`)."""
    return format_message(from_decision(d, plan, state_before, state_after))


#: A line break or another control character: a text holding one is recorded again.
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _line(text: str) -> str:
    """A text field as written: already one recorded line (the runner's own records, kept
    byte for byte), else made one by :func:`record_line` (a record built by hand)."""
    return record_line(text) if _BREAKS.search(text) is not None else text


def _token(text: str | None) -> str:
    """A name or digest the runner writes as is: one that could break a line is refused."""
    s = "none" if text is None else text
    if "\n" in s or "\r" in s:
        raise ValueError(f"not one line: {s!r}")
    return s


def format_message(m: RunnerMessage) -> str:
    """``m`` as the commit message: subject, blank line, body, blank line, trailers."""
    optional = (
        (REQUESTED_BY, m.requested_by, True), (APPROVED_BY, m.approved_by, True),
        (REVERTED_COMMIT, m.reverted_commit, False), (REVERTED_BY, m.reverted_by, True))
    trailers = [
        f"{FLAG}: {_token(m.flag)}",
        *([f"{ENVIRONMENT}: {_token(m.environment)}"] if m.environment is not None else []),
        f"{ACTION}: {_token(m.action)}",
        f"{FROM}: {_pct(m.from_percentage)}",
        f"{TO}: {_pct(m.to_percentage)}",
        f"{PHASE}: {_token(m.phase)}",
        f"{PLAN}: {_token(m.plan)}",
        f"{PLAN_DIGEST}: {_token(m.plan_digest)}",
        *([f"{STATE_BEFORE}: {_token(m.state_before)}"] if m.state_before is not None else []),
        *([f"{STATE_AFTER}: {_token(m.state_after)}"] if m.state_after is not None else []),
        *(f"{GATE}: {_line(g)}" for g in m.gate_lines),
        *(f"{COMPARE}: {_line(c)}" for c in m.compare_lines),
        f"{REASON}: {_line(m.reason or '')}",
        *(f"{key}: {_line(v) if text else _token(v)}" for key, v, text in optional if v),
    ]
    body = "\n".join(map(_line, m.body))
    return f"{_token(m.subject)}\n\n{body}\n\n" + "\n".join(trailers) + "\n"


def parse_trailers(trailers: Iterable[tuple[str, str]], subject: str = "",
                   body: Sequence[str] = ()) -> RunnerMessage | None:
    """The runner message whose trailers are ``trailers`` (``(key, value)`` in order, as
    :func:`runner.trailers.split_message` finds them); None when they hold no
    ``Rollout-Action`` (not a runner commit)."""
    first: dict[str, str] = {}
    flags: list[str] = []
    gates: list[str] = []
    compare: list[str] = []
    for key, value in trailers:
        if key == GATE:
            gates.append(value)
        elif key == COMPARE:
            compare.append(value)
        elif key == FLAG:
            flags.append(value)
        elif key not in first:
            first[key] = value
    action = first.get(ACTION)
    if not action:
        return None
    get = first.get
    return RunnerMessage(
        subject, tuple(flags), action, _number(get(FROM)), _number(get(TO)), get(PHASE),
        get(PLAN), get(PLAN_DIGEST), get(REASON), tuple(body), get(STATE_BEFORE),
        get(STATE_AFTER), tuple(gates), tuple(compare), get(REQUESTED_BY), get(APPROVED_BY),
        get(REVERTED_COMMIT), get(REVERTED_BY), get(ENVIRONMENT))


def parse_message(text: str) -> RunnerMessage | None:
    """A whole commit message (``%B``) as the runner's; None when it is not a runner commit.
    Trailers are found as git finds them (``runner.trailers``): a trailer-looking line
    inside the body is not a trailer."""
    subject_text, body_start, trailers = split_message(text)
    body: list[str] = []
    if body_start >= 0:
        end = len(text.rstrip("\n"))
        cut = text.rfind("\n\n", body_start - 1, end)
        if cut >= body_start:
            body = text[body_start:cut].split("\n")
    return parse_trailers(trailers, subject_text, body)


def is_runner_message(text: str) -> bool:
    """Whether ``text`` is a runner commit message (it carries ``Rollout-Action``)."""
    return parse_message(text) is not None
