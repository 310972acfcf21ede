"""Repository settings (``[tool.rollout]``) and metric-source configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Where gate values come from. ``type`` is ``file``, ``prometheus`` or ``command``."""

    type: str
    #: file: path of the JSON metrics file (a Jinja2 template: ``metrics/{{ flag }}.json``).
    path: str | None = None
    #: prometheus: base URL of the HTTP API, e.g. ``http://127.0.0.1:9090``.
    url: str | None = None
    #: prometheus: gate name -> PromQL template (Jinja2, sandboxed: flag, window, percentage).
    queries: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: command: argument list (no shell); JSON object on standard output.
    command: tuple[str, ...] = ()
    timeout: float = 10.0
    #: prometheus: name of the environment variable holding a bearer token (never the token).
    bearer_token_env: str | None = None
    #: The analysis window handed to query templates, e.g. ``5m``.
    window: str = "5m"


#: ``[tool.rollout] bucketing``: which flagd ``fractional`` hash percentage splits use
#: (see runner.evaluate.bucket and docs/evaluation.md, "Bucketing schemes").
BUCKETING_SCHEMES = ("flagd-v2", "flagd-v3")
#: The scheme of a repository that names none: the Go flagd daemon's and the JavaScript core's.
DEFAULT_BUCKETING = "flagd-v2"


@dataclass(frozen=True, slots=True)
class RepoConfig:
    flags_dir: str = "flags"
    rollouts_dir: str = "rollouts"
    #: Default metric source for plans that name none.
    metrics: MetricsConfig | None = None
    author_name: str = "rollout-runner[bot]"
    author_email: str = "rollout-runner@users.noreply.github.com"
    #: Repository-level kill switch: every flag serves its default variant.
    emergency_shutdown: bool = False
    #: ``flagd-v2`` (hash the bucketing string) or ``flagd-v3`` (hash its canonical CBOR).
    bucketing: str = DEFAULT_BUCKETING
