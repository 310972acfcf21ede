"""``rollout history``: the audit trail of flags and rollouts, from git alone.

One ``git log`` (``_log``, the one reader, for ``history`` and ``current_runs`` alike) reads
every commit that touched the flags and rollouts folders: the raw message (``%B``, read as
the runner's by ``runner/reconcile/message.py`` in ``_entry``, the one parse) and the changed
files from ``--raw``, NUL-separated (``-z``, read by position with ``runner.git.z_records``:
no character of a message or a path can shift a field, and paths are never quoted).
Static percentages of hand-edited flag files come from one ``git cat-file --batch`` over the
blobs ``--raw`` names. Nothing is read commit by commit. The two formats are rendered here:
JSON as ``json.dumps(entry.as_dict())`` writes it (``render_json_entry``), text by
``render_text_entry``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from json.encoder import encode_basestring_ascii as _encode_string
from pathlib import Path
from typing import Any

from runner.git import REVERTS, is_null_object, raw_change, read_blobs, stream, z_records
from runner.load.layout import FLAT, state_dir, state_layout_of
from runner.load.yamlsafe import YamlError, load_text
from runner.percent import percent
from runner.reconcile import message
from runner.safetext import safe_line
from runner.trailers import split_message, trailer_paragraph

#: The trailers of the contract in docs/runner.md (runner/reconcile/message.py writes and reads them).
TRAILER_KEYS = message.TRAILER_KEYS

#: The raw message (%B), the very bytes the plain ``git log --format=%B`` prints: git's
#: ``%(trailers:...)`` made git itself ~25 % slower than that baseline, while finding the
#: trailer block of a message in Python (runner/trailers.py) costs one regex call.
LOG_FORMAT = "%x00".join(["%H", "%aI", "%an", "%ae", "%B"])
#: ``(":<modes> <old blob> <new blob> <status>", path)`` per changed file, as ``--raw -z``
#: prints them.
RawChanges = Sequence[tuple[str, str]]
#: One commit of ``LOG_FORMAT`` as ``runner.git.z_records`` reads it: the five fields, the
#: changed files.
RawRecord = tuple[list[str], list[tuple[str, str]]]



# Plain slotted classes rather than dataclasses: generating a dataclass's methods compiles
# source at import time, ~10 ms of a ``rollout history`` run.
class Change:
    __slots__ = ("new_blob", "old_blob", "path", "status")

    def __init__(self, path: str, status: str, old_blob: str, new_blob: str) -> None:
        self.path = path
        self.status = status  # A, M, D, T...
        self.old_blob = old_blob
        self.new_blob = new_blob

    def __repr__(self) -> str:
        return f"Change({self.path!r}, {self.status!r}, {self.old_blob!r}, {self.new_blob!r})"


class Entry:
    """One commit of the audit trail."""

    __slots__ = (
        "_changes",
        "action",
        "after",
        "author",
        "before",
        "compare",
        "email",
        "environment",
        "flags",
        "gates",
        "held_after_revert_of",
        "phase",
        "plan",
        "raw",
        "reason",
        "reconciles",
        "rendered",
        "requested_by",
        "reverted_by",
        "reverted_by_person",
        "reverts",
        "runner",
        "sha",
        "subject",
        "time",
    )

    def __init__(self, sha: str, time: str, author: str, email: str, subject: str,
                 flags: list[str], action: str, before: float | None = None,
                 after: float | None = None, phase: str | None = None,
                 plan: str | None = None, gates: list[str] | None = None,
                 reason: str | None = None, requested_by: str | None = None,
                 runner: bool = False, reverts: str | None = None,
                 reverted_by: list[str] | None = None, held_after_revert_of: str | None = None,
                 reverted_by_person: str | None = None, reconciles: str | None = None,
                 raw: RawChanges = (), compare: list[str] | None = None,
                 environment: str | None = None) -> None:
        self.sha, self.time, self.author, self.email = sha, time, author, email
        self.subject, self.flags, self.action = subject, flags, action
        #: ``Rollout-Environment`` (repositories with environments only; else None, and the
        #: JSON record has no such field)
        self.environment = environment
        self.before, self.after, self.phase, self.plan = before, after, phase, plan
        self.gates = [] if gates is None else gates
        #: Comparison gates' evidence (Rollout-Compare), one line each.
        self.compare = [] if compare is None else compare
        self.reason, self.requested_by, self.runner = reason, requested_by, runner
        self.reverts = reverts
        self.reverted_by = [] if reverted_by is None else reverted_by
        #: A runner hold names the revert it reconciled.
        self.held_after_revert_of = held_after_revert_of
        self.reverted_by_person = reverted_by_person
        #: The human revert commit a runner hold reconciled.
        self.reconciles = reconciles
        #: ``git log --raw -z`` changes of the commit, parsed on first use (most runner commits'
        #: never are: their flag is in their trailers)
        self.raw = raw
        self._changes: list[Change] | None = None
        #: ``(renderer, text)``: the entry already rendered while git was still writing the
        #: log (see ``read_log``); whatever changes the entry afterwards drops it
        self.rendered: tuple[Callable[[Entry], str], str] | None = None

    def __repr__(self) -> str:
        return f"Entry({self.sha[:7]} {self.action} {self.subject!r})"

    @property
    def changes(self) -> list[Change]:
        if self._changes is None:
            self._changes = parse_raw(self.raw)
        return self._changes

    def as_dict(self) -> dict[str, Any]:
        def num(v: float | None) -> float | int | None:
            return None if v is None else int(v) if float(v).is_integer() else v

        return {
            "sha": self.sha, "time": self.time, "author": self.author, "email": self.email,
            "subject": self.subject, "flags": self.flags, "action": self.action,
            "from": num(self.before), "to": num(self.after), "phase": self.phase,
            "plan": self.plan, "gates": self.gates, "compare": self.compare,
            "reason": self.reason,
            "requested_by": self.requested_by, "runner": self.runner, "reverts": self.reverts,
            "reverted_by": self.reverted_by, "held_after_revert_of": self.held_after_revert_of,
            "reverted_by_person": self.reverted_by_person, "reconciles": self.reconciles,
            "files": ([{"path": path, "status": _status(meta)} for meta, path in self.raw]
                      if self._changes is None  # straight from --raw: no Change objects
                      else [{"path": c.path, "status": c.status} for c in self._changes]),
            **({"environment": self.environment} if self.environment is not None else {}),
        }


def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    for suffix in (".state.json", ".yaml", ".yml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _log(root: Path, paths: Sequence[str], since: str | None = None
         ) -> Generator[RawRecord, None, None]:
    """The one reader: ``git log`` of ``paths``, newest first, one record a commit as git
    streams it (closing the generator stops git)."""
    args = ["log", "-z", "--no-color", "--no-renames", "--raw", "--no-abbrev",
            f"--format={LOG_FORMAT}"]
    if since:
        args.append(f"--since={since}")
    chunks = stream(root, [*args, "--", *paths])
    try:
        yield from z_records(chunks, 5)
    finally:
        chunks.close()


def read_log(root: Path, paths: Sequence[str], since: str | None = None,
             only_flag: str | None = None,
             render: Callable[[Entry], str] | None = None) -> list[Entry]:
    """Every commit touching ``paths``, newest first: ONE git process, parsed as it streams.

    With ``only_flag``, runner commits about other flags (one state file, another
    Rollout-Flag) are dropped as they are read. With ``render``, the runner's one-file
    commits (nearly all of a long history, and final as read unless a revert links them
    later) are rendered as they are read too: that work then runs while git is still
    writing, on the other core, instead of after it."""
    entries: list[Entry] = []
    for record in _log(root, paths, since):
        e = _entry(record, only_flag)
        if e is None:
            continue
        if render is not None and e.runner and len(e.raw) <= 1 and e.action != "hold":
            e.rendered = (render, render(e))
        entries.append(e)
    return entries


def parse_raw(raw: RawChanges) -> list[Change]:
    changes = []
    for meta, path in raw:
        _, old, new, status = raw_change(meta)
        changes.append(Change(path, status, old, new))
    return changes


def _status(meta: str) -> str:
    return meta[meta.rfind(" ") + 1:][:1]


_ACTION_LINE = f"\n{message.ACTION}:"


def _entry(record: RawRecord, only_flag: str | None = None) -> Entry | None:
    """The one parse: a ``LOG_FORMAT`` record as an entry, its trailers read by
    ``runner.reconcile.message``; None for a runner commit about another flag than
    ``only_flag`` (one file changed, another ``Rollout-Flag``)."""
    (sha, when, author, email, text), raw = record
    one_file = len(raw) <= 1
    if (only_flag and one_file and only_flag not in text
            and (block := trailer_paragraph(text)) is not None
            and _ACTION_LINE in "\n" + block):
        # another flag's runner commit (see _history: attributed by trailer), known
        # without parsing its trailers: only_flag can be no Rollout-Flag value
        return None
    subject, body_start, trailers = split_message(text)
    m = message.parse_trailers(trailers, subject)
    if m is None:
        flags = [v for k, v in trailers if k == message.FLAG]
        e = Entry(sha, when, author, email, subject, flags, "", raw=raw)
        if body_start >= 0 and (r := REVERTS.search(text, body_start)):
            e.action, e.reverts = "revert", r[1]
        return e
    if only_flag and one_file and only_flag not in m.flags:
        return None  # another flag's runner commit (see _history: attributed by trailer)
    return Entry(sha, when, author, email, subject, list(m.flags), m.action, m.from_percentage,
                 m.to_percentage, m.phase, m.plan, list(m.gate_lines), m.reason,
                 m.requested_by, True, None, [], m.reverted_commit, m.reverted_by, None,
                 raw=raw, compare=list(m.compare_lines), environment=m.environment)


def _blob_percentages(root: Path, blobs: Iterable[str]) -> dict[str, float | None]:
    """Static serving percentage of flag files by blob id, through one ``cat-file --batch``."""
    result: dict[str, float | None] = {}
    for blob, data in read_blobs(root, blobs).items():
        try:
            doc = load_text(data.decode("utf-8"))
        except (YamlError, UnicodeDecodeError):
            result[blob] = None
            continue
        result[blob] = static_percentage(doc) if isinstance(doc, dict) else None
    return result


def static_percentage(doc: dict[str, Any]) -> float | None:
    """What a flag file serves on its own (a rollout's state aside), as in ``rollout plan``."""
    if doc.get("enabled", True) is False:
        return 0.0
    pct = doc.get("percentage")
    rollout_variant = doc.get("rollout_variant", "on")
    if isinstance(pct, int | float) and not isinstance(pct, bool):
        return float(pct)
    if isinstance(pct, dict):
        share = pct.get(rollout_variant, 0)
        return float(share) if isinstance(share, int | float) else None
    return 100.0 if doc.get("default_variant", "off") == rollout_variant else 0.0


def _human_action(changes: list[Change], flags_dir: str) -> str:
    kinds = []
    for c in changes:
        what = ("flag" if c.path.startswith(flags_dir + "/") else
                "state" if c.path.endswith(".state.json") else "plan")
        verb = {"A": "add", "D": "remove"}.get(c.status, "edit")
        kinds.append(f"{what}-{verb}")
    unique = sorted(set(kinds))
    if len(unique) == 1:
        return unique[0]
    return "add" if all(k.endswith("-add") for k in unique) else "edit"


def _state_folder(root: Path, rollouts_dir: str) -> list[str]:
    """The state files' own folder in the fanout layout (``runner.load.layout``); none in
    the flat one, whose state files are in the rollouts folder."""
    layout = state_layout_of(root)
    return [] if layout == FLAT else [state_dir(rollouts_dir, layout)]


def history(root: Path, flag: str | None = None, since: str | None = None,
            flags_dir: str = "flags", rollouts_dir: str = "rollouts",
            plan_names: Iterable[str] = (),
            render: Callable[[Entry], str] | None = None) -> list[Entry]:
    """The audit trail, newest first; with ``flag``, only the commits about that flag.

    ``render`` (``render_text_entry`` or ``render_json_entry``) renders entries ahead, for
    ``format_text`` / ``format_json`` to reuse; the result is the same without it."""
    flags_dir, rollouts_dir = flags_dir.strip("/"), rollouts_dir.strip("/")
    if flag:
        paths = [f"{flags_dir}/{flag}.yaml", f"{flags_dir}/{flag}.yml", rollouts_dir]
    else:
        paths = [flags_dir, rollouts_dir]
    paths += _state_folder(root, rollouts_dir)
    return _history(root, flag, since, flags_dir, rollouts_dir, plan_names, paths, render)


def _history(root: Path, flag: str | None, since: str | None, flags_dir: str,
             rollouts_dir: str, plan_names: Iterable[str], paths: list[str],
             render: Callable[[Entry], str] | None) -> list[Entry]:
    entries = read_log(root, paths, since, flag, render)
    # which flag each plan file belongs to: the runner's own trailers say it, and the
    # current plans (plan_names) fill in plans the runner never moved
    plan_flag: dict[str, str] = {}
    environments: set[str] = set()  # as the runner's trailers name them
    for e in entries:
        if e.runner and e.plan and e.flags:
            plan_flag.setdefault(e.plan, e.flags[0])
        if e.environment is not None:
            environments.add(e.environment)
    if flag:
        for name in plan_names:
            plan_flag.setdefault(name, flag)
    flags_prefix = flags_dir + "/"
    rollouts_prefix = tuple(f"{d}/" for d in (rollouts_dir, *_state_folder(root, rollouts_dir)))
    kept: list[Entry] = []
    for e in entries:
        if not e.runner or len(e.raw) > 1:  # a person's commit, or several files
            touched = set(e.flags)
            for c in e.changes:
                if c.path.startswith(flags_prefix):
                    touched.add(_stem(c.path))
                elif c.path.startswith(rollouts_prefix):
                    stem = _stem(c.path)
                    plan, dot, env = stem.rpartition(".")
                    if stem not in plan_flag and dot and env in environments:
                        stem = plan  # <plan>.<environment>.state.json
                    touched.add(plan_flag.get(stem, stem))
            e.flags = sorted(touched)
            e.rendered = None
            if not e.runner and not e.reverts:
                e.action = _human_action(e.changes, flags_dir)
        if flag and flag not in e.flags:
            continue
        kept.append(e)
    _link(kept)
    _flag_edit_percentages(root, kept, flags_dir)
    return kept


def of_environment(entries: list[Entry], environment: str) -> list[Entry]:
    """The entries of ``environment``: the runner's commits there, and the other commits
    that change no other environment's state file (edits of flags and plans, a person's
    revert of this environment's step)."""
    own = f".{environment}.state.json"
    return [e for e in entries if e.environment == environment or (
        e.environment is None and not any(c.path.endswith(".state.json")
                                          and not c.path.endswith(own) for c in e.changes))]


def _link(entries: list[Entry]) -> None:
    """Connect reverts to what they revert (abbreviated shas allowed) and fill percentages."""
    by_sha = {e.sha: e for e in entries}

    def find(prefix: str) -> Entry | None:
        if prefix in by_sha:
            return by_sha[prefix]
        return next((e for s, e in by_sha.items() if s.startswith(prefix)), None)

    # oldest first, so a revert of a revert sees the percentages of the first revert
    for e in reversed(entries):
        if e.reverts:
            target = find(e.reverts)
            if target is None:
                continue
            e.reverts = target.sha
            target.reverted_by.append(e.sha)
            e.rendered = target.rendered = None
            if e.before is None and e.after is None:
                e.before, e.after = target.after, target.before
        if e.held_after_revert_of:
            target = find(e.held_after_revert_of)
            if target is not None:
                e.held_after_revert_of = target.sha
                e.rendered = None
                e.reconciles = next((s for s in target.reverted_by), None)


def _flag_edit_percentages(root: Path, entries: list[Entry], flags_dir: str) -> None:
    prefix = flags_dir + "/"
    edits: list[tuple[Entry, Change]] = []
    for e in entries:
        if e.runner or e.before is not None or e.after is not None:
            continue
        changed = [c for c in e.changes if c.path.startswith(prefix)]
        # several flags in one commit: no single before/after. Decided once per commit (a
        # commit importing 1,000 flag files asked it of every file: quadratic)
        if len({_stem(c.path) for c in changed}) == 1:
            edits.extend((e, c) for c in changed)
    if not edits:
        return
    pcts = _blob_percentages(root, [b for _, c in edits for b in (c.old_blob, c.new_blob)])
    for e, c in edits:
        e.rendered = None
        e.before = None if is_null_object(c.old_blob) else pcts.get(c.old_blob)
        e.after = None if is_null_object(c.new_blob) else pcts.get(c.new_blob)


def format_json(entries: list[Entry]) -> str:
    """A JSON array, one entry a line: ``json.dumps(entry.as_dict())`` per line."""
    return "".join(json_pieces(entries))


def json_pieces(entries: list[Entry], batch: int = 2000) -> Iterator[str]:
    """``format_json`` in pieces of ``batch`` entries: written one after the other they
    spare building (and encoding) one string of the whole output, ~14 MB on 20,000."""
    if not entries:
        yield "[]\n"
        return
    lines = _rendered(entries, render_json_entry)
    yield "["
    for i in range(0, len(lines), batch):
        yield "\n" + ",\n".join(lines[i: i + batch]) + ("," if i + batch < len(lines) else "")
    yield "\n]\n"


def _rendered(entries: list[Entry], render: Callable[[Entry], str]) -> list[str]:
    return [r[1] if (r := e.rendered) is not None and r[0] is render else render(e)
            for e in entries]


def render_json_entry(e: Entry) -> str:
    """One entry exactly as ``json.dumps(e.as_dict())`` writes it (a test holds them equal),
    from a template around the standard library's C string encoder: the dict and the
    ``json.dumps`` call per entry cost ~5 µs more, 13 % of ``rollout history --format json``
    on 20,000 commits, and orjson writes other separators."""
    q = _encode_string
    if e._changes is None:  # straight from the --raw lines: no Change objects to build
        files = ", ".join([f'{{"path": {q(path)}, "status": {q(_status(meta))}}}'
                           for meta, path in e.raw])
    else:
        files = ", ".join([f'{{"path": {q(c.path)}, "status": {q(c.status)}}}'
                           for c in e._changes])
    # the optional fields inline (no call per field: 20,000 entries of 21 fields)
    return (
        f'{{"sha": {q(e.sha)}, "time": {q(e.time)}, "author": {q(e.author)}, '
        f'"email": {q(e.email)}, "subject": {q(e.subject)}, "flags": {_json_strings(e.flags)}, '
        f'"action": {q(e.action)}, "from": {_json_number(e.before)}, '
        f'"to": {_json_number(e.after)}, '
        f'"phase": {"null" if (v := e.phase) is None else q(v)}, '
        f'"plan": {"null" if (v := e.plan) is None else q(v)}, '
        f'"gates": {_json_strings(e.gates)}, '
        f'"compare": {_json_strings(e.compare)}, '
        f'"reason": {"null" if (v := e.reason) is None else q(v)}, '
        f'"requested_by": {"null" if (v := e.requested_by) is None else q(v)}, '
        f'"runner": {"true" if e.runner else "false"}, '
        f'"reverts": {"null" if (v := e.reverts) is None else q(v)}, '
        f'"reverted_by": {_json_strings(e.reverted_by)}, '
        f'"held_after_revert_of": {"null" if (v := e.held_after_revert_of) is None else q(v)}, '
        f'"reverted_by_person": {"null" if (v := e.reverted_by_person) is None else q(v)}, '
        f'"reconciles": {"null" if (v := e.reconciles) is None else q(v)}, '
        f'"files": [{files}]'
        + ("}" if e.environment is None else f', "environment": {q(e.environment)}}}'))


def _json_strings(values: list[str]) -> str:
    return "[" + ", ".join(map(_encode_string, values)) + "]" if values else "[]"


def _json_number(v: float | None) -> str:
    if v is None:
        return "null"
    if v.is_integer():
        return str(int(v))
    return json.dumps(v)  # repr, or NaN / Infinity as json.dumps writes them


def format_text(entries: list[Entry]) -> str:
    return "".join(text_pieces(entries))


def text_pieces(entries: list[Entry], batch: int = 2000) -> Iterator[str]:
    """``format_text`` in pieces of ``batch`` entries (see ``json_pieces``), each entry
    rendered once (ahead, while git was writing, when it could be)."""
    for i in range(0, len(entries), batch):
        yield "\n".join(_rendered(entries[i: i + batch], render_text_entry)) + "\n"


def _text_lines(e: Entry | _SafeLineView) -> list[str]:
    """The lines of one entry in the text format."""
    before, after = e.before, e.after
    moved = "" if before is None and after is None else f"{percent(before)} → {percent(after)}"
    lines = [f"{e.time}  {e.sha[:7]}  {e.action:<11} {moved:<14} "
             f"{','.join(e.flags)}  {e.author} <{e.email}>", f"    {e.subject}"]
    if e.gates:
        lines.append("    gates: " + "; ".join(e.gates))
    lines.extend(f"    compare: {line}" for line in e.compare)
    if e.reason:
        lines.append(f"    reason: {e.reason}")
    if e.requested_by:
        # an approval's requester is its approver (Rollout-Approved-By holds the same)
        who = "approved by" if e.action == "approve" else "requested by"
        lines.append(f"    {who}: {e.requested_by}")
    if e.reverts:
        lines.append(f"    reverts {e.reverts[:7]}")
    lines.extend(f"    reverted by {sha[:7]}" for sha in e.reverted_by)
    if e.held_after_revert_of:
        who = f" by {e.reverted_by_person}" if e.reverted_by_person else ""
        by = f" ({e.reconciles[:7]})" if e.reconciles else ""
        lines.append(f"    holds after revert{who}{by} of {e.held_after_revert_of[:7]}")
    return lines


#: What would make a line of the text format more than one harmless line: a control
#: character, a line separator or bidirectional override, a GitHub workflow command.
_LINE_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
                          "\u2066-\u2069]|^\\s*(?:::|##\\[)", re.MULTILINE)
