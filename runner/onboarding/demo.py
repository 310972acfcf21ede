"""``rollout demo``: the whole story, offline, in a temporary repository, in seconds.

A new flag with a ``safe`` plan and file metrics (the repository ``rollout init`` writes);
the runner advances it step by step on a simulated clock (``--now``); a bad metrics window
rolls it back in a commit; a person's ``git revert`` of that rollback is held by the runner;
the last mile: the runner publishes the flags as served to a folder (``--publish dir:…``)
that a tiny web server on loopback serves (the standard library's, so the demo stays
offline), and a ``FlagClient.from_url`` client polling it picks up the rollback and the
hold; then a gate that sees the flag: a second feature, failing 5 % of its own requests, passes
the global error-rate gate at 5 % and is rolled back there by its comparison gate (treatment
against control, from a cohort metrics document); then the audit, from ``git log`` alone.
Every step is a real ``rollout`` or ``git`` process, printed as a transcript, with the flag's
answer for a few users after each stage.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from runner.errors import RolloutError
from runner.git import z_records
from runner.onboarding.scaffold import scaffold
from runner.reconcile.message import parse_message
from runner.sdk import FlagClient
from runner.timefmt import utc_iso

FLAG = "new_checkout"
T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
USERS = ("qa-user-1", "user-1", "user-2", "user-3", "user-4", "user-5", "user-6", "user-7")
#: ``step``: the counts since the step started, which the scaffolded ``error_rate`` gate (with
#: a confidence) judges: 5 minutes of 600 requests a minute
HEALTHY = {"error_rate": 0.3, "p95_latency_ms": 180.0, "p99_latency_ms": 260.0,
           "request_count": 1200, "error_count": 4, "step": {"requests": 3000, "errors": 9}}
BAD = {**HEALTHY, "error_rate": 4.2, "error_count": 50, "step": {"requests": 1000, "errors": 42}}
#: The guarded stage's feature: 5 % of the requests served its new variant fail, 0.3 % of the
#: others (about 6,000 users an hour: 12,000 requests since its 5 % step started).
GUARDED = "new_pricing"
GUARDED_FLAG = f"""\
key: {GUARDED}
description: The new pricing page.
owner: your-team
risk: medium
default_variant: off
"""
GUARDED_PLAN = f"""\
flag: {GUARDED}
strategy: safe
wait: 5m
gates:
  error_rate: 1.0       # the whole service: cannot see 5 % of 5 % of the traffic
  request_count: 100
compare:                # the users served the new variant against the others
  error_rate: {{max_increase: 0.5}}
  confidence: 0.95
  min_requests: 500
