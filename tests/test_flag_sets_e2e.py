"""Flag sets and compressed delivery end to end, with real parts: a GitOps repository
publishing to a folder that Debian's nginx serves (``gzip_static on``), ``FlagClient``
clients of one set (``set=``) and of the whole; a rollback of a flag the set holds (as a
prerequisite) reaches the set's client; a set that does not hold it keeps its bytes. The
bytes each client downloads are read from nginx's access log, never timed.

Every wait is a loop with a generous deadline; nothing asserts how long anything took."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from pathlib import Path

from runner import FlagClient
from tests.conftest import git, make_example_repo, run_cli
from tests.nginx_server import NginxServer, Request, nginx  # noqa: F401  (the fixture)
from tests.runner.helpers import advance, at, write_metrics

POLL = 0.2
USERS = [f"user-{i}" for i in range(400)]
StartNginx = Callable[..., NginxServer]


def wait_for(cond: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def next_second(public: Path) -> None:
    """nginx's validators have a one-second resolution (see test_delivery_e2e.py)."""
    newest = max(p.stat().st_mtime for p in public.rglob("*") if p.is_file())
    wait_for(lambda: time.time() >= int(newest) + 1.05, "the next second")


def served(server: NginxServer, uri: str, status: int) -> list[Request]:
    return [r for r in server.requests() if r.uri == uri and r.status == status]


def test_a_set_client_reads_its_set_gzipped_and_sees_a_rollback_of_a_flag_it_holds(
        tmp_path: Path, nginx: StartNginx) -> None:  # noqa: F811
    repo = make_example_repo(tmp_path / "repo")
    with (repo / "pyproject.toml").open("a") as f:
        f.write('\n[tool.rollout.publish.sets]\nllm = ["llm_*"]\nsecurity = ["security_*"]\n')
    git(repo, "commit", "-qam", "two flag sets")
    write_metrics(repo)
    public = tmp_path / "public"
    for minutes in (0, 5, 10):
        out = advance(repo, minutes, "--publish", f"dir:{public}")
        assert out.returncode == 0, out.stdout + out.stderr
    server = nginx(public)
    llm = FlagClient.from_url(f"{server.url}/flags.json", set="llm", poll_interval=POLL, env={})
    whole = FlagClient.from_url(f"{server.url}/flags.json", poll_interval=POLL, env={})
    try:
        # the set holds its flag and, carried with it, the prerequisite it requires
        assert llm.flag_keys() == ["llm_integration_enabled", "phase_4_deployment"]
        assert len(whole.flag_keys()) == 9
        ctx = [{"targetingKey": u} for u in USERS]
        for key in llm.flag_keys():  # each evaluates exactly as in the whole artifact
            assert [llm.evaluate(key, c) for c in ctx] == [whole.evaluate(key, c) for c in ctx]
        on = [c for c in ctx if llm.is_enabled("llm_integration_enabled", c)]
        assert 0 < len(on) < len(USERS) / 4  # at 10 %
        assert llm.generation == whole.generation and llm.source_commit == whole.source_commit

        # served as the gzip copy beside it (gzip_static): what nginx sent is that file
        uri = "/sets/llm/flags.json"
        (first,) = served(server, uri, 200)
        packed = (public / "sets/llm/flags.json.gz").read_bytes()
        assert first.body_bytes == len(packed) < (public / "sets/llm/flags.json").stat().st_size
        assert gzip.decompress(packed) == (public / "sets/llm/flags.json").read_bytes()

        security = public / "sets/security/flags.json"
        security_before = (security.read_bytes(), security.stat().st_ino)
        next_second(public)
        out = run_cli(["rollback", "phase_4_deployment", "--reason", "latency", "--now", at(12),
                       "--publish", f"dir:{public}"], cwd=repo)
        assert out.returncode == 0, out.stdout + out.stderr
        # every set holding the flag is republished, the others keep their bytes
        assert "sets/llm/flags.json" in out.stdout and "sets/security" not in out.stdout
        assert (security.read_bytes(), security.stat().st_ino) == security_before
        rollback = git(repo, "rev-parse", "HEAD")
        doc = json.loads((public / "sets/llm/flags.json").read_text())
        assert doc["source_commit"] == rollback
        assert doc["flags"]["phase_4_deployment"]["rollout"]["phase"] == "rolled_back"

        wait_for(lambda: not any(llm.is_enabled("llm_integration_enabled", c) for c in on),
                 "the set's client serving the rollback")
        assert llm.source_commit == rollback and llm.generation == doc["generation"]
        wait_for(lambda: whole.source_commit == rollback, "the whole's client")
        assert llm.generation == whole.generation

        # per change the set's client downloaded its set, gzip'd: a few hundred bytes
        bodies = served(server, uri, 200)
        assert len(bodies) == 2 and bodies[-1].body_bytes == len(
            (public / "sets/llm/flags.json.gz").read_bytes())
        wait_for(lambda: len(served(server, uri, 304)) >= 3, "unchanged polls")
        assert all(r.bytes_sent < 1024 and r.body_bytes == 0 for r in served(server, uri, 304))
    finally:
        llm.close()
        whole.close()


FLAG = """key: {key}
description: A flag of a large repository.
owner: team-{team}
risk: low
percentage: {pct}
"""


def test_a_client_of_a_small_set_downloads_kilobytes_per_change_whatever_the_whole_weighs(
        tmp_path: Path, nginx: StartNginx) -> None:  # noqa: F811
    """20 flags of a repository of 220: the set's client downloads the set per change, a
    cost that does not grow with the repository (benchmarks/bench_delivery.py measures
    the same at 10,000 flags, and times it)."""
    repo = tmp_path / "repo"
    (repo / "flags").mkdir(parents=True)
    (repo / "rollouts").mkdir()
    (repo / "pyproject.toml").write_text(
        '[tool.rollout]\n\n[tool.rollout.publish.sets]\ncheckout = ["checkout_*"]\n')
    keys = [f"flag_{i:05d}" for i in range(200)] + [f"checkout_{i:02d}" for i in range(20)]
    for i, key in enumerate(keys):
        (repo / "flags" / f"{key}.yaml").write_text(FLAG.format(key=key, team=i % 7, pct=i % 100))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a large repository")
    public = tmp_path / "public"
    out = run_cli(["publish", "--to", f"dir:{public}"], cwd=repo)
    assert out.returncode == 0, out.stdout + out.stderr
    server = nginx(public)
    checkout = FlagClient.from_url(f"{server.url}/flags.json", set="checkout",
                                   poll_interval=POLL, env={})
    try:
        assert checkout.flag_keys() == sorted(keys[-20:])
        next_second(public)
        (repo / "flags" / "checkout_07.yaml").write_text(
            FLAG.format(key="checkout_07", team=0, pct=100))
        git(repo, "commit", "-qam", "checkout_07 to everyone")
        out = run_cli(["publish", "--to", f"dir:{public}"], cwd=repo)
        assert out.returncode == 0, out.stdout + out.stderr
        wait_for(lambda: checkout.is_enabled("checkout_07", {"targetingKey": "u"}),
                 "the change")
        uri = "/sets/checkout/flags.json"
        bodies = served(server, uri, 200)
        assert len(bodies) == 2  # the first load and the change, nothing else
        whole = (public / "flags.json").stat().st_size
        for r in bodies:
            assert r.bytes_sent < 2 * 1024, r  # kilobytes, headers included
            assert r.body_bytes * 50 < whole  # the whole would be 50 times more at least
    finally:
        checkout.close()
