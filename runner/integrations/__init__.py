"""Outbound integrations, above reconcile: what a run's outcome is told to the outside world.

``notify`` announces a run's committed changes to Slack and signed JSON webhooks;
``github_issues`` opens or comments on the GitHub issue of a rolled-back rollout through the
REST API; ``links`` makes the commit and workflow-run links both show. They are fed by what
reconcile returns (a run's ``Report``; the state and history in git), and by the environment
the command read; reconcile never imports them.
"""