on_failure: rollback
"""
GUARDED_HEALTHY = {"error_rate": 0.3, "request_count": 1200}
GUARDED_COHORTS = {"treatment": {"requests": 600, "errors": 32, "assigned": 600},
                   "control": {"requests": 11400, "errors": 34, "assigned": 11400}}
ALICE = ("Alice Engineer", "alice@example.com")
BOB = ("Bob Oncall", "bob@example.com")


class DemoFailed(RolloutError):
    """A step of the story did not do what it must: the demo stops and says which."""


def at(minutes: float) -> str:
    return utc_iso(T0 + timedelta(minutes=minutes))


class Story:
    def __init__(self, root: Path, out: Callable[[str], None]) -> None:
        self.root = root
        self.out = out
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("GIT_", "ROLLOUT_")) and k != "EMERGENCY_SHUTDOWN"}
        # the package this demo runs from, whatever is installed
        package_parent = str(Path(__file__).resolve().parent.parent.parent)
        self.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [package_parent, os.environ.get("PYTHONPATH")]))
        self.env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
        # the story runs on a simulated clock (--now), which may lie ahead of the real one
        self.env["ROLLOUT_ALLOW_FUTURE_NOW"] = "1"
        #: the simulated clock, minutes after T0, for people's commits
        self.minute: float = -10

    # --- processes ---------------------------------------------------------------------

    def _run(self, args: Sequence[str], who: tuple[str, str] | None = ALICE,
             show: str | None = None, ok: Sequence[int] = (0,),
             echo: bool = True) -> subprocess.CompletedProcess[str]:
        # people's commits are dated on the simulated clock, as the runner dates its own
        # with `--now`, so the audit reads in one timeline
        env = dict(self.env)
        if who is not None:
            env.update(GIT_AUTHOR_NAME=who[0], GIT_AUTHOR_EMAIL=who[1],
                       GIT_COMMITTER_NAME=who[0], GIT_COMMITTER_EMAIL=who[1],
                       GIT_AUTHOR_DATE=at(self.minute), GIT_COMMITTER_DATE=at(self.minute))
        if show:
            self.out(f"$ {show}")
        proc = subprocess.run(list(args), cwd=self.root, env=env, text=True,
                              capture_output=True, check=False)
        if echo:
            for line in (proc.stdout + proc.stderr).strip().splitlines():
                self.out(f"  {line}")
        if proc.returncode not in ok:
            raise DemoFailed(f"{show or ' '.join(args)} exited {proc.returncode}: "
                             f"{(proc.stderr or proc.stdout).strip()[:300]}")
        return proc

    def git(self, *args: str, who: tuple[str, str] = ALICE, show: bool = False,
            echo: bool = False) -> str:
        label = shlex.join(["git", *args]) if show else None
        return self._run(["git", *args], who=who, show=label, echo=echo).stdout.strip()

    def rollout(self, *args: str, ok: Sequence[int] = (0,)) -> subprocess.CompletedProcess[str]:
        """The runner as CI runs it: its own bot identity, the simulated clock."""
        return self._run([sys.executable, "-m", "runner", *args], who=None,
                         show=shlex.join(["rollout", *args]), ok=ok)

    # --- what the story looks at --------------------------------------------------------

    def metrics(self, values: dict[str, Any], note: str, flag: str = FLAG) -> None:
        path = self.root / "metrics" / f"{flag}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
        latency = (f", p95 {values['p95_latency_ms']:g} ms" if "p95_latency_ms" in values
                   else "")
        self.out(f"# metrics/{flag}.json: {note} (error_rate {values['error_rate']}%"
                 f"{latency}, {values['request_count']} requests)")

    def state(self, flag: str = FLAG) -> dict[str, object]:
        path = self.root / "rollouts" / f"{flag}.state.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def answers(self, stage: str, flag: str = FLAG) -> None:
        client = FlagClient.from_repo(self.root, env={})
        cells = []
        for user in USERS:
            r = client.evaluate(flag, {"targetingKey": user}, False)
            cells.append(f"{user}={'ON ' if r.value is True else 'off'} ({r.reason})")
        s = self.state(flag)
        where = f"{s.get('phase')} at {s.get('current_percentage')}%" if s else "no rollout yet"
        self.out(f"  ┌ {flag} after {stage} [{where}]")
        for i in range(0, len(cells), 4):
            self.out("  │ " + "   ".join(cells[i:i + 4]))
        self.out("  └")

    def section(self, title: str) -> None:
        self.out("")
        self.out(f"== {title} " + "=" * max(0, 70 - len(title)))


POLL = 0.2


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free loopback port (standard library, quiet); yield
    its URL."""
    class Quiet(SimpleHTTPRequestHandler):
        def send_head(self) -> Any:
            # its Last-Modified has a one-second resolution and it sends no ETag: two
            # publications within a second would look unchanged; answer every poll in full
            del self.headers["If-Modified-Since"]
            return super().send_head()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def picked_up(s: Story, client: FlagClient, commit: str, what: str) -> None:
    """Wait (10 s at most) until ``client`` serves the flags published at ``commit``."""
    start = time.monotonic()
    while client.source_commit != commit:
        if time.monotonic() - start > 10:
            raise DemoFailed(f"the client polling {client.source} did not pick up {what}")
        time.sleep(0.01)
    cells = [f"{u}={'ON ' if client.is_enabled(FLAG, {'targetingKey': u}) else 'off'}"
             for u in USERS[:4]]
    s.out(f"# a client polling {client.source} every {POLL:g} s now serves {what} "
          f"(source commit {commit[:7]}): " + " ".join(cells))


def run_story(root: Path, out: Callable[[str], None] = print) -> dict[str, str]:
    """Play the story in ``root`` (an empty folder). Returns the key commits by name."""
    with tempfile.TemporaryDirectory(prefix="rollout-demo-published-") as published:
        return _story(root, Path(published), out)


