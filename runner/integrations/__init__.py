"""Outbound integrations, above reconcile: what a run's outcome is told to the outside world.

``notify`` announces a run's committed changes to Slack and signed JSON webhooks;
``github_issues`` opens or comments on the GitHub issue of a rolled-back rollout through the
REST API. Both are fed by what reconcile returns (its decisions and commits, the state and
history in git); reconcile never imports them.
"""
