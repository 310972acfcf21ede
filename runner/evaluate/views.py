"""An environment's view of a repository as it serves flags: its plans and states, and
every flag with that environment's override applied."""

from __future__ import annotations

import dataclasses

from runner.model import Repository, resolve_flags


def environment_view(repo: Repository, name: str | None) -> Repository:
    """What environment ``name`` serves and publishes: its view
    (:meth:`Repository.for_environment`: its plans, its states, its metric source) with
    every flag as it serves there (:func:`runner.model.resolve_flags`); None: ``repo``
    itself, the repository of one implicit environment, unchanged."""
    if name is None:
        return repo
    view = repo.for_environment(name)
    return dataclasses.replace(view, flags=resolve_flags(view.flags, name))