def _story(root: Path, published: Path, out: Callable[[str], None]) -> dict[str, str]:
    s = Story(root, out)
    publish = ("--publish", f"dir:{published}")
    commits: dict[str, str] = {}

    s.section("1. A pull request adds a flag and a safe rollout plan")
    scaffold(root, branch="main", metrics="file")
    out(f"# rollout init {root}: the repository, then the pull request's two files")
    s.git("init", "-q", "-b", "main")
    s.git("add", "-A", "--", ".", f":!flags/{FLAG}.yaml", f":!rollouts/{FLAG}.yaml")
    s.git("commit", "-q", "-m", "Set up Rollout Runner", show=True)
    out(f"# the pull request: flags/{FLAG}.yaml (risk medium, canary qa-user-1) and "
        f"rollouts/{FLAG}.yaml (strategy safe, 5m a step, error rate <= 1%, p95 <= 500 ms, "
        ">= 100 requests)")
    s.rollout("validate")
    plan = s._run([sys.executable, "-m", "runner", "plan", "--base", "HEAD", "--now", at(0)],
                  who=None, show=f"rollout plan --base HEAD --now {at(0)}", echo=False).stdout
    # the comment CI posts on the pull request (its Mermaid chart renders on GitHub)
    chart = plan.find("```mermaid")
    for line in (plan[:chart] if chart >= 0 else plan).rstrip().splitlines():
        out(f"  | {line}")
    if chart >= 0:
        out("  | (+ a Mermaid gantt chart of the expected timeline)")
    s.git("add", "-A")
    s.minute = -1
    s.git("commit", "-q", "-m", f"Add {FLAG} with a safe rollout plan", show=True)
    s.answers("the merge")

    s.section("2. The runner advances it every 5 minutes while the gates pass")
    s.metrics(HEALTHY, "a healthy window")
    out("# each run publishes the flags as served (flags.json, flags.flagd.json) to a folder "
        "a web server serves; clients poll it")
    for minute in (0, 5, 10, 15):
        s.rollout("advance", "--now", at(minute), *publish)
        if minute in (0, 15):
            s.answers(f"advance at T+{minute}m")
    commits["at_25"] = s.git("rev-parse", "HEAD")
    if s.state().get("current_percentage") != 25:
        raise DemoFailed(f"expected 25% after four advances, state says {s.state()}")
    with serving(published) as url:
        client = FlagClient.from_url(f"{url}/flags.json", poll_interval=POLL, env={})
        try:
            picked_up(s, client, commits["at_25"], "25%")
            _rollback_and_revert(s, commits, publish, client)
        finally:
            client.close()
    _guarded(s, commits)
    _audit(s)
    return commits


def _rollback_and_revert(s: Story, commits: dict[str, str], publish: tuple[str, str],
                         client: FlagClient) -> None:
    out = s.out

    s.section("3. A bad metrics window: the runner rolls back, in a commit")
    s.metrics(BAD, "errors spike")
    proc = s.rollout("advance", "--now", at(17), *publish, ok=(4,))
    out(f"  (exit {proc.returncode}: at least one rollout was rolled back — CI turns red)")
    commits["rollback"] = s.git("rev-parse", "HEAD")
    if s.state().get("phase") != "rolled_back":
        raise DemoFailed(f"expected a rollback, state says {s.state()}")
    s.answers("the automatic rollback")
    picked_up(s, client, commits["rollback"], "the rollback")

    s.section("4. On-call decides the spike was unrelated and reverts the rollback")
    s.minute = 19
    s.git("revert", "--no-edit", commits["rollback"], who=BOB, show=True)
    commits["revert"] = s.git("rev-parse", "HEAD")
    s.metrics(HEALTHY, "healthy again")
    s.rollout("advance", "--now", at(20), *publish)
    commits["hold"] = s.git("rev-parse", "HEAD")
    st = s.state()
    if st.get("phase") != "paused" or commits["hold"] == commits["revert"]:
        raise DemoFailed(f"expected the runner to hold after the revert, state says {st}")
    out("# the runner noticed a person took charge: it holds, and never fights the revert")
    s.rollout("advance", "--now", at(40), *publish)
    if s.git("rev-parse", "HEAD") != commits["hold"]:
        raise DemoFailed("the runner moved a held rollout")
    s.answers("the revert, held by the runner")
    picked_up(s, client, commits["hold"], "the revert, held at 25%")


