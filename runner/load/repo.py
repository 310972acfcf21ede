"""Load a GitOps repository: config, flags, plans and rollout states, with every problem found.

``check_repository`` never raises on bad input: it returns the problems, all of them, one
line each. ``load_repository`` is for callers that need a valid repository (the runner, the
SDK) and raises :class:`InvalidRepository` instead.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jsonschema.exceptions import ValidationError

from runner.load import schemas
from runner.load.assemble import build_config, build_flag, build_plan
from runner.load.problems import InvalidRepository, Problem, field_name
from runner.load.semantic import (
    NO_METRICS,
    Finding,
    check_cross,
    check_flag,
    check_key,
    check_plan,
    check_steps,
    template_error,
)
from runner.load.statefile import STATE_SUFFIX, state_from_dict
from runner.load.yamlsafe import MAX_FILE_BYTES, Locator, YamlError, decode, load_text, locate
from runner.model import Flag, RepoConfig, Repository, RolloutPlan, RolloutState, SourceRef

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class Checked:
    """The outcome of a check: the repository when it is valid, and every problem."""

    repository: Repository | None
    problems: list[Problem] = field(default_factory=list)
    #: Everything that loaded cleanly, even when other files have problems: for the
    #: commands that must still work then (an emergency rollback of a valid rollout).
    salvaged: Repository | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


# --- schema errors in words ------------------------------------------------------------


_DURATION_PATTERN = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d|w))+$"
_KEY_PATTERN = "^[a-z][a-z0-9_]*$"
#: What the schemas' patterns mean, in words.
_PATTERNS = {
    _KEY_PATTERN: "is not a lower snake case name (a-z, 0-9 and _, starting with a letter)",
    _DURATION_PATTERN: "is not a duration such as 300s, 5m, 1h30m or 2d",
    "^https?://": "is not an http:// or https:// URL",
    "^[A-Za-z_][A-Za-z0-9_]*$": "is not an environment variable name (letters, digits, _)",
    "^[A-Za-z0-9][A-Za-z0-9_.-]*$": "is not a variant name (letters, digits, _ . -)",
    "^[0-9]+(ms|s|m|h|d|w)$": "is not a window such as 5m or 1h",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object",
            list: "array"}.get(type(value), type(value).__name__)


def _alternatives(err: ValidationError) -> tuple[tuple[Any, ...], str] | None:
    """A oneOf/anyOf error in words: the branch the author meant, or what the choices are."""
    branches: list[dict[str, Any]] = err.validator_value
    if all(set(b) == {"required"} for b in branches):  # "exactly one of these fields"
        names = [n for b in branches for n in b["required"]]
        present = [n for n in names if isinstance(err.instance, dict) and n in err.instance]
        path = tuple(err.absolute_path)
        if len(present) > 1:
            return path, f"give only one of {', '.join(present)}"
        return path, f"needs one of {', '.join(names)}"
    by_branch: dict[int, list[ValidationError]] = {}
    for e in err.context or ():
        by_branch.setdefault(e.relative_schema_path[0], []).append(e)
    if not by_branch:
        return None

    def unmeant(errs: list[ValidationError]) -> tuple[bool, bool, int]:
        # a branch whose type, or whose discriminator (metrics.type), does not match was
        # not what the author meant
        wrong_type = any(e.validator == "type" and not e.relative_path for e in errs)
        wrong_kind = any(e.validator in ("const", "enum") and len(e.relative_path) == 1 for e in errs)
        return wrong_type, wrong_kind, len(errs)

    kinds = [[e for e in errs if e.validator == "const" and len(e.relative_path) == 1]
             for errs in by_branch.values()]
    if len(by_branch) == len(branches) and all(kinds):  # a discriminator such as metrics.type
        wrong = kinds[0][0]
        allowed = ", ".join(str(k[0].validator_value) for k in kinds)
        return tuple(wrong.absolute_path), f"{wrong.instance!r} is not one of {allowed}"
    best = min(by_branch.values(), key=unmeant)
    if unmeant(best)[0]:  # no branch has the value's type
        types: list[str] = []
        for b in branches:
            t = b.get("type") or (["object"] if "properties" in b else [])
            types.extend([t] if isinstance(t, str) else t)
        want = " or ".join(dict.fromkeys(types)) or "an allowed value"
        return tuple(err.absolute_path), f"{err.instance!r} is a {_json_type(err.instance)}, expected {want}"
    return _describe(min(best, key=lambda e: -len(e.absolute_path)))


def _describe(err: ValidationError) -> tuple[tuple[Any, ...], str]:
    """One schema error as (field path, message) a person can act on."""
    path = tuple(err.absolute_path)
    v = err.validator
    if v in ("oneOf", "anyOf"):
        said = _alternatives(err)
        if said is not None:
            return said
    if v == "additionalProperties":
        extra = sorted(set(map(str, err.instance)) - set(err.schema.get("properties", {})))
        if extra and err.schema.get("properties"):
            allowed = ", ".join(sorted(err.schema["properties"]))
            return (*path, extra[0]), f"unknown field (allowed: {allowed})"
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else ""
        return (*path, missing), "required field is missing"
    if v == "enum":
        return path, f"{err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"
    if v == "const":
        return path, f"{err.instance!r}: expected {err.validator_value!r}"
    if v == "pattern" and err.validator_value in _PATTERNS:
        return path, f"{err.instance!r} {_PATTERNS[err.validator_value]}"
    if v == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return path, f"{err.instance!r} is a {_json_type(err.instance)}, expected {want}"
    if v == "minLength" and err.validator_value == 1:
        return path, "must not be empty"
    if v == "uniqueItems":
        seen: list[Any] = []
        for item in err.instance:
            if item in seen:
                return path, f"{item!r} is listed more than once"
            seen.append(item)
    if v == "propertyNames" and err.context:
        return _describe(err.context[0])
    return path, err.message


def schema_findings(data: Any, kind: str) -> list[tuple[tuple[Any, ...], str]]:
    if schemas.is_valid(data, kind):
        return []
    errors = list(schemas.validator(kind).iter_errors(data))
    return [_describe(e) for e in sorted(errors, key=lambda e: list(map(str, e.absolute_path)))]


# --- config ---------------------------------------------------------------------------


def _toml_line(text: str, field_path: tuple[Any, ...]) -> int:
    """Best-effort line of a [tool.rollout] key (tomllib keeps no positions)."""
    # comments cut (naively: enough to find headers and "key =" at the start of a line)
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    keys = [str(p) for p in field_path if not isinstance(p, int)]

    def find(key: str, start: int) -> int | None:
        for i in range(start, len(lines)):
            if re.match(rf"{re.escape(key)}\s*=", lines[i]):
                return i
            if i > start and lines[i].startswith("["):
                return None
        return None

    if "[tool.rollout]" not in lines:
        return 1
    start = lines.index("[tool.rollout]")
    if keys and f"[tool.rollout.{keys[0]}]" in lines:
        sub = lines.index(f"[tool.rollout.{keys[0]}]")
        hit = find(keys[1], sub) if len(keys) > 1 else None
        return (hit if hit is not None else sub) + 1
    hit = find(keys[0], start) if keys else None
    return (hit if hit is not None else start) + 1


def load_config(root: Path) -> tuple[RepoConfig, list[Problem]]:
    path = root / "pyproject.toml"
    if not path.is_file():
        return RepoConfig(), []
    rel = "pyproject.toml"
    try:
        text = path.read_text(encoding="utf-8")
        doc = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as e:
        return RepoConfig(), [Problem(rel, 1, 1, "", f"cannot read: {e}")]
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+), column (\d+)", str(e))
        if m:
            line, col = int(m[1]), int(m[2])
        elif "end of document" in str(e):
            line, col = max(1, len(text.splitlines())), 1
        else:
            line, col = 1, 1
        return RepoConfig(), [Problem(rel, line, col, "", f"invalid TOML: {str(e).split(' (at')[0]}")]
    section = doc.get("tool", {}).get("rollout", {})
    if not isinstance(section, dict):
        return RepoConfig(), [Problem(rel, 1, 1, "tool.rollout", "must be a table")]
    found = schema_findings(section, "config")
    metrics = section.get("metrics")
    if not found and Path(section.get("flags_dir", "flags")) == Path(section.get("rollouts_dir", "rollouts")):
        found.append((("rollouts_dir",), "flags and rollout plans need folders of their own"))
    for key in ("flags_dir", "rollouts_dir"):
        folder = section.get(key)
        if found or not isinstance(folder, str):
            continue
        where = Path(folder)
        if where.is_absolute() or ".." in where.parts:
            found.append(((key,), f"{folder!r} must be a folder inside the repository"))
        elif not (root / where).is_dir():
            found.append(((key,), f"the folder {folder!r} does not exist"))
    if not found and isinstance(metrics, dict):
        for key in ("path",):
            if isinstance(metrics.get(key), str) and (err := template_error(metrics[key])):
                found.append((("metrics", key), err))
        for q, text_q in (metrics.get("queries") or {}).items():
            if err := template_error(text_q):
                found.append((("metrics", "queries", q), err))
    if found:
        problems = [
            Problem(rel, _toml_line(text, p), 1, field_name(("tool", "rollout", *p)), msg)
            for p, msg in found
        ]
        # keep what is valid (the metrics default...) so that plans are not blamed for it
        bad_keys = {p[0] for p, _ in found if p}
        usable = {k: v for k, v in section.items() if k not in bad_keys}
        try:
            config = RepoConfig() if schema_findings(usable, "config") else build_config(usable)
        except (ValueError, TypeError):
            config = RepoConfig()
        return config, problems
    return build_config(section), []


# --- documents ------------------------------------------------------------------------


def _rel(root: Path, p: Path) -> str:
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def _prefix(folder: str) -> str:
    rel = Path(folder).as_posix()
    return "" if rel == "." else f"{rel}/"


def _read(root: Path, p: Path, problems: list[Problem], rel: str | None = None
          ) -> tuple[str, Any] | None:
    """(text, data) of one YAML file, or None after recording why not."""
    rel = rel or _rel(root, p)
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)  # never more than the limit into memory
            if len(raw) > MAX_FILE_BYTES:
                size = os.fstat(f.fileno()).st_size
                raise YamlError(f"file is {size} bytes, over the limit of {MAX_FILE_BYTES}")
        text = decode(raw)
        data = load_text(text, string_keys=True)
    except OSError as e:
        problems.append(Problem(rel, 1, 1, "", f"cannot read: {e.strerror or e}"))
        return None
    except YamlError as e:
        problems.append(Problem(rel, e.line, e.column, field_name(e.field), e.message))
        return None
    if data is None:
        problems.append(Problem(rel, 1, 1, "", "empty file: expected a YAML mapping"))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(rel, 1, 1, "", f"expected a YAML mapping of fields, found a "
                                f"{_json_type(data)}"))
        return None
    return text, data


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.name.endswith(suffixes)
                   and not p.name.startswith(".") and p.is_file()), key=lambda p: p.name)


def _problems(
    text: str, rel: str, found: Iterable[tuple[tuple[Any, ...], str]]
) -> list[Problem]:
    out = []
    locator = Locator(text)
    for path, msg in found:
        line, col = locator.locate(path)
        out.append(Problem(rel, line, col, field_name(path), msg))
    return out


def _raw_steps(data: dict[str, Any]) -> list[float] | None:
    """The percentages of a plan that failed its schema, when its steps are still readable."""
    steps = data.get("steps")
    if not isinstance(steps, list):
        return None
    out = []
    for s in steps:
        p = s.get("percentage") if isinstance(s, dict) else s
        if isinstance(p, bool) or not isinstance(p, int | float):
            return None
        out.append(float(p))
    return out


def check_repository(root: Path | str, only: Iterable[Path | str] | None = None) -> Checked:
    """Validate everything under ``root``.

    With ``only`` (the files pre-commit passes), problems are reported for those files,
    plus every problem between files (a dangling reference elsewhere caused by a change
    here), since references are always checked across the whole repository.
    """
    root = Path(root)
    config, problems = load_config(root)
    config_broken = bool(problems)
    flags_dir, rollouts_dir = root / config.flags_dir, root / config.rollouts_dir
    # file names relative to the root, without a resolve() per file
    flags_prefix = _prefix(config.flags_dir)
    rollouts_prefix = _prefix(config.rollouts_dir)

    texts: dict[str, str] = {}
    flags: dict[str, Flag] = {}
    flag_paths: dict[str, str] = {}
    sources: dict[str, SourceRef] = {}
    findings: list[Finding] = []
    broken: dict[str, str] = {}  # flags whose files have problems: key -> file
    for p in _files(flags_dir, YAML_SUFFIXES):
        rel = f"{flags_prefix}{p.name}"
        stem = p.name.rsplit(".", 1)[0]
        got = _read(root, p, problems, rel)
        if got is None:
            broken.setdefault(stem, rel)
            continue
        text, data = got
        texts[rel] = text
        bad = schema_findings(data, "flag")
        if bad:
            problems.extend(_problems(text, rel, bad))
            key = data.get("key")
            if isinstance(key, str) and not any(f[:1] == ("key",) for f, _ in bad):
                # the schema problems and this one are reported together
                findings.extend(check_key(key, stem, rel))
            broken.setdefault(key if isinstance(key, str) else stem, rel)
            continue
        flag = build_flag(data)
        findings.extend(check_flag(flag, data, rel, stem))
        if flag.key in flags:
            findings.append(Finding(rel, ("key",), f"flag {flag.key!r} is also defined in "
                                    f"{flag_paths[flag.key]}", True))
            continue
        flags[flag.key] = flag
        flag_paths[flag.key] = rel
        sources[f"flag:{flag.key}"] = SourceRef(rel)

    plans: dict[str, list[tuple[RolloutPlan, str]]] = {}
    for p in _files(rollouts_dir, YAML_SUFFIXES):
        rel = f"{rollouts_prefix}{p.name}"
        got = _read(root, p, problems, rel)
        if got is None:
            continue
        text, data = got
        texts[rel] = text
        bad = schema_findings(data, "rollout")
        if bad:
            problems.extend(_problems(text, rel, bad))
            pcts = _raw_steps(data)
            if pcts is not None:
                findings.extend(check_steps(pcts, rel))
            continue
        try:
            plan = build_plan(p.name.rsplit(".", 1)[0], data, config)
        except ValueError as e:  # a date-time the schema's format check let through
            why = f" ({e})" if "out of range" in str(e) or "after the year" in str(e) else ""
            problems.append(Problem(rel, *locate(text, ("start_at",)), "start_at",
                                    f"{data.get('start_at')!r} is not an ISO 8601 date-time such "
                                    f"as 2026-01-05T09:00:00Z{why}"))
            continue
        findings.extend(check_plan(plan, data, rel))
        plans.setdefault(plan.flag, []).append((plan, rel))
        sources.setdefault(f"plan:{plan.flag}", SourceRef(rel))

    findings.extend(check_cross(flags, flag_paths, plans, broken))
    if config_broken and config.metrics is None:
        # pyproject.toml has problems of its own: a missing default source is one of them
        findings = [f for f in findings if f.message != NO_METRICS]

    states: dict[str, RolloutState] = {}
    for p in _files(rollouts_dir, (STATE_SUFFIX,)):
        rel = f"{rollouts_prefix}{p.name}"
        try:
            text = decode(p.read_bytes())
            data = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(Problem(rel, e.lineno, e.colno, "", f"unreadable rollout state: {e.msg}"))
            continue
        except (OSError, YamlError, ValueError) as e:
            problems.append(Problem(rel, 1, 1, "", f"unreadable rollout state: {e}"))
            continue
        bad = schema_findings(data, "state")
        if bad:
            problems.extend(_problems(text, rel, bad))  # JSON is YAML: same positions
            continue
        try:
            state = state_from_dict(data)
        except ValueError as e:  # a time the schema's format check let through
            problems.append(Problem(rel, 1, 1, "", f"unreadable rollout state: {e}"))
            continue
        states[state.flag] = state

    locators: dict[str, Locator] = {}
    for f in findings:
        if f.path in texts:
            if f.path not in locators:
                locators[f.path] = Locator(texts[f.path])
            line, col = locators[f.path].locate(f.field)
        else:
            line, col = 1, 1
        problems.append(Problem(f.path, line, col, field_name(f.field), f.message))

    if only is not None:
        wanted = {_rel(root, Path(p) if Path(p).is_absolute() else root / p) for p in only}
        cross = {(f.path, field_name(f.field), f.message) for f in findings if f.cross}
        problems = [p for p in problems if p.path in wanted
                    or (p.path, p.field, p.message) in cross or p.path == "pyproject.toml"]

    problems = sorted(set(problems))
    repo = Repository(
        config=config,
        flags=MappingProxyType(flags),
        plans=MappingProxyType({k: v[0][0] for k, v in plans.items()}),
        states=MappingProxyType(states),
        sources=MappingProxyType(sources),
    )
    if problems:
        return Checked(None, problems, salvaged=repo)
    return Checked(repo, [], salvaged=repo)


def load_repository(root: Path | str) -> Repository:
    checked = check_repository(root)
    if checked.repository is None:
        raise InvalidRepository(checked.problems)
    return checked.repository

