"""Repository settings (``[tool.rollout]``) and metric-source configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from runner.model.flagsets import PublishSet

if TYPE_CHECKING:  # environments.py builds on MetricsConfig, defined here
    from runner.model.environments import Environment
    from runner.model.freeze import FreezeWindow


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Where gate values come from. ``type`` is ``file``, ``prometheus`` or ``command``."""

    type: str
    #: file: path of the JSON metrics file (a Jinja2 template: ``metrics/{{ flag }}.json``).
    path: str | None = None
    #: prometheus: base URL of the HTTP API, e.g. ``http://127.0.0.1:9090``.
    url: str | None = None
    #: prometheus: name of the environment variable holding the URL instead (never the URL):
    #: a repository variable or secret in Actions. One of ``url`` and ``url_env``.
    url_env: str | None = None
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

#: ``[tool.rollout] state_layout``: where the state files are (see runner.load.layout).
STATE_LAYOUTS = ("flat", "fanout")


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
    #: ``[tool.rollout.publish] signing_key_env``: the environment variable holding the
    #: Ed25519 private key publications are signed with (never the key); None: unsigned.
    signing_key_env: str | None = None
    #: ``[tool.rollout.publish.sets]``: the flag sets published beside the whole artifact
    #: (``sets/NAME/``), in the order the config names them; empty: none.
    publish_sets: tuple[PublishSet, ...] = ()
    #: ``flat``: ``<rollouts_dir>/<plan>.state.json``; ``fanout``:
    #: ``<rollouts_dir>-state/<xx>/<plan>.state.json`` (runner.load.layout owns the paths).
    state_layout: str = "flat"
    #: ``[tool.rollout.environments]`` in promotion order (the order of its tables); empty:
    #: the one implicit environment of a repository that declares none.
    environments: tuple[Environment, ...] = ()
    #: ``[tool.rollout] freeze``: the freeze windows of every environment (of the whole
    #: repository without environments); empty: none (runner.reconcile.freeze).
    freezes: tuple[FreezeWindow, ...] = ()

    def environment(self, name: str) -> Environment | None:
        """The declared environment called ``name``, or None."""
        return next((e for e in self.environments if e.name == name), None)


#: The events a notification target may ask for (``[tool.rollout.notify.targets.NAME]
#: events``): each change a run commits is at most one of them. ``stuck`` is the pause of a
#: rollout whose progress deadline passed with no conclusive evaluation (not also ``pause``).
NOTIFY_EVENTS = ("start", "advance", "completed", "rollback", "pause", "stuck", "hold",
                 "resume", "retry", "halt", "unhalt")
#: The kinds of target: a Slack incoming webhook, or a JSON webhook signed with HMAC-SHA256.
NOTIFY_TYPES = ("slack", "webhook")
#: How long one delivery may take when a target names no ``timeout``, seconds.
DEFAULT_NOTIFY_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class NotifyTarget:
    """One receiver of notifications. Its URL and secret are in environment variables the
    config names; the model never holds either."""

    name: str
    type: str
    #: The environment variable holding the URL (for Slack, the webhook URL is the secret).
    url_env: str
    events: tuple[str, ...]
    #: webhook: the environment variable holding the HMAC-SHA256 key.
    secret_env: str | None = None
    #: Seconds one delivery may take, connecting included.
    timeout: float = DEFAULT_NOTIFY_TIMEOUT


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """``[tool.rollout.notify]``: where the changes a run commits are announced."""

    targets: tuple[NotifyTarget, ...] = ()
    #: A link to a commit, ``{sha}`` standing for its id; None: from GitHub Actions'
    #: ``GITHUB_SERVER_URL``/``GITHUB_REPOSITORY``, else no link.
    commit_url: str | None = None