#: A line longer than this on average holds an overlong field.
_LINE_ROOM = 400


def render_text_entry(e: Entry) -> str:
    """One entry's lines of the text format (no final line break), each one harmless line:
    an entry whose text has a stray line break, a control character, a line GitHub would
    run as a workflow command or an overlong field is rendered again from
    :class:`_SafeLineView`. The check is one regular expression over the text, and the
    lines are counted from the very list they are joined from."""
    lines = _text_lines(e)
    text = "\n".join(lines)
    if (text.count("\n") + 1 != len(lines) or len(text) > _LINE_ROOM * len(lines)
            or _LINE_UNSAFE.search(text) is not None):
        text = "\n".join(_text_lines(_SafeLineView(e)))
    return text


#: Text fields of an entry (commit messages, names, reasons: what people wrote) and the list
#: fields of strings; each read through safe_line by _SafeLineView.
_TEXT_FIELDS = frozenset({"action", "author", "email", "subject", "reason", "requested_by",
                          "sha", "time", "reverts", "held_after_revert_of",
                          "reverted_by_person", "reconciles"})
_LIST_FIELDS = frozenset({"flags", "gates", "compare", "reverted_by"})


class _SafeLineView:
    """An entry whose text fields read as :func:`runner.safetext.safe_line` makes them."""

    def __init__(self, entry: Entry) -> None:
        self._entry = entry

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._entry, name)
        if name in _TEXT_FIELDS and isinstance(value, str):
            return safe_line(value)
        if name in _LIST_FIELDS and isinstance(value, list):
            return [safe_line(v) if isinstance(v, str) else v for v in value]
        return value


