"""Load a GitOps repository: config, flags, plans and rollout states, with every problem found.

``check_repository`` never raises on bad input: it returns the problems, all of them, one
line each. ``load_repository`` is for callers that need a valid repository (the runner, the
SDK) and raises :class:`InvalidRepository` instead.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jsonschema.exceptions import ValidationError, best_match

from runner.load import schemas
from runner.load.build import build_config, build_flag, build_plan
from runner.load.problems import InvalidRepository, Problem, field_name
from runner.load.semantic import Finding, check_cross, check_flag, check_plan, template_error
from runner.load.statefile import STATE_SUFFIX, state_from_dict
from runner.load.yamlsafe import YamlError, decode, load_text, locate
from runner.model import Flag, RepoConfig, Repository, RolloutPlan, RolloutState, SourceRef

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class Checked:
    """The outcome of a check: the repository when it is valid, and every problem."""

    repository: Repository | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- schema errors in words ------------------------------------------------------------


def _describe(err: ValidationError) -> tuple[tuple[Any, ...], str]:
    """One schema error as (field path, message), picking the useful branch of a oneOf."""
    if err.context:
        err = best_match(err.context) or err
    path = tuple(err.absolute_path)
    v = err.validator
    if v == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        if extra and err.schema.get("properties"):
            allowed = ", ".join(sorted(err.schema["properties"]))
            return (*path, extra[0]), f"unknown field (allowed: {allowed})"
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else ""
        return (*path, missing), "required field is missing"
    if v == "enum":
        return path, f"{err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"
    if v == "pattern" and path and path[-1] in ("key", "flag"):
        return path, f"{err.instance!r} is not a lower snake case flag key"
    if v == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return path, f"{err.instance!r} is not of type {want}"
    return path, err.message


def schema_findings(data: Any, kind: str) -> list[tuple[tuple[Any, ...], str]]:
    errors = list(schemas.validator(kind).iter_errors(data))
    return [_describe(e) for e in sorted(errors, key=lambda e: list(map(str, e.absolute_path)))]


# --- config ---------------------------------------------------------------------------


def _toml_line(text: str, field_path: tuple[Any, ...]) -> int:
    """Best-effort line of a [tool.rollout] key (tomllib keeps no positions)."""
    lines = [line.strip() for line in text.splitlines()]
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
        line, col = (int(m[1]), int(m[2])) if m else (1, 1)
        return RepoConfig(), [Problem(rel, line, col, "", f"invalid TOML: {str(e).split(' (at')[0]}")]
    section = doc.get("tool", {}).get("rollout", {})
    if not isinstance(section, dict):
        return RepoConfig(), [Problem(rel, 1, 1, "tool.rollout", "must be a table")]
    found = schema_findings(section, "config")
    metrics = section.get("metrics")
    if not found and isinstance(metrics, dict):
        for key in ("path",):
            if isinstance(metrics.get(key), str) and (err := template_error(metrics[key])):
                found.append((("metrics", key), err))
        for q, text_q in (metrics.get("queries") or {}).items():
            if err := template_error(text_q):
                found.append((("metrics", "queries", q), err))
    if found:
        return RepoConfig(), [
            Problem(rel, _toml_line(text, p), 1, field_name(("tool", "rollout", *p)), msg)
            for p, msg in found
        ]
    return build_config(section), []


# --- documents ------------------------------------------------------------------------


def _rel(root: Path, p: Path) -> str:
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def _read(root: Path, p: Path, problems: list[Problem]) -> tuple[str, Any] | None:
    """(text, data) of one YAML file, or None after recording why not."""
    rel = _rel(root, p)
    try:
        raw = p.read_bytes()
        text = decode(raw)
        data = load_text(text)
    except OSError as e:
        problems.append(Problem(rel, 1, 1, "", f"cannot read: {e.strerror or e}"))
        return None
    except YamlError as e:
        problems.append(Problem(rel, e.line, e.column, "", e.message))
        return None
    if data is None:
        problems.append(Problem(rel, 1, 1, "", "empty file: expected a YAML mapping"))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(rel, 1, 1, "", f"expected a YAML mapping, found a "
                                f"{type(data).__name__}"))
        return None
    return text, data


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(suffixes) and p.is_file()
                  and not p.name.startswith("."))


def _problems(
    text: str, rel: str, found: Iterable[tuple[tuple[Any, ...], str]]
) -> list[Problem]:
    out = []
    for path, msg in found:
        line, col = locate(text, path)
        out.append(Problem(rel, line, col, field_name(path), msg))
    return out


def check_repository(root: Path | str, only: Iterable[Path | str] | None = None) -> Checked:
    """Validate everything under ``root``.

    With ``only`` (the files pre-commit passes), problems are reported for those files,
    plus every problem between files (a dangling reference elsewhere caused by a change
    here), since references are always checked across the whole repository.
    """
    root = Path(root)
    config, problems = load_config(root)
    flags_dir, rollouts_dir = root / config.flags_dir, root / config.rollouts_dir

    texts: dict[str, str] = {}
    flags: dict[str, Flag] = {}
    flag_paths: dict[str, str] = {}
    sources: dict[str, SourceRef] = {}
    findings: list[Finding] = []
    for p in _files(flags_dir, YAML_SUFFIXES):
        rel = _rel(root, p)
        got = _read(root, p, problems)
        if got is None:
            continue
        text, data = got
        texts[rel] = text
        bad = schema_findings(data, "flag")
        if bad:
            problems.extend(_problems(text, rel, bad))
            continue
        flag = build_flag(data)
        findings.extend(check_flag(flag, data, rel, p.name.rsplit(".", 1)[0]))
        if flag.key in flags:
            findings.append(Finding(rel, ("key",), f"flag {flag.key!r} is also defined in "
                                    f"{flag_paths[flag.key]}", True))
            continue
        flags[flag.key] = flag
        flag_paths[flag.key] = rel
        sources[f"flag:{flag.key}"] = SourceRef(rel)

    plans: dict[str, list[tuple[RolloutPlan, str]]] = {}
    for p in _files(rollouts_dir, YAML_SUFFIXES):
        rel = _rel(root, p)
        got = _read(root, p, problems)
        if got is None:
            continue
        text, data = got
        texts[rel] = text
        bad = schema_findings(data, "rollout")
        if bad:
            problems.extend(_problems(text, rel, bad))
            continue
        try:
            plan = build_plan(p.name.rsplit(".", 1)[0], data, config)
        except ValueError as e:  # a date-time the schema's format check let through
            problems.append(Problem(rel, *locate(text, ("start_at",)), "start_at", str(e)))
            continue
        findings.extend(check_plan(plan, data, rel))
        plans.setdefault(plan.flag, []).append((plan, rel))
        sources.setdefault(f"plan:{plan.flag}", SourceRef(rel))

    findings.extend(check_cross(flags, flag_paths, plans))

    states: dict[str, RolloutState] = {}
    for p in _files(rollouts_dir, (STATE_SUFFIX,)):
        rel = _rel(root, p)
        try:
            data = json.loads(decode(p.read_bytes()))
        except (OSError, YamlError, ValueError) as e:
            problems.append(Problem(rel, 1, 1, "", f"unreadable rollout state: {e}"))
            continue
        bad = schema_findings(data, "state")
        if bad:
            problems.extend(Problem(rel, 1, 1, field_name(f), m) for f, m in bad)
            continue
        state = state_from_dict(data)
        states[state.flag] = state

    for f in findings:
        if f.path in texts:
            line, col = locate(texts[f.path], f.field)
        else:
            line, col = 1, 1
        problems.append(Problem(f.path, line, col, field_name(f.field), f.message))

    if only is not None:
        wanted = {_rel(root, Path(p) if Path(p).is_absolute() else root / p) for p in only}
        cross = {(f.path, field_name(f.field), f.message) for f in findings if f.cross}
        problems = [p for p in problems if p.path in wanted
                    or (p.path, p.field, p.message) in cross or p.path == "pyproject.toml"]

    problems = sorted(set(problems))
    if problems:
        return Checked(None, problems)
    repo = Repository(
        config=config,
        flags=MappingProxyType(flags),
        plans=MappingProxyType({k: v[0][0] for k, v in plans.items()}),
        states=MappingProxyType(states),
        sources=MappingProxyType(sources),
    )
    return Checked(repo, [])


def load_repository(root: Path | str) -> Repository:
    checked = check_repository(root)
    if checked.repository is None:
        raise InvalidRepository(checked.problems)
    return checked.repository

