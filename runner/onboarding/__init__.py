"""Getting started: ``rollout init`` (a new GitOps repository from the templates) and
``rollout demo`` (the whole story, offline, in a temporary repository).

A surface like ``runner/cli`` and ``runner/review``: it drives the commands, it decides nothing.
"""
