"""``rollout validate`` against ``check-jsonschema`` on a large generated repository.

Generates N flags and M rollout plans (default 10,000 and 1,000) with a realistic variety
(boolean and string flags, prerequisites, canary users and regions, attribute rules, static
splits, every strategy, custom steps with their own waits and gates), then times, in the same
run and on the same files:

- ``rollout validate`` (schemas AND every semantic check across the repository), and
- ``check-jsonschema --schemafile schemas/flag.schema.json flags/*.yaml`` plus the same for
  ``rollouts/`` with ``schemas/rollout.schema.json`` (schemas only).

It prints each time, best of ``--repeat`` runs, and the ratio. Both run as fresh processes,
as a user or pre-commit runs them.

    python benchmarks/bench_validate.py [--flags 10000] [--plans 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1"]
TEAMS = ["platform-team", "payments", "search", "growth", "'@alice'", "observability-team"]


def flag_text(i: int, rng: random.Random, planned: bool) -> str:
    key = f"flag_{i:05d}"
    lines = [
        "# yaml-language-server: $schema=../schemas/flag.schema.json",
        f"key: {key}",
        f"description: Generated flag number {i}, for the benchmark. It turns feature {i} on.",
        f"owner: {rng.choice(TEAMS)}",
        f"risk: {rng.choice(['low', 'low', 'medium', 'high'])}",
        f"enabled: {rng.choice(['true', 'true', 'false'])}",
    ]
    kind = rng.random()
    if kind < 0.6:
        lines.append("default_variant: off")
    elif kind < 0.85:
        lines += ["variants:", "  control: 'classic'", "  treatment: 'new-ui'", "  beta: 'beta-ui'",
                  "default_variant: control", "rollout_variant: treatment"]
    else:
        lines += ["variants:", "  low: 10", "  high: 50", "default_variant: low", "rollout_variant: high"]
    if i > 0 and rng.random() < 0.3:
        lines.append("requires:")
        for j in rng.sample(range(i), k=min(i, rng.randint(1, 2))):  # earlier flags: no cycles
            lines.append(f"  - flag_{j:05d}")
    if rng.random() < 0.4:
        lines.append("targeting:")
        lines.append(f"  users: [user-{i}-1, user-{i}-2]")
        lines.append(f"  regions: [{rng.choice(REGIONS)}]")
        if rng.random() < 0.5:
            lines += ["  rules:", "    - attribute: plan", "      in: [enterprise, pro]",
                      "      variant: " + ("on" if kind < 0.6 else "treatment" if kind < 0.85 else "high"),
                      "    - attribute: email", "      ends_with: '@example.com'",
                      "      variant: " + ("on" if kind < 0.6 else "beta" if kind < 0.85 else "high")]
    if not planned:
        if 0.6 <= kind < 0.85 and rng.random() < 0.5:
            lines.append("percentage: {control: 50, treatment: 25, beta: 25}")
        elif rng.random() < 0.7:
            lines.append(f"percentage: {rng.choice([0, 5, 12.5, 50, 100])}")
        if rng.random() < 0.3:
            lines.append("bucket_by: account_id")
    if rng.random() < 0.2:
        lines.append(f"env_override: FEATURE_{i}")
    return "\n".join(lines) + "\n"


def plan_text(i: int, rng: random.Random) -> str:
    lines = ["# yaml-language-server: $schema=../schemas/rollout.schema.json", f"flag: flag_{i:05d}"]
    strategy = rng.choice(["safe", "safe", "fast", "custom"])
    lines.append(f"strategy: {strategy}")
    lines.append(f"wait: {rng.choice(['5m', '300s', '10m', '1h'])}")
    lines += ["gates:", "  error_rate: 1.0", "  p95_latency_ms: 500", "  request_count: 100"]
    if rng.random() < 0.3:
        lines += ["  custom:", "    queue_depth:", "      query: queue_depth", "      max: 1000",
                  "      dry_run: true"]
    if strategy == "custom":
        lines += ["steps:", "  - 0", "  - percentage: 1", "    wait: 1h", "    gates:",
                  "      error_rate: 0.5", "  - 10", "  - percentage: 50", "    wait: 30m", "  - 100"]
    lines += ["on_failure: " + rng.choice(["rollback", "pause"]), "failure_limit: 2"]
    return "\n".join(lines) + "\n"


PYPROJECT = """\
[project]
name = "generated-gitops-repo"
version = "0"

[tool.rollout]
flags_dir = "flags"
rollouts_dir = "rollouts"

[tool.rollout.metrics]
type = "file"
path = "logs/metrics.json"
"""


def generate(root: Path, n_flags: int, n_plans: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    (root / "flags").mkdir(parents=True)
    (root / "rollouts").mkdir()
    shutil.copytree(PROJECT / "schemas", root / "schemas")
    (root / "pyproject.toml").write_text(PYPROJECT)
    planned = set(range(min(n_plans, n_flags)))
    for i in range(n_flags):
        (root / "flags" / f"flag_{i:05d}.yaml").write_text(flag_text(i, rng, i in planned))
    for i in sorted(planned):
        (root / "rollouts" / f"flag_{i:05d}.yaml").write_text(plan_text(i, rng))


def timed(cmd: list[str], cwd: Path, env: dict[str, str], expect: int = 0) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if out.returncode != expect:
        sys.exit(f"{' '.join(cmd[:4])}... exited {out.returncode}:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flags", type=int, default=10_000)
    ap.add_argument("--plans", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each tool; the best counts")
    ap.add_argument("--keep", action="store_true", help="keep the generated repository")
    args = ap.parse_args()
    if shutil.which("check-jsonschema") is None:
        sys.exit("check-jsonschema is not installed (pip install check-jsonschema): it is the baseline")

    tmp = Path(tempfile.mkdtemp(prefix="bench-validate-"))
    try:
        root = tmp / "repo"
        t0 = time.perf_counter()
        generate(root, args.flags, args.plans)
        print(f"generated {args.flags} flags and {min(args.plans, args.flags)} plans in {root} "
              f"({time.perf_counter() - t0:.1f}s)")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
        flags = sorted(str(p.relative_to(root)) for p in (root / "flags").iterdir())
        plans = sorted(str(p.relative_to(root)) for p in (root / "rollouts").iterdir())
        ours_cmd = [sys.executable, "-m", "runner", "validate"]
        theirs = [
            ["check-jsonschema", "--schemafile", "schemas/flag.schema.json", *flags],
            ["check-jsonschema", "--schemafile", "schemas/rollout.schema.json", *plans],
        ]
        ours_times, theirs_times = [], []
        for _ in range(args.repeat):
            ours_times.append(timed(ours_cmd, root, env))
            theirs_times.append(sum(timed(cmd, root, env) for cmd in theirs))
        ours, base = min(ours_times), min(theirs_times)
        print(f"rollout validate (schemas + semantic checks): {ours:7.2f}s  "
              f"({(args.flags + len(plans)) / ours:,.0f} files/s)")
        print(f"check-jsonschema (schemas only):              {base:7.2f}s  "
              f"({(args.flags + len(plans)) / base:,.0f} files/s)")
        print(f"ratio: rollout validate is {base / ours:.1f}x faster than check-jsonschema")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