#: At most this many commits of one rollout's current run ``current_runs`` returns.
RUN_LIMIT = 20


def current_runs(root: Path, runs: Mapping[str, tuple[str, str | None]],
                 rollouts_dir: str = "rollouts", limit: int = RUN_LIMIT,
                 slack: float = 86_400.0) -> dict[str, list[Entry]]:
    """What happened in the current run of each rollout, for ``rollout status``: its last
    ``limit`` commits, oldest first, back to (and with) the run's ``start`` or ``retry``.

    ``runs``: flag -> (plan name, the state's ``started_at``, ISO 8601 or None). Bounded:
    ONE ``git log`` of the rollouts folder, newest first, from ``slack`` seconds before the
    earliest ``started_at`` (a commit's date and the runner's ``--now`` may differ a little),
    stopped (git with it) as soon as every rollout has its run or ``limit`` commits.
    Runner commits count by their ``Rollout-Flag``; a person's commit by the state or plan
    file it changes (a revert, a hand edit); ``observe`` commits (counters only) do not."""
    if not runs:
        return {}
    rollouts_dir = rollouts_dir.strip("/")
    plan_flag = {plan: flag for flag, (plan, _) in runs.items()}
    starts = [s for _, s in runs.values()]
    since = None
    if all(starts):
        earliest = min(datetime.fromisoformat(str(s).replace("Z", "+00:00")) for s in starts)
        since = (earliest - timedelta(seconds=slack)).isoformat()
    found: dict[str, list[Entry]] = {flag: [] for flag in runs}
    open_runs = set(runs)
    folders = [rollouts_dir, *_state_folder(root, rollouts_dir)]
    prefix = tuple(f"{d}/" for d in folders)
    records = _log(root, folders, since)
    try:
        for record in records:
            e = _entry(record)
            if e is None:
                continue
            if e.action == "observe":
                continue
            if not e.runner or not e.flags:
                touched = {plan_flag.get(_stem(c.path)) for c in e.changes
                           if c.path.startswith(prefix)}
                e.flags = sorted(f for f in touched if f)
                if not e.reverts:  # only the rollouts folder is read: no flag file here
                    e.action = _human_action(e.changes, "\0")
            for flag in e.flags:
                if flag not in open_runs:
                    continue
                found[flag].append(e)
                if e.action in ("start", "retry") or len(found[flag]) >= limit:
                    open_runs.discard(flag)
            if not open_runs:
                break
    finally:
        records.close()
    for entries in found.values():
        _link(entries)
        entries.reverse()
    return found
