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

from runner.load.assemble import build_config, build_metrics
from runner.load.documents import Unreadable, a_type, number_findings, read_bytes
from runner.load.durations import parse_duration
from runner.load.problems import Problem, field_name, shown
from runner.load.schema_errors import schema_findings
from runner.load.semantic import check_durations, template_error
from runner.load.yamlsafe import YamlError
from runner.model import Environment, NotifyConfig, NotifyTarget, RepoConfig
from runner.model.config import DEFAULT_NOTIFY_TIMEOUT, STATE_LAYOUTS
from runner.model.flagsets import PublishSet, glob_problem
from runner.model.freeze import FreezeWindow, parse_weekly
from runner.timefmt import parse_iso


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
    # [tool.rollout.notify] is checked on its own (load_notify): a problem there never
    # stops a run, it only silences the target it is about
    section = {k: v for k, v in section.items() if k != "notify"}
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
    if not found:
        found.extend(_set_findings(section))
        found.extend(_environment_findings(section, rel))
        found.extend(_freeze_findings(section))
    if found:
        problems = [
            Problem(rel, _freeze_line(text, p, section) if "freeze" in p
                    else _notify_line(text, p) if p[:2] == ("publish", "sets")
                    or p[:1] == ("environments",)
                    else _toml_line(text, p), 1, field_name(("tool", "rollout", *p)), msg)
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
    """``bucketing`` and ``state_layout`` (already checked against the schema's enums) and
    ``[tool.rollout.publish]`` (checked against the schema) onto the config."""
    scheme = section.get("bucketing")
    if scheme is not None:
        config = dataclasses.replace(config, bucketing=scheme)
    layout = section.get("state_layout")
    if isinstance(layout, str) and layout in STATE_LAYOUTS:
        config = dataclasses.replace(config, state_layout=layout)
    publish = section.get("publish")
    if isinstance(publish, dict) and isinstance(publish.get("signing_key_env"), str):
        config = dataclasses.replace(config, signing_key_env=publish["signing_key_env"])
    sets = publish.get("sets") if isinstance(publish, dict) else None
    if isinstance(sets, dict) and not _set_findings(section):
        config = dataclasses.replace(config, publish_sets=tuple(
            PublishSet(name, tuple(globs)) for name, globs in sets.items()))
    environments = section.get("environments")
    if isinstance(environments, dict) and environments:
        config = dataclasses.replace(config, environments=tuple(
            Environment(name, metrics=build_metrics(e.get("metrics")),
                        publish=tuple(e.get("publish", ())),
                        freezes=freeze_windows(e.get("freeze", [])))
            for name, e in environments.items()))  # tomllib keeps the tables' order
    freeze = section.get("freeze")
    if isinstance(freeze, list) and freeze:
        config = dataclasses.replace(config, freezes=freeze_windows(freeze))
    return config


def freeze_windows(items: list[Any]) -> tuple[FreezeWindow, ...]:
    """A ``freeze`` list (checked by :func:`_freeze_findings`) as the model's windows."""
    return tuple(
        FreezeWindow(reason=w["reason"], weekly=parse_weekly(w["weekly"]))
        if "weekly" in w else
        FreezeWindow(reason=w["reason"], start=parse_iso(w["start"]), end=parse_iso(w["end"]))
        for w in items)


def _window_findings(where: tuple[Any, ...], w: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """What the schema cannot say of one freeze window: dated or weekly (one of them), its
    times readable, its end after its start, its weekly text in the grammar."""
    dated = [k for k in ("start", "end") if k in w]
    if "weekly" in w and dated:
        return [((*where, dated[0]), "a freeze window is dated (start and end) or weekly, "
                 "not both")]
    if "weekly" in w:
        try:
            parse_weekly(w["weekly"])
        except ValueError as e:
            return [((*where, "weekly"), str(e))]
        return []
    if len(dated) < 2:
        if not dated:
            return [(where, "a freeze window needs start and end, or weekly")]
        missing = "end" if dated == ["start"] else "start"
        return [((*where, missing), f"a dated freeze window needs {missing} too")]
    times = {}
    for key in ("start", "end"):
        try:
            times[key] = parse_iso(w[key])
        except ValueError:
            return [((*where, key), f"{shown(w[key])} is not an ISO 8601 time "
                     "(2026-12-24T00:00:00Z)")]
    if times["end"] <= times["start"]:
        return [((*where, "end"), f"{shown(w['end'])} is not after the start "
                 f"{shown(w['start'])}")]
    return []


def _freeze_findings(section: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """``[tool.rollout] freeze`` and each environment's ``freeze`` (once the schema holds):
    each window checked by :func:`_window_findings`. Windows may overlap."""
    lists: list[tuple[tuple[Any, ...], Any]] = [(("freeze",), section.get("freeze"))]
    environments = section.get("environments")
    for name, e in (environments.items() if isinstance(environments, dict) else ()):
        if isinstance(e, dict):
            lists.append((("environments", name, "freeze"), e.get("freeze")))
    found: list[tuple[tuple[Any, ...], str]] = []
    for where, items in lists:
        for i, w in enumerate(items if isinstance(items, list) else ()):
            if isinstance(w, dict):
                found.extend(_window_findings((*where, i), w))
    return found


def _freeze_line(text: str, field_path: tuple[Any, ...], section: dict[str, Any]) -> int:
    """Best-effort line of a field of a freeze window: the first line after the table that
    holds the ``freeze`` list (``[tool.rollout]``, an environment's table, or an
    ``[[...freeze]]`` array of tables) that writes the field's value, else that table."""
    at = field_path.index("freeze")
    value: Any = section
    for key in field_path:
        value = value.get(key) if isinstance(value, dict) else (
            value[key] if isinstance(value, list) and isinstance(key, int)
            and key < len(value) else None)
    holder = _notify_line(text, field_path[:at + 1]) if at else _toml_line(text, ("freeze",))
    if isinstance(value, str):
        needle = tomllib_quoted(value)
        for i, line in enumerate(text.splitlines()[holder - 1:], holder):
            if needle in line or value in line:
                return i
    return holder


def tomllib_quoted(value: str) -> str:
    """``value`` as a TOML basic string writes it (enough to find it on its line)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _environment_findings(section: dict[str, Any], rel: str) -> list[tuple[tuple[Any, ...], str]]:
    """What the schema cannot say of ``[tool.rollout.environments]``: each environment's
    metric source checked as the default one is (durations, templates)."""
    environments = section.get("environments")
    found: list[tuple[tuple[Any, ...], str]] = []
    for name, e in (environments.items() if isinstance(environments, dict) else ()):
        metrics = e.get("metrics") if isinstance(e, dict) else None
        if not isinstance(metrics, dict):
            continue
        where = ("environments", name, "metrics")
        found.extend(((*where, *f.field[1:]), f.message)
                     for f in check_durations({"metrics": metrics}, rel))
        if isinstance(metrics.get("path"), str) and (err := template_error(metrics["path"])):
            found.append(((*where, "path"), err))
        for q, text_q in (metrics.get("queries") or {}).items():
            if err := template_error(text_q):
                found.append(((*where, "queries", q), err))
    return found


def _set_findings(section: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """What the schema cannot say of ``[tool.rollout.publish.sets]`` (once it holds): a glob
    whose ``[`` class is not closed. (A glob naming a flag that does not exist is a
    problem between files: :mod:`runner.load.sets`.)"""
    publish = section.get("publish")
    sets = publish.get("sets") if isinstance(publish, dict) else None
    found: list[tuple[tuple[Any, ...], str]] = []
    for name, globs in (sets.items() if isinstance(sets, dict) else ()):
        for i, glob in enumerate(globs if isinstance(globs, list) else ()):
            if isinstance(glob, str) and (why := glob_problem(glob)) is not None:
                found.append((("publish", "sets", name, i), f"{shown(glob)} is not a flag-key "
                              f"glob: {why}"))
    return found




#: The longest a notification target may wait for its receiver, seconds.
MAX_NOTIFY_TIMEOUT = 60.0


def _notify_line(text: str, field_path: tuple[Any, ...]) -> int:
    """Best-effort line of a field under ``[tool.rollout.notify]``: the key in the deepest
    table header that holds it (``[tool.rollout.notify.targets.NAME]``), else that header."""
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    keys = [str(p) for p in field_path if not isinstance(p, int)]
    for depth in range(len(keys), 0, -1):
        headers = {"[tool.rollout." + ".".join(keys[:depth]) + "]",
                   "[tool.rollout." + ".".join([*keys[:depth - 1], f'"{keys[depth - 1]}"']) + "]"}
        at = next((i for i, line in enumerate(lines) if line in headers), None)
        if at is None:
            continue
        if depth < len(keys):
            for i in range(at + 1, len(lines)):
                if lines[i].startswith("["):
                    break
                if re.match(rf"{re.escape(keys[depth])}\s*=", lines[i]):
                    return i + 1
        return at + 1
    return _toml_line(text, field_path)


_TARGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _target_findings(name: str, t: Any) -> list[tuple[tuple[Any, ...], str]]:
    """The problems of one target (schema first, then what the schema cannot say)."""
    where = ("notify", "targets", name)
    if not isinstance(name, str) or not _TARGET_NAME.fullmatch(name):
        return [(where, f"{shown(name)} is not a target name (letters, digits, _ and -, "
                        "starting with a letter or digit, at most 64)")]
    found = (number_findings(t, where)
             or schema_findings({"notify": {"targets": {name: t}}}, "config"))
    if found:
        return found
    kind = t.get("type")
    if kind == "webhook" and "secret_env" not in t:
        found.append(((*where, "secret_env"), "required for a webhook: the environment "
                      "variable holding the key its body is signed with"))
    if kind == "slack" and "secret_env" in t:
        found.append(((*where, "secret_env"),
                      "a Slack webhook is not signed (its URL is the secret): remove it"))
    if t.get("secret_env") is not None and t.get("secret_env") == t.get("url_env"):
        found.append(((*where, "secret_env"),
                      "the same variable as url_env: the key would travel in the URL"))
    if "timeout" in t:
        try:
            seconds = parse_duration(t["timeout"])
        except ValueError as e:
            found.append(((*where, "timeout"), str(e)))
        else:
            if not 0 < seconds <= MAX_NOTIFY_TIMEOUT:
                found.append(((*where, "timeout"),
                              f"{shown(t['timeout'])} must be more than 0s and at most "
                              f"{MAX_NOTIFY_TIMEOUT:g}s (a run waits for it)"))
    return found


def load_notify(root: Path) -> tuple[NotifyConfig, list[Problem]]:
    """``[tool.rollout.notify]``: the targets that are valid, and the problems of the others
    (each names the target's file, line and field). A target with a problem is left out;
    the others still work. An unreadable or invalid pyproject.toml gives no targets and no
    problems here (``load_config`` reports those)."""
    path = root / "pyproject.toml"
    try:
        text = read_bytes(path, "pyproject.toml").decode("utf-8")
        doc = tomllib.loads(text)
    except (OSError, Unreadable, YamlError, UnicodeDecodeError, ValueError):
        return NotifyConfig(), []
    section = _section(text, doc)
    if isinstance(section, Problem) or "notify" not in section:
        return NotifyConfig(), []
    notify = section["notify"]
    targets = notify.get("targets") if isinstance(notify, dict) else None
    # (targets that are no table stay in: the schema says so)
    rest = ({k: v for k, v in notify.items() if k != "targets" or not isinstance(v, dict)}
            if isinstance(notify, dict) else notify)
    # the section's own fields, then each target alone: a bad target silences only itself
    found = number_findings(rest, ("notify",)) or schema_findings({"notify": rest}, "config")
    url = rest.get("commit_url") if isinstance(rest, dict) else None
    if not found and isinstance(url, str) and (
            not re.fullmatch(r"https?://[^\s{}]+/\S*", url) or "{sha}" not in url):
        found.append((("notify", "commit_url"), f"{shown(url)} is not an http:// or https:// "
                      "URL holding {sha} (where the commit id goes)"))
    per_target = {name: _target_findings(name, t)
                  for name, t in (targets.items() if isinstance(targets, dict) else ())}
    every = [*found, *(f for fs in per_target.values() for f in fs)]
    problems = [Problem("pyproject.toml", _notify_line(text, p), 1,
                        field_name(("tool", "rollout", *p)), msg) for p, msg in every]
    if not isinstance(notify, dict) or any(p[1:2] != ("commit_url",) for p, _ in found):
        return NotifyConfig(), problems  # the section itself is wrong: nothing is sure
    commit_url = notify.get("commit_url") if not found else None
    built = []
    for name, t in (targets.items() if isinstance(targets, dict) else ()):
        if per_target[name]:
            continue
        built.append(NotifyTarget(
            name=name, type=t["type"], url_env=t["url_env"], events=tuple(t["events"]),
            secret_env=t.get("secret_env"),
            timeout=parse_duration(t["timeout"]) if "timeout" in t else DEFAULT_NOTIFY_TIMEOUT))
    return NotifyConfig(targets=tuple(built), commit_url=commit_url), problems
