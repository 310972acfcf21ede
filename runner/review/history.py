"""``rollout history``: the audit trail of flags and rollouts, from git alone.

One ``git log`` reads every commit that touched the flags and rollouts folders, with the
runner's trailers (TRAILERS.md) pulled out by git's own ``%(trailers:...)`` formats and the
changed files from ``--raw``. Static percentages of hand-edited flag files come from one
``git cat-file --batch`` over the blobs ``--raw`` names. Nothing is read commit by commit.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.review.gitread import run_git, stream_git

# Record and field separators that cannot appear in a commit message git prints back.
RS, FS, VS = "\x1e", "\x1f", "\x1d"

#: Trailers TRAILERS.md defines, in the order the format asks git for them.
TRAILER_KEYS = ("Rollout-Flag", "Rollout-Action", "Rollout-From", "Rollout-To", "Rollout-Phase",
                "Rollout-Plan", "Rollout-Gate", "Rollout-Reason", "Rollout-Requested-By",
                "Rollout-Reverted-Commit", "Rollout-Reverted-By")

_HEAD_FIELDS = ("%H", "%aI", "%an", "%ae", "%s")
#: One trailers placeholder with every key (git parses the message once; one placeholder
#: per key costs git a parse each, ~3x the whole log), then the body for "This reverts".
LOG_FORMAT = RS + FS.join(
    [*_HEAD_FIELDS,
     "%(trailers:" + ",".join(f"key={k}" for k in TRAILER_KEYS) + ",unfold,separator=%x1d)",
     # the body, for "This reverts commit <sha>." (truncating it in git costs more than
     # passing it through)
     "%b"]) + FS

_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{7,40})")
_ZERO = re.compile(r"^0+$")


@dataclass(slots=True)
class Change:
    path: str
    status: str  # A, M, D, T...
    old_blob: str
    new_blob: str


@dataclass(slots=True)
class Entry:
    sha: str
    time: str
    author: str
    email: str
    subject: str
    flags: list[str]
    action: str
    before: float | None = None
    after: float | None = None
    phase: str | None = None
    plan: str | None = None
    gates: list[str] = field(default_factory=list)
    reason: str | None = None
    requested_by: str | None = None
    runner: bool = False
    reverts: str | None = None
    reverted_by: list[str] = field(default_factory=list)
    #: A runner hold names the revert it reconciled.
    held_after_revert_of: str | None = None
    reverted_by_person: str | None = None
    #: The human revert commit a runner hold reconciled.
    reconciles: str | None = None
    #: ``git log --raw`` lines of the commit, parsed on first use (most runner commits'
    #: never are: their flag is in their trailers)
    raw: str = ""
    _changes: list[Change] | None = None

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
            "plan": self.plan, "gates": self.gates, "reason": self.reason,
            "requested_by": self.requested_by, "runner": self.runner, "reverts": self.reverts,
            "reverted_by": self.reverted_by, "held_after_revert_of": self.held_after_revert_of,
            "reverted_by_person": self.reverted_by_person, "reconciles": self.reconciles,
            "files": [{"path": c.path, "status": c.status} for c in self.changes],
        }


def _float(v: str | None) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except ValueError:
        return None


def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    for suffix in (".state.json", ".yaml", ".yml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_log(root: Path, paths: Sequence[str], since: str | None = None,
             only_flag: str | None = None) -> list[Entry]:
    """Every commit touching ``paths``, newest first: ONE git process, parsed as it streams.

    With ``only_flag``, runner commits about other flags (one state file, another
    Rollout-Flag) are dropped as they are read."""
    args = ["-c", "core.quotePath=false", "log", "--no-color", "--no-renames", "--raw",
            "--no-abbrev", f"--format={LOG_FORMAT}"]
    if since:
        args.append(f"--since={since}")
    entries: list[Entry] = []
    pending = ""
    for text in stream_git(root, [*args, "--", *paths]):
        pending += text
        cut = pending.rfind(RS)
        if cut > 0:
            _parse(pending[:cut], entries, only_flag)
            pending = pending[cut:]
    _parse(pending, entries, only_flag)
    return entries


def parse_raw(raw: str) -> list[Change]:
    changes = []
    for line in raw.splitlines():
        # :100644 100644 <old blob> <new blob> M<TAB>path
        if line.startswith(":"):
            fields, _, path = line.partition("\t")
            parts = fields.split(" ")
            if len(parts) == 5:
                if path.startswith('"'):  # git quotes unusual names; ours never are
                    path = path.strip('"')
                changes.append(Change(path, parts[4][:1], parts[2], parts[3]))
    return changes


def _parse(text: str, entries: list[Entry], only_flag: str | None = None) -> None:
    for chunk in text.split(RS):
        if not chunk:
            continue
        sha, when, author, email, subject, trailer_text, body, raw = chunk.split(FS, 7)
        if (only_flag and "Rollout-Action: " in trailer_text
                and f"Rollout-Flag: {only_flag}{VS}" not in trailer_text + VS
                and raw.count("\n:") <= 1):
            continue  # another flag's runner commit (see _history: attributed by trailer)
        # first value of each trailer; Rollout-Gate (and Rollout-Flag, for a commit that
        # would name several) keep every value
        t: dict[str, str] = {}
        gates: list[str] = []
        flags: list[str] = []
        if trailer_text:
            for item in trailer_text.split(VS):
                key, sep, value = item.partition(": ")
                if not sep:
                    continue
                if key == "Rollout-Gate":
                    gates.append(value.strip())
                elif key == "Rollout-Flag":
                    flags.append(value.strip())
                elif key not in t:
                    t[key] = value.strip()
        action = t.get("Rollout-Action")
        if action:
            get = t.get
            entries.append(Entry(
                sha, when, author, email, subject, flags, action, _float(get("Rollout-From")),
                _float(get("Rollout-To")), get("Rollout-Phase"), get("Rollout-Plan"), gates,
                get("Rollout-Reason"), get("Rollout-Requested-By"), True, None, [],
                get("Rollout-Reverted-Commit"), get("Rollout-Reverted-By"), None, raw))
            continue
        e = Entry(sha, when, author, email, subject, flags, "", raw=raw)
        if m := _REVERTS.search(body):
            e.action, e.reverts = "revert", m[1]
        entries.append(e)


def _blob_percentages(root: Path, blobs: Iterable[str]) -> dict[str, float | None]:
    """Static serving percentage of flag files by blob id, through one ``cat-file --batch``."""
    from runner.load.yamlsafe import YamlError, load_text

    wanted = sorted({b for b in blobs if not _ZERO.match(b)})
    if not wanted:
        return {}
    out = run_git(root, ["cat-file", "--batch"], input=("\n".join(wanted) + "\n").encode()).stdout
    result: dict[str, float | None] = {}
    pos = 0
    for blob in wanted:
        nl = out.index(b"\n", pos)
        header = out[pos:nl].decode().split()
        pos = nl + 1
        if len(header) < 3 or header[1] != "blob":
            result[blob] = None
            continue
        size = int(header[2])
        data, pos = out[pos: pos + size], pos + size + 1
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


def folders(root: Path) -> tuple[str, str]:
    """``flags_dir`` and ``rollouts_dir`` of ``[tool.rollout]``, read without validating
    (history must work on any revision; ``rollout validate`` reports a bad config)."""
    import tomllib

    try:
        doc = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        section = doc.get("tool", {}).get("rollout", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        section = {}
    flags_dir = section.get("flags_dir") if isinstance(section, dict) else None
    rollouts_dir = section.get("rollouts_dir") if isinstance(section, dict) else None
    return (flags_dir if isinstance(flags_dir, str) and flags_dir else "flags",
            rollouts_dir if isinstance(rollouts_dir, str) and rollouts_dir else "rollouts")


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


def history(root: Path, flag: str | None = None, since: str | None = None,
            flags_dir: str = "flags", rollouts_dir: str = "rollouts",
            plan_names: Iterable[str] = ()) -> list[Entry]:
    """The audit trail, newest first; with ``flag``, only the commits about that flag."""
    flags_dir, rollouts_dir = flags_dir.strip("/"), rollouts_dir.strip("/")
    if flag:
        paths = [f"{flags_dir}/{flag}.yaml", f"{flags_dir}/{flag}.yml", rollouts_dir]
    else:
        paths = [flags_dir, rollouts_dir]
    # tens of thousands of small objects and no cycles: the collector would only rescan them
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        return _history(root, flag, since, flags_dir, rollouts_dir, plan_names, paths)
    finally:
        if gc_was_on:
            gc.enable()


def _history(root: Path, flag: str | None, since: str | None, flags_dir: str,
             rollouts_dir: str, plan_names: Iterable[str], paths: list[str]) -> list[Entry]:
    entries = read_log(root, paths, since, flag)
    # which flag each plan file belongs to: the runner's own trailers say it, and the
    # current plans (plan_names) fill in plans the runner never moved
    plan_flag: dict[str, str] = {}
    for e in entries:
        if e.runner and e.plan and e.flags:
            plan_flag.setdefault(e.plan, e.flags[0])
    if flag:
        for name in plan_names:
            plan_flag.setdefault(name, flag)
    flags_prefix, rollouts_prefix = flags_dir + "/", rollouts_dir + "/"
    kept: list[Entry] = []
    for e in entries:
        if not e.runner or e.raw.count("\n:") > 1:  # a person's commit, or several files
            touched = set(e.flags)
            for c in e.changes:
                if c.path.startswith(flags_prefix):
                    touched.add(_stem(c.path))
                elif c.path.startswith(rollouts_prefix):
                    stem = _stem(c.path)
                    touched.add(plan_flag.get(stem, stem))
            e.flags = sorted(touched)
            if not e.runner and not e.reverts:
                e.action = _human_action(e.changes, flags_dir)
        if flag and flag not in e.flags:
            continue
        kept.append(e)
    _link(kept)
    _flag_edit_percentages(root, kept, flags_dir)
    return kept


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
            if e.before is None and e.after is None:
                e.before, e.after = target.after, target.before
        if e.held_after_revert_of:
            target = find(e.held_after_revert_of)
            if target is not None:
                e.held_after_revert_of = target.sha
                e.reconciles = next((s for s in target.reverted_by), None)


def _flag_edit_percentages(root: Path, entries: list[Entry], flags_dir: str) -> None:
    edits = [(e, c) for e in entries if not e.runner and e.before is None and e.after is None
             for c in e.changes if c.path.startswith(flags_dir + "/")]
    if not edits:
        return
    pcts = _blob_percentages(root, [b for _, c in edits for b in (c.old_blob, c.new_blob)])
    for e, c in edits:
        if len({_stem(x.path) for x in e.changes if x.path.startswith(flags_dir + "/")}) > 1:
            continue  # several flags in one commit: no single before/after
        e.before = None if _ZERO.match(c.old_blob) else pcts.get(c.old_blob)
        e.after = None if _ZERO.match(c.new_blob) else pcts.get(c.new_blob)


def format_json(entries: list[Entry]) -> str:
    """A JSON array, one entry a line (the C encoder: indenting would cost ~1 s on 20k)."""
    if not entries:
        return "[]\n"
    lines = (json.dumps(e.as_dict()) for e in entries)
    return "[\n" + ",\n".join(lines) + "\n]\n"


def format_text(entries: list[Entry]) -> str:
    lines = []

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{v:g}%"

    for e in entries:
        moved = f"{pct(e.before)} → {pct(e.after)}" if (e.before, e.after) != (None, None) else ""
        lines.append(f"{e.time}  {e.sha[:7]}  {e.action:<11} {moved:<14} "
                     f"{','.join(e.flags)}  {e.author} <{e.email}>")
        lines.append(f"    {e.subject}")
        if e.gates:
            lines.append("    gates: " + "; ".join(e.gates))
        if e.reason:
            lines.append(f"    reason: {e.reason}")
        if e.requested_by:
            lines.append(f"    requested by: {e.requested_by}")
        if e.reverts:
            lines.append(f"    reverts {e.reverts[:7]}")
        for sha in e.reverted_by:
            lines.append(f"    reverted by {sha[:7]}")
        if e.held_after_revert_of:
            who = f" by {e.reverted_by_person}" if e.reverted_by_person else ""
            by = f" ({e.reconciles[:7]})" if e.reconciles else ""
            lines.append(f"    holds after revert{who}{by} of {e.held_after_revert_of[:7]}")
    return "\n".join(lines) + ("\n" if lines else "")
