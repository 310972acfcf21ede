"""One GitHub issue per rolled-back rollout: opened at its first rollback, commented on at
the next ones, never repeated (``rollout issue``).

The rollback is read from git alone (the state file and the runner's rollback commit), so
the command runs in a job of its own, with a checkout and ``issues: write``, apart from the
job that pushes. The issue is found by its label and its exact title through the list
issues API (consistent at once, unlike the search API); each rollback is recorded with a
marker naming its commit, so a second run for the same rollback changes nothing.

:func:`issue_body` alone builds the text: swap it to change what the issue says.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import __version__
from runner.errors import ExternalError
from runner.git import Git
from runner.integrations.links import commit_link, github_repository
from runner.load import check_repository
from runner.load.layout import state_path
from runner.model import Phase
from runner.reconcile.last_change import runner_commit_doubts
from runner.reconcile.message import parse_message
from runner.safemarkup import markdown
from runner.safetext import redact, safe_line

LABEL = "rollout-rollback"
DEFAULT_API = "https://api.github.com"
#: Pages of 100 open issues (and of comments) looked through at most.
MAX_PAGES = 10
_TIMEOUT = 20.0


class IssueError(ExternalError):
    """The issue could not be opened or updated; the message says why (no token in it)."""


def title(flag: str) -> str:
    """The exact title the issue of ``flag`` is found by."""
    return f"Rollout rolled back: {flag}"


def marker(flag: str, sha: str) -> str:
    """The hidden line recording that the rollback ``sha`` is in the issue."""
    return f"<!-- rollout-rollback flag={flag} commit={sha} -->"


@dataclass(frozen=True, slots=True)
class Rollback:
    flag: str
    plan: str
    sha: str
    commit_url: str | None
    subject: str
    #: The commit's body: the reason, then the gate evidence, one line each.
    evidence: tuple[str, ...]
    date: str
    author: str


def find_rollback(root: Path, flag: str, env: Mapping[str, str]) -> Rollback | None:
    """The rollback ``flag``'s rollout is in, from its state and the newest rollback commit
    verified as the runner's own (``last_change.runner_commit_doubts``); None when it is not
    rolled back or no such commit is found (a rollback written by hand is no runner's)."""
    repo = check_repository(root).salvaged
    state = repo.states.get(flag)
    if state is None or state.phase is not Phase.ROLLED_BACK:
        return None
    git = Git.open(root)
    path = git.rel(state_path(repo.config.rollouts_dir, repo.config.state_layout, state.plan))
    log = git.out("log", "-n", "200", "-z", "--format=%H%x1f%aI%x1f%an%x1f%B", "--", path)
    claims = []
    for record in log.split("\0"):
        if not record.strip():
            continue
        sha, date, author, message = record.strip("\n").split("\x1f", 3)
        m = parse_message(message)
        if m is not None and m.action == "rollback" and m.flag == flag:
            claims.append((sha, date, author, m))
    # only a commit verified as the runner's own is its rollback: a person's commit with
    # forged trailers (or a moved or edited runner commit) never is
    doubts = runner_commit_doubts(git, {sha: path for sha, *_ in claims})
    for sha, date, author, m in claims:
        if sha in doubts:
            continue
        lines = tuple(safe_line(x, 600) for x in m.body if x.strip())[:30]
        return Rollback(flag=flag, plan=state.plan, sha=sha,
                        commit_url=commit_link(sha, None, env), subject=safe_line(m.subject, 300),
                        evidence=lines, date=date, author=safe_line(author, 200))
    return None


def _fenced(lines: tuple[str, ...]) -> str:
    # a code block: no mention, link or HTML of the input's making; no fence can close it
    text = "\n".join(line.replace("```", "'''") for line in lines)
    return f"```text\n{text}\n```"


#: Room left in an issue body (GitHub takes 65,536 characters) for the incident report.
REPORT_LIMIT = 50_000


def issue_body(rb: Rollback, first: bool, report: str | None = None) -> str:
    """The text of the issue (``first``) or of the comment a later rollback adds;
    ``report``, already safe Markdown (``rollout incident``'s), is folded in below."""
    commit = f"[`{rb.sha[:12]}`]({rb.commit_url})" if rb.commit_url else f"`{rb.sha[:12]}`"
    head = ("The rollout was rolled back." if first
            else "The rollout was rolled back again.")
    subject = rb.subject.replace("`", "'")
    parts = [
        marker(rb.flag, rb.sha),
        f"{head} Commit {commit} ({markdown(rb.date)}, {markdown(rb.author)}): `{subject}`",
        "",
        "**Reason and gate evidence** (from the commit):",
        "",
        _fenced(rb.evidence or ("(the commit records none)",)),
        "",
        f"`rollout history {rb.flag}` shows the whole rollout; `rollout retry {rb.flag}` "
        "starts it again once the cause is fixed. Close this issue when it is handled: the "
        "next rollback then opens a new one.",
    ]
    if report and len(report) <= REPORT_LIMIT:
        parts += ["", "<details><summary>Incident report (<code>rollout incident</code>)"
                  "</summary>", "", report.rstrip("\n"), "", "</details>"]
    return "\n".join(parts) + "\n"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class GitHub:
    """The few REST calls the issues need, through urllib; the token goes to ``api`` only."""

    def __init__(self, api: str, repository: str, token: str) -> None:
        self.api = api.rstrip("/")
        self.repository = repository
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.api}/repos/{self.repository}{path}", data=data, method=method, headers={
                "Accept": "application/vnd.github+json", "Authorization": f"Bearer {self.token}",
                "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json",
                "User-Agent": f"rollout-runner/{__version__}"})
        try:
            with urllib.request.build_opener(_NoRedirect).open(request, timeout=_TIMEOUT) as r:
                return json.loads(r.read(10 << 20) or b"null")
        except urllib.error.HTTPError as e:
            try:
                said = json.loads(e.read(4096)).get("message", "")
            except (ValueError, AttributeError, OSError):
                said = ""
            raise IssueError(self._hide(f"{method} {path}: HTTP {e.code}"
                                        + (f": {said}" if said else ""))) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise IssueError(self._hide(f"{method} {path}: {e}")) from None

    def _hide(self, text: str) -> str:
        return safe_line(redact(text, [self.token]), 500)

    def pages(self, path: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        sep = "&" if "?" in path else "?"
        for page in range(1, MAX_PAGES + 1):
            got = self.call("GET", f"{path}{sep}per_page=100&page={page}")
            if not isinstance(got, list):
                raise IssueError(f"GET {path}: not a list")
            out.extend(x for x in got if isinstance(x, dict))
            if len(got) < 100:
                break
        return out


def record(gh: GitHub, rb: Rollback, label: str = LABEL, report: str | None = None) -> str:
    """Open the issue of ``rb.flag``, or comment on the open one; what was done, in words.
    ``report``: the rollback's incident report, shown in the issue or the comment."""
    wanted = title(rb.flag)
    query = urllib.parse.urlencode({"state": "open", "labels": label})
    found = [i for i in gh.pages(f"/issues?{query}")
             if i.get("title") == wanted and "pull_request" not in i
             and isinstance(i.get("number"), int)]
    mark = marker(rb.flag, rb.sha)
    if not found:
        made = gh.call("POST", "/issues", {"title": wanted, "labels": [label],
                                          "body": issue_body(rb, first=True, report=report)})
        return f"opened issue #{made.get('number')}" if isinstance(made, dict) else "opened"
    issue = min(found, key=lambda i: i["number"])
    number = issue["number"]
    if mark in (issue.get("body") or "") or any(
            mark in (c.get("body") or "") for c in gh.pages(f"/issues/{number}/comments")):
        return f"already recorded on issue #{number}"
    gh.call("POST", f"/issues/{number}/comments", {"body": issue_body(rb, first=False, report=report)})
    return f"commented on issue #{number}"


def from_environment(env: Mapping[str, str]) -> GitHub:
    """The API client GitHub Actions' variables describe; IssueError when they do not."""
    token = env.get("GITHUB_TOKEN", "")
    if not token:
        raise IssueError("GITHUB_TOKEN is not set (the job needs `permissions: issues: write` "
                         "and `env: GITHUB_TOKEN: ${{ github.token }}`)")
    repository = env.get("GITHUB_REPOSITORY", "")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise IssueError("GITHUB_REPOSITORY is not set to OWNER/NAME")
    api = env.get("GITHUB_API_URL") or DEFAULT_API
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._/-]*)?", api):
        raise IssueError("GITHUB_API_URL is not an http(s) URL")
    return GitHub(api, repository, token)


__all__ = ["LABEL", "GitHub", "IssueError", "Rollback", "find_rollback", "from_environment",
           "github_repository", "issue_body", "marker", "record", "title"]