def _guarded(s: Story, commits: dict[str, str]) -> None:
    out = s.out
    s.section("5. A gate that sees the flag: treatment against control")
    out(f"# another pull request: {GUARDED}, a feature that fails 5 % of the requests it "
        "serves (0.3 % for everyone else); its plan compares the users served the new "
        "variant (treatment) with the others (control)")
    (s.root / "flags" / f"{GUARDED}.yaml").write_text(GUARDED_FLAG, encoding="utf-8")
    (s.root / "rollouts" / f"{GUARDED}.yaml").write_text(GUARDED_PLAN, encoding="utf-8")
    for line in GUARDED_PLAN.splitlines()[3:10]:
        out(f"  | {line}")
    s.minute = 44
    s.git("add", "-A", "flags", "rollouts")
    s.git("commit", "-q", "-m", f"Add {GUARDED} with a guarded rollout plan", show=True)
    s.metrics(GUARDED_HEALTHY, "before the step: no one has the feature yet", GUARDED)
    s.rollout("advance", "--now", at(45), GUARDED)
    s.rollout("advance", "--now", at(50), GUARDED)
    if s.state(GUARDED).get("current_percentage") != 5:
        raise DemoFailed(f"expected {GUARDED} at 5%, state says {s.state(GUARDED)}")
    t, c = GUARDED_COHORTS["treatment"], GUARDED_COHORTS["control"]
    requests, errors = t["requests"] + c["requests"], t["errors"] + c["errors"]
    window = {"error_rate": round(100 * errors / requests, 2), "request_count": requests,
              "cohorts": GUARDED_COHORTS}
    s.metrics(window, "5 minutes at 5 %, with a count per cohort", GUARDED)
    out(f"#   treatment (served on): {t['errors']} errors in {t['requests']} requests; "
        f"control (served off): {c['errors']} in {c['requests']:,}")
    proc = s.rollout("advance", "--now", at(55), GUARDED, ok=(4,))
    out(f"  (exit {proc.returncode}: rolled back at the first step, 5 %)")
    commits["guarded_rollback"] = rollback = s.git("rev-parse", "HEAD")
    if s.state(GUARDED).get("phase") != "rolled_back":
        raise DemoFailed(f"expected the comparison to roll {GUARDED} back, state says "
                         f"{s.state(GUARDED)}")
    evidence = parse_message(s.git("log", "-1", "--format=%B", rollback))
    if evidence is None:
        raise DemoFailed(f"the rollback commit {rollback[:7]} is not the runner's")
    out("# the evidence, from the rollback commit's trailers:")
    for line in evidence.gate_lines:
        note = ("  <- the global gate passes: alone, it would have let the feature reach "
                "25 % of the users" if line.startswith("error_rate=") else "")
        out(f"  Rollout-Gate: {line}{note}")
    for line in evidence.compare_lines:
        out(f"  Rollout-Compare: {line}")
    s.answers("the comparison's rollback", GUARDED)


def _audit(s: Story) -> None:
    out = s.out
    s.section("6. The audit: git log alone")
    out("$ git log --reverse --format='%h %an %s' + %(trailers:key=Rollout-Gate,valueonly)")
    log = s._run(["git", "log", "-z", "--reverse", "--format=%h%x00%an%x00%s%x00%B"],
                 echo=False).stdout
    for (sha, author, subject, text), _ in z_records([log], 4):
        out(f"  {sha} {author[:20]:<20} {subject}")
        m = parse_message(text)
        if m is not None and m.gate_lines:
            out(f"  {'':7} {'':20} gates: {', '.join(m.gate_lines)}")
    s.rollout("history", FLAG)
    s.rollout("status")


def demo(keep: Path | None = None, out: Callable[[str], None] = print) -> int:
    return play(run_story, keep, out, f"`git log`, `rollout history {FLAG}`, "
                f"`rollout resume {FLAG}`", "rollout demo")


def play(story: Callable[[Path, Callable[[str], None]], object], keep: Path | None,
         out: Callable[[str], None], try_there: str, command: str) -> int:
    """Play ``story`` in ``keep`` (which must be empty) or in a temporary folder removed
    after; ``try_there``: what to run in a kept repository, ``command``: the demo's own."""
    if keep is not None:
        if keep.exists() and any(keep.iterdir()):
            raise FileExistsError(f"{keep} is not empty")
        keep.mkdir(parents=True, exist_ok=True)
        story(keep, out)
        out("")
        out(f"The repository is kept in {keep}: try {try_there} there.")
        return 0
    with tempfile.TemporaryDirectory(prefix="rollout-demo-") as tmp:
        root = Path(tmp) / "flags-repo"
        root.mkdir()
        story(root, out)
    out("")
    out(f"Run `{command} --keep DIR` to keep the repository and look around.")
    return 0
