"""Benchmark: from a pushed revert to every client serving it, with real parts.

A copy of this project's example repository with a bare remote; the runner publishes to a
folder that a real nginx serves (Debian's ``nginx``, started by ``tests/nginx_server.py`` on
a loopback port); ``--clients`` (default 50) ``FlagClient.from_url`` clients poll it every
``--interval`` seconds (default 1; threads in this process). The rollout goes 0 → 5 → 10 %;
a person reverts the last step and pushes; then one runner run (``rollout advance --push
--publish dir:…``, a real process) holds the rollout and publishes.

Printed: the runner run (of which: publishing, timed from the moment it started to the
moment the file was in place), the client pickup (from the file in place to the last client
serving the revert), each against one poll interval; and the cost of an unchanged poll from
nginx's access log (bytes per 304, headers included), with requests and bytes per client
per hour at the SDK's default interval (30 s). The whole path is run twice in the same
run: unsigned, then signed (``[tool.rollout.publish] signing_key_env``: the runner writes
``flags.sig``, every client is given the public key and verifies each new artifact at
load), and the two are printed side by side.

Then, at scale (``--flags``, default 10,000 flags, one 20-flag set ``checkout`` among them:
``[tool.rollout.publish.sets]``), the bytes an application downloads from nginx per change
(a full ``200``) and per unchanged poll (a ``304``), headers included, from nginx's access
log: the whole ``flags.json`` as before (plain), the whole as its gzip copy
(``gzip_static``), and the set (plain, and gzip'd); and the time a ``from_url`` client
takes to load each (best of 5). The files are the ones publishing writes (``render``,
``render_sets``, ``compress`` of ``runner/reconcile/publish.py``) from a repository built in
memory, so the flagd schema check (timed by benchmarks/bench_scale.py) is not in the way.

    python benchmarks/bench_delivery.py                  # ~30 s, then ~40 s at scale
    python benchmarks/bench_delivery.py --clients 200 --interval 0.5
    python benchmarks/bench_delivery.py --only-scale --flags 10000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner import FlagClient
from runner.model import Flag, RepoConfig, Repository, Requirement, Risk
from runner.model.flagsets import PublishSet
from runner.reconcile.publish import compress, render, render_sets
from runner.sdk import DEFAULT_POLL_INTERVAL
from runner.signing import new_keypair
from tests.conftest import git, make_example_repo
from tests.nginx_server import running_nginx
from tests.runner.helpers import advance, write_metrics

FLAG = "phase_4_deployment"


def flipped_user(at10: Path, at5: Path) -> str:
    """A user on at 10 % (what the clients serve now), off at 5 % (after the revert)."""
    before, after = FlagClient.from_repo(at10, env={}), FlagClient.from_repo(at5, env={})
    try:
        for i in range(100_000):
            ctx = {"targetingKey": f"user-{i}"}
            if before.is_enabled(FLAG, ctx) and not after.is_enabled(FLAG, ctx):
                return f"user-{i}"
    finally:
        before.close()
        after.close()
    raise SystemExit("no user on at 10 % and off at 5 %")


def wait_all(clients: list[FlagClient], cond: object, timeout: float = 120.0) -> list[float]:
    """Wait until ``cond(client)`` for every client; the time (monotonic) each first did."""
    seen: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(clients):
        now = time.monotonic()
        if now > deadline:
            raise SystemExit(f"only {len(seen)} of {len(clients)} clients caught up")
        for i, c in enumerate(clients):
            if i not in seen and cond(c):  # type: ignore[operator]
                seen[i] = now
        time.sleep(0.002)
    return [seen[i] for i in range(len(clients))]


@dataclass
class Measured:
    run_s: float  # the runner run
    publish_at: float  # the published file in place, from the run's start
    pickup: list[float]  # each client serving the revert, from the file in place
    last: float  # the last client serving it, from the run's start
    log: list  # nginx's access log of flags.json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--interval", type=float, default=1.0, help="poll interval, seconds")
    ap.add_argument("--flags", type=int, default=10_000, help="flags in the scale case")
    ap.add_argument("--only-scale", action="store_true", help="only the scale case")
    args = ap.parse_args()
    if not args.only_scale:
        revert_to_clients(args)
    scale(args.flags)


def revert_to_clients(args: argparse.Namespace) -> None:
    unsigned = measure(args, signed=False)
    signed = measure(args, signed=True)
    report(args, unsigned, "unsigned")
    report(args, signed, "signed (flags.sig written by the runner, verified by every client)")


SIGNING_VAR = "ROLLOUT_SIGNING_KEY"


def measure(args: argparse.Namespace, *, signed: bool) -> Measured:
    """The whole path once: a revert pushed, one runner run, every client serving it."""
    private, public_key = new_keypair() if signed else ("", "")
    env = {SIGNING_VAR: private} if signed else None
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        repo = make_example_repo(t / "runner")
        if signed:
            with (repo / "pyproject.toml").open("a") as f:
                f.write(f'\n[tool.rollout.publish]\nsigning_key_env = "{SIGNING_VAR}"\n')
            git(repo, "commit", "-qam", "sign publications")
        remote = t / "remote.git"
        git(t, "init", "-q", "--bare", "-b", "main", str(remote))
        git(repo, "remote", "add", "origin", str(remote))
        git(repo, "push", "-q", "-u", "origin", "main")
        write_metrics(repo)
        public = t / "public"
        for minutes in (0, 5, 10):
            out = advance(repo, minutes, "--push", "--publish", f"dir:{public}", env=env)
            if out.returncode != 0:
                raise SystemExit(out.stdout + out.stderr)
        with running_nginx(public, t / "nginx") as server:
            url = f"{server.url}/flags.json"
            clients = [FlagClient.from_url(url, poll_interval=args.interval, env={},
                                           public_key=public_key or None)
                       for _ in range(args.clients)]
            try:
                # let the fleet settle into unchanged, conditional polls
                time.sleep(max(2.5 * args.interval, 1.0))
                # the file's mtime must move to a new second for nginx's validators
                while time.time() < int((public / "flags.json").stat().st_mtime) + 1.05:
                    time.sleep(0.01)
                person = t / "person"
                git(t, "clone", "-q", str(remote), str(person))
                git(person, "revert", "--no-edit", "HEAD")
                git(person, "push", "-q", "origin", "main")
                ctx = {"targetingKey": flipped_user(repo, person)}
                assert all(c.is_enabled(FLAG, ctx) for c in clients)
                before = (public / "flags.json").stat().st_mtime_ns
                published_at: list[float] = []

                def watch() -> None:  # when the new file is in place
                    while (public / "flags.json").stat().st_mtime_ns == before:
                        time.sleep(0.0005)
                    published_at.append(time.monotonic())

                watcher = threading.Thread(target=watch, daemon=True)
                watcher.start()
                start = time.monotonic()
                out = advance(repo, 10, "--push", "--publish", f"dir:{public}", env=env)
                run_end = time.monotonic()
                if out.returncode != 0 or "hold at 5%" not in out.stdout + git(
                        repo, "log", "-1", "--format=%s"):
                    raise SystemExit(out.stdout + out.stderr)
                watcher.join(10)
                served = wait_all(clients, lambda c: not c.is_enabled(FLAG, ctx))
                # unchanged polls after the revert
                time.sleep(max(2.5 * args.interval, 1.0))
            finally:
                for c in clients:
                    c.close()
            log = [r for r in server.requests() if r.uri == "/flags.json"]
    return Measured(run_end - start, published_at[0] - start,
                    [s - published_at[0] for s in served], max(served) - start, log)


def report(args: argparse.Namespace, m: Measured, what: str) -> None:
    run_s, publish_at, pickup, last, log = m.run_s, m.publish_at, m.pickup, m.last, m.log
    i = args.interval
    print(f"{what}: {args.clients} clients polling nginx every {i:g} s; a revert pushed, "
          f"then one runner run (rollout advance --push --publish dir:…)")
    print(f"  runner run: {run_s:.2f} s (the published file in place {publish_at:.2f} s "
          f"after it started)")
    print(f"  client pickup after publication: median {statistics.median(pickup):.2f} s, "
          f"last client {max(pickup):.2f} s (ratio last / one poll interval: "
          f"{max(pickup) / i:.2f}x)")
    print(f"  revert pushed to every client serving it: {last:.2f} s = runner run + "
          f"{last - run_s:.2f} s (aim: within one runner run + one poll interval: "
          f"{'met' if last <= run_s + i else 'NOT met'})")
    not_modified = [r for r in log if r.status == 304]
    full = [r for r in log if r.status == 200]
    if not not_modified:
        raise SystemExit("no 304 in nginx's access log")
    per = statistics.mean(r.bytes_sent for r in not_modified)
    body = statistics.mean(r.bytes_sent for r in full)
    hourly = 3600 / DEFAULT_POLL_INTERVAL
    print(f"  unchanged poll: {per:.0f} bytes per 304 response, headers included (aim "
          f"< 1 KB), {len(not_modified)} of {len(log)} polls; a full 200 response "
          f"{body:.0f} bytes (ratio full / unchanged: {body / per:.1f}x)")
    print(f"  at the default {DEFAULT_POLL_INTERVAL:g} s interval: {hourly:.0f} requests per "
          f"client per hour, {hourly * per / 1024:.0f} KiB per client per hour when nothing "
          f"changes")



# --- at scale: bytes per change and per unchanged poll, whole vs gzip vs a set ------------------

SET_SIZE = 20
NATIVE_NAME = "flags.json"


def scale_repository(n: int) -> Repository:
    """``n`` flags (static splits, a few with a prerequisite), ``SET_SIZE`` of them named
    ``checkout_*`` and selected by the set ``checkout``."""
    flags = {}
    for i in range(n):
        key = f"checkout_{i:02d}" if i < SET_SIZE else f"flag_{i:05d}"
        requires = (Requirement(f"flag_{i - 1:05d}"),) if i > SET_SIZE and i % 10 == 0 else ()
        flags[key] = Flag(key=key, description=f"flag {i} of a large repository",
                          owner=f"team-{i % 40}", risk=Risk.LOW, percentage=float(i % 100),
                          requires=requires)
    config = RepoConfig(publish_sets=(PublishSet("checkout", ("checkout_*",)),))
    return Repository(config=config, flags=flags)


def _get(url: str, *, gzip_ok: bool, etag: str | None = None) -> str | None:
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip" if gzip_ok
                                               else "identity"})
    if etag:
        req.add_header("If-None-Match", etag)
    try:
        with urllib.request.urlopen(req) as resp:
            resp.read()
            return resp.headers.get("ETag")
    except urllib.error.HTTPError as e:
        if e.code != 304:
            raise
        return etag


def _load_time(url: str, flag_set: str | None) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        client = FlagClient.from_url(url, set=flag_set, env={}, poll_interval=3600)
        best = min(best, time.perf_counter() - start)
        client.close()
    return best


def scale(n: int) -> None:
    repo = scale_repository(n)
    commit, generation = "0" * 40, 1
    files = render(repo, commit, generation)
    sets = render_sets(repo, commit, generation)
    with tempfile.TemporaryDirectory() as tmp:
        public = Path(tmp) / "public"
        for prefix, group in {"": files, **sets}.items():
            (public / prefix).mkdir(parents=True, exist_ok=True)
            for name, data in group.items():
                (public / prefix / name).write_bytes(data)
                (public / prefix / f"{name}.gz").write_bytes(compress(data))
        with running_nginx(public, Path(tmp) / "nginx") as server:
            whole_url = f"{server.url}/flags.json"
            set_url = f"{server.url}/sets/checkout/flags.json"
            cases = [("whole flags.json, plain (before)", whole_url, False),
                     ("whole flags.json, gzip copy", whole_url, True),
                     (f"set of {SET_SIZE} flags, plain", set_url, False),
                     (f"set of {SET_SIZE} flags, gzip copy", set_url, True)]
            for _, url, gz in cases:
                etag = _get(url, gzip_ok=gz)
                _get(url, gzip_ok=gz, etag=etag)
            log = server.requests()
            times = {"whole": _load_time(whole_url, None), "set": _load_time(whole_url,
                                                                               "checkout")}
    print(f"\nat scale: {n:,} flags, the set `checkout` of {SET_SIZE} "
          f"({len(sets['sets/checkout/'][NATIVE_NAME]):,} bytes plain); whole flags.json "
          f"{len(files[NATIVE_NAME]):,} bytes, flags.flagd.json {len(files['flags.flagd.json']):,}")
    print(f"  {'what a client fetches':<34} {'per change (200)':>18} {'per unchanged poll (304)':>26}")
    base = None
    for i, (what, _, _) in enumerate(cases):
        full, same = log[2 * i], log[2 * i + 1]
        assert (full.status, same.status) == (200, 304), (full, same)
        base = base or full.bytes_sent
        print(f"  {what:<34} {full.bytes_sent:>12,} B {base / full.bytes_sent:>4.0f}x "
              f"{same.bytes_sent:>20,} B")
    print(f"  from_url load, best of 5: whole {times['whole'] * 1000:,.0f} ms, set "
          f"{times['set'] * 1000:,.1f} ms (ratio {times['whole'] / times['set']:,.0f}x)")


if __name__ == "__main__":
    main()
