"""Flag files (``flags/<key>.yaml``): every flag valid on its own, and the problems of the rest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.load.assemble import build_flag
from runner.load.documents import located, read_mapping
from runner.load.layout import shown_name, stem, unsafe_name, yaml_files
from runner.load.problems import Problem
from runner.load.schema_errors import schema_findings
from runner.load.semantic import Finding, check_flag, check_key
from runner.model import Flag, SourceRef


@dataclass(frozen=True)
class FlagFiles:
    flags: dict[str, Flag]  # by key; the first file wins a duplicate key
    paths: dict[str, str]  # key -> its file
    sources: dict[str, SourceRef]  # "flag:<key>" -> its file
    texts: dict[str, str]  # file -> its text, to place findings in it
    #: flags whose files have problems (key, or file stem when there is no key -> file):
    #: references to them are not reported as dangling
    broken: dict[str, str]
    problems: list[Problem]  # the files' own: unreadable, schema
    findings: list[Finding]  # semantic, placed later (references need every file first)


def load_flags(folder: Path, prefix: str) -> FlagFiles:
    """Every flag file in ``folder``; ``prefix`` names them relative to the repository root."""
    out = FlagFiles({}, {}, {}, {}, {}, [], [])
    for p in yaml_files(folder):
        if (bad_name := unsafe_name(p)) is not None:
            out.problems.append(Problem(f"{prefix}{shown_name(p.name)}", 1, 1, "", bad_name))
            continue
        rel = f"{prefix}{p.name}"
        name = stem(p)
        got = read_mapping(p, rel)
        if isinstance(got, Problem):
            out.problems.append(got)
            out.broken.setdefault(name, rel)
            continue
        text, data = got
        out.texts[rel] = text
        bad = schema_findings(data, "flag")
        if bad:
            out.problems.extend(located(text, rel, bad))
            key = data.get("key")
            if isinstance(key, str) and not any(f[:1] == ("key",) for f, _ in bad):
                # the schema problems and this one are reported together
                out.findings.extend(check_key(key, name, rel))
            out.broken.setdefault(key if isinstance(key, str) else name, rel)
            continue
        flag = build_flag(data)
        out.findings.extend(check_flag(flag, data, rel, name))
        if flag.key in out.flags:
            out.findings.append(Finding(rel, ("key",), f"flag {flag.key!r} is also defined in "
                                        f"{out.paths[flag.key]}", True))
            continue
        out.flags[flag.key] = flag
        out.paths[flag.key] = rel
        out.sources[f"flag:{flag.key}"] = SourceRef(rel)
    return out
