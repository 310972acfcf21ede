"""Links to a commit and a workflow run: the config's template, else GitHub Actions' variables.

The variables come in as a mapping (the environment the command read); a value that does
not look right gives no link rather than a wrong one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_SERVER = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?")
_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+")


def github_repository(env: Mapping[str, str]) -> tuple[str, str] | None:
    """(server URL, owner/name) of GitHub Actions' repository, when both look right."""
    server = env.get("GITHUB_SERVER_URL", "").rstrip("/")
    repo = env.get("GITHUB_REPOSITORY", "")
    if _SERVER.fullmatch(server) and _REPOSITORY.fullmatch(repo):
        return server, repo
    return None


def commit_link(sha: str, template: str | None, env: Mapping[str, str]) -> str | None:
    """The URL of a commit: the config's ``commit_url``, else GitHub's, else None."""
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha):
        return None
    if template:
        url = template.replace("{sha}", sha)
        # only characters a URL may hold as they are: none that ends a Slack link (| >)
        return url if _URL.fullmatch(url) else None
    gh = github_repository(env)
    return f"{gh[0]}/{gh[1]}/commit/{sha}" if gh else None


def run_link(env: Mapping[str, str]) -> str | None:
    gh = github_repository(env)
    run_id = env.get("GITHUB_RUN_ID", "")
    return f"{gh[0]}/{gh[1]}/actions/runs/{run_id}" if gh and run_id.isdigit() else None
