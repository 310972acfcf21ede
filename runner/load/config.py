"""``[tool.rollout]`` in ``pyproject.toml``: validated into a :class:`RepoConfig`, with its problems.

A config with problems still gives a config: what is valid in it is kept (the default metric
source...), so that flags and plans are not blamed for what is wrong here.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from runner.load.assemble import build_config
from runner.load.documents import Unreadable, a_type, number_findings, read_bytes
from runner.load.problems import Problem, field_name, shown
from runner.load.schema_errors import schema_findings
from runner.load.semantic import check_durations, template_error
from runner.load.yamlsafe import YamlError
from runner.model import RepoConfig


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

    if keys and f"[tool.rollout.{keys[0]}]" in lines:
        sub = lines.index(f"[tool.rollout.{keys[0]}]")
        hit = find(keys[1], sub) if len(keys) > 1 else None
        return (hit if hit is not None else sub) + 1
    if "[tool.rollout]" not in lines:
        return 1
    start = lines.index("[tool.rollout]")
    hit = find(keys[0], start) if keys else None
    return (hit if hit is not None else start) + 1


def _first_line(text: str, pattern: str) -> int:
    """The 1-based line of the first line matching ``pattern`` (1 when none does)."""
    for i, line in enumerate(text.splitlines(), 1):
        if re.match(pattern, line.strip()):
            return i
    return 1


def _section(text: str, doc: dict[str, Any]) -> dict[str, Any] | Problem:
    """``[tool.rollout]`` of a parsed pyproject.toml, or the problem when it is no table."""
    rel = "pyproject.toml"
    tool = doc.get("tool", {})
    if not isinstance(tool, dict):  # `tool = 5`
        return Problem(rel, _first_line(text, r"tool\s*="), 1, "tool",
                       f"{shown(tool)} is {a_type(tool)}, expected a table ([tool.rollout] ...)")
    section = tool.get("rollout", {})
    if not isinstance(section, dict):  # [tool] rollout = 5, or tool.rollout = 5
        return Problem(rel, _first_line(text, r"(tool\.)?rollout\s*="), 1, "tool.rollout",
                       f"{shown(section)} is {a_type(section)}, expected a table ([tool.rollout])")
    return section


def load_config(root: Path) -> tuple[RepoConfig, list[Problem]]:
    path = root / "pyproject.toml"
    if not path.exists() and not path.is_symlink():
        return RepoConfig(), []
    rel = "pyproject.toml"
    try:
        text = read_bytes(path, rel).decode("utf-8")
        doc = tomllib.loads(text)
    except (Unreadable, YamlError) as e:
        return RepoConfig(), [Problem(rel, 1, 1, "", str(e))]
    except UnicodeDecodeError as e:
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
    except ValueError as e:  # tomllib converts integers with int(): 5,000 digits fail there
        why = "a number with too many digits" if "digits" in str(e) else str(e)
        return RepoConfig(), [Problem(rel, 1, 1, "", f"invalid TOML: {why}")]
    section = _section(text, doc)
    if isinstance(section, Problem):
        return RepoConfig(), [section]
    # a number YAML would refuse (nan, inf, beyond 64 bits) is refused here too
    found = number_findings(section) or schema_findings(section, "config")
    metrics = section.get("metrics")
    if not found and Path(section.get("flags_dir", "flags")) == Path(section.get("rollouts_dir", "rollouts")):
        found.append((("rollouts_dir",), "flags and rollout plans need folders of their own"))
    for key in ("flags_dir", "rollouts_dir"):
        folder = section.get(key)
        if found or not isinstance(folder, str):
            continue
        where = Path(folder)
        if where.is_absolute() or ".." in where.parts:
            found.append(((key,), f"{shown(folder)} must be a folder inside the repository"))
        elif not (root / where).is_dir():
            found.append(((key,), f"the folder {shown(folder)} does not exist"))
    if not found and isinstance(metrics, dict):
        found.extend((f.field, f.message) for f in check_durations(section, rel))
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
        return _with_bucketing(config, usable), problems
    return _with_bucketing(build_config(section), section), []


def _with_bucketing(config: RepoConfig, section: dict[str, Any]) -> RepoConfig:
    """``bucketing`` (already checked against the schema's enum) onto the config."""
    scheme = section.get("bucketing")
    return config if scheme is None else dataclasses.replace(config, bucketing=scheme)


