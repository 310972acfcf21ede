"""``rollout status``: the rollouts' records from the committed state, rendered in one format.

The records are ``runner.reconcile.view.record``'s; the renderers are ``status_text``,
``status_markdown`` (the dashboard, with timelines from git history) and ``status_metrics``
(OpenMetrics), and JSON. No metric is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.errors import RolloutError
from runner.load.layout import state_path
from runner.model import Repository
from runner.reconcile.view import environment_record, record
from runner.review.status_text import status_text


def _markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    # start-up: the dashboard and its timelines (review.plan, review.audit) cost the default
    # text status ~34 ms
    from runner.review.status_markdown import status_markdown

    return status_markdown(rows)


def _openmetrics(rows: Sequence[Mapping[str, Any]], states: Mapping[str, Any]) -> str:
    from runner.review.status_metrics import status_openmetrics  # start-up: as above, ~2 ms

    return status_openmetrics(rows, states)


#: The formats a row is checked against before it is shown (JSON shows any record).
RENDERERS: dict[str, Callable[[Sequence[Mapping[str, Any]]], str]] = {
    "text": status_text,
    "markdown": _markdown,
    "openmetrics": lambda rows: _openmetrics(rows, {}),
}
FORMATS = (*RENDERERS, "json")


@dataclass(frozen=True, slots=True)
class Unshowable:
    """A rollout whose committed state makes no sense (a hand edit the checks let through):
    ``what`` names its file; ``error`` is what its record or renderer raised."""

    flag: str
    what: str
    error: RolloutError


def selected(repo: Repository, flag: str | None = None) -> list[str]:
    """The flags shown: every rollout's (a plan or a state), sorted, or ``flag``'s alone
    (none when it has no rollout)."""
    if repo.environments:
        return selected_environments(repo, flag)
    flags = sorted(set(repo.plans) | set(repo.states))
    return flags if flag is None else [f for f in flags if f == flag]


def status_rows(repo: Repository, flags: Sequence[str], now: datetime,
                fmt: str, held: Mapping[str, str] | None = None,
                environments: Sequence[str] = (),
                stop_of: Callable[[Repository], Mapping[str, Any] | None] | None = None
                ) -> tuple[list[dict[str, Any]], list[Unshowable]]:
    """The record of each of ``flags``, and the rollouts that cannot be shown in ``fmt``:
    one broken rollout is reported on its own, the others are still shown. ``held``: the
    rollouts the kill switch holds, with why (``runner.reconcile.view.kill_switches``).
    With environments declared: a record per flag and environment (``environments``: only
    these), each with its ``environment``. ``stop_of``: the halt or freeze that holds every
    rollout of an environment's view (``runner.reconcile.freeze.stop_record``)."""
    if repo.environments:
        rows: list[dict[str, Any]] = []
        broken: list[Unshowable] = []
        # each environment's view and its halt or freeze, once (not once per flag)
        views = [(v, stop_of(v) if stop_of is not None else None) for v in repo.views()
                 if not environments or v.environment in environments]
        for flag in flags:
            for view, stop in views:
                if flag not in view.plans and flag not in view.states:
                    continue
                got, bad = _rows(view, [flag], now, fmt, held, stop)
                for row in got:
                    environment_record(repo, view, row, now)
                rows += got
                broken += bad
        return rows, broken
    return _rows(repo, flags, now, fmt, held, stop_of(repo) if stop_of is not None else None)


def selected_environments(repo: Repository, flag: str | None = None) -> list[str]:
    """With environments declared, the flags of every environment's rollouts (see
    :func:`selected`)."""
    flags = {f for v in repo.views() for f in (*v.plans, *v.states)}
    return sorted(flags) if flag is None else [f for f in sorted(flags) if f == flag]


def _rows(repo: Repository, flags: Sequence[str], now: datetime,
          fmt: str, held: Mapping[str, str] | None = None,
          stop: Mapping[str, Any] | None = None
          ) -> tuple[list[dict[str, Any]], list[Unshowable]]:
    rows: list[dict[str, Any]] = []
    broken: list[Unshowable] = []
    for flag in flags:
        try:
            row = record(flag, repo.plans.get(flag), repo.states.get(flag), now,
                         (held or {}).get(flag), stop)
            plan = repo.plans.get(flag)
            if plan is not None and plan.traffic is not None:
                # start-up: the statistics load only for a plan that plans its evidence
                from runner.review.status_evidence import with_distances

                with_distances(row, plan)
            if fmt in RENDERERS:
                RENDERERS[fmt]([row])  # the renderer must manage it too
        except RolloutError as e:  # the content is the problem: reported, the others still shown
            state = repo.states.get(flag)
            where = (state_path(repo.config.rollouts_dir, repo.config.state_layout, state.plan,
                                repo.environment)
                     if state is not None else f"{repo.config.rollouts_dir}/")
            broken.append(Unshowable(flag, f"{where} (rollout {flag!r}): cannot be shown", e))
            continue
        rows.append(row)
    return rows, broken


def render_status(fmt: str, rows: list[dict[str, Any]], root: Path, repo: Repository,
                  now: datetime, one: bool = False) -> str:
    """The document of ``rows`` in ``fmt``; ``one``: a single rollout was asked for (JSON
    is then its object, not a list). Markdown is raw: the caller makes it safe to print."""
    if fmt == "json":
        return json.dumps(rows[0] if one else rows, indent=2, sort_keys=True,
                          ensure_ascii=False) + "\n"
    if fmt == "markdown":
        from runner.review.status_markdown import status_markdown, timelines  # start-up: above

        return status_markdown(rows, timelines(root, repo, rows, now))
    if fmt == "openmetrics":
        return _openmetrics(rows, dict(repo.states))
    return status_text(rows)
