"""What the flagd agreement tests share: one repository exercising every kind of targeting,
its two exports, and the contexts evaluated against them (test_flagd_agreement.py for the
Python core, test_flagd_js_agreement.py for the JavaScript core)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.evaluate.conftest import RepoWriter, flagd_schemas

N_CONTEXTS = 10_000


def agreement_repo(make_repo: Callable[..., RepoWriter], bucketing: str | None) -> RepoWriter:
    """21 flags: static and multi-variant splits, rollout percentages, bucket_by, canaries,
    rules, prerequisites, disabled, rolled back and paused; ``bucketing`` (None: not set)
    goes to ``[tool.rollout]``."""
    w = make_repo()
    if bucketing is not None:
        w.config(f'[tool.rollout]\nbucketing = "{bucketing}"\n')
    w.flag("half_percent", percentage=0.5)
    w.flag("five", percentage=5)
    w.flag("third", percentage=33.33)
    w.flag("canaried", percentage=50,
           targeting={"users": ["user-7", "user-70", "vip"], "regions": ["us-west-2"]})
    w.flag("color", variants={"red": "#f00", "green": "#0f0", "blue": "#00f"},
           default_variant="red", rollout_variant="green",
           percentage={"red": 33.33, "green": 33.33, "blue": 33.34},
           targeting={"rules": [
               {"attribute": "plan", "in": ["pro", "team"], "variant": "blue"},
               {"attribute": "email", "ends_with": "@example.com", "variant": "green"},
               {"attribute": "email", "starts_with": "ops", "variant": "red"},
               {"attribute": "country", "not_in": ["FR", "DE"], "variant": "red"},
               {"attribute": "tier", "equals": 3, "variant": "blue"},
           ]})
    w.flag("limit", variants={"low": 10, "mid": 100, "high": 1000}, default_variant="low",
           rollout_variant="high", percentage={"low": 25, "mid": 25, "high": 50})
    w.flag("ratio", variants={"lo": 0.25, "hi": 0.75}, default_variant="lo",
           rollout_variant="hi", percentage=10)
    w.flag("layout", variants={"a": {"cols": 2}, "b": {"cols": 3}}, default_variant="a",
           rollout_variant="b", percentage=50)
    w.flag("child", percentage=100, requires=["canaried"])
    w.flag("grandchild", percentage=33.33, requires=["child", "five"])
    w.flag("wants_blue", percentage=100,
           requires=[{"flag": "color", "variant": "blue"}])
    w.flag("per_account", percentage=50, bucket_by="account")
    w.flag("switched_off", enabled=False, percentage=100, targeting={"users": ["vip"]})
    w.flag("needs_switched_off", percentage=100, requires=["switched_off"])
    w.flag("always_on", default_variant="on")
    w.flag("everyone", percentage=100)  # constant, but not the default variant
    w.flag("rolled", risk="high", targeting={"regions": ["eu-north-1"]})
    w.plan("rolled")
    w.state("rolled", 10)
    w.flag("rolled_child", percentage=100, requires=["rolled"])
    # an automatic rollback: nobody gets the flag, canaries included, nor its dependents
    w.flag("rolled_back", risk="high",
           targeting={"users": ["vip", "user-7"], "regions": ["us-west-2", "eu-west-1"]})
    w.plan("rolled_back")
    w.state("rolled_back", 0, phase="rolled_back", step=0)
    w.flag("needs_rolled_back", percentage=100, requires=["rolled_back"])
    # a pause is not a rollback: percentage and canaries stay
    w.flag("paused", risk="high", targeting={"users": ["vip"], "regions": ["ap-south-1"]})
    w.plan("paused")
    w.state("paused", 25, phase="paused", step=3)
    return w


def contexts(n: int, *, ascii_keys: bool = False) -> list[tuple[str | None, dict[str, Any]]]:
    """``n`` (targeting key, attributes) pairs; ``ascii_keys``: no non-ASCII targeting key."""
    rng = random.Random(20261127)
    out: list[tuple[str | None, dict[str, Any]]] = []
    for i in range(n):
        key = None if i % 97 == 0 else rng.choice([
            f"user-{i}", str(uuid.UUID(int=rng.getrandbits(128))),
            f"u-{i}" if ascii_keys else f"ü-{i}", f"long-{'x' * 130}-{i}"])
        attrs: dict[str, Any] = {}
        if rng.random() < 0.8:
            attrs["region"] = rng.choice(["us-west-2", "eu-west-1", "eu-north-1", "ap-south-1"])
        if rng.random() < 0.5:
            attrs["plan"] = rng.choice(["free", "pro", "team", "enterprise"])
        if rng.random() < 0.3:
            attrs["email"] = rng.choice([f"u{i}@example.com", f"ops{i}@corp.io", f"x{i}@y.org"])
        if rng.random() < 0.3:
            attrs["country"] = rng.choice(["FR", "DE", "US"])
        if rng.random() < 0.2:
            attrs["tier"] = rng.choice([1, 3, 3.0, "3"])
        if rng.random() < 0.9:
            # bucket_by on strings, and on numbers and booleans as cat turns them into text
            attrs["account"] = rng.choice([f"acct-{rng.randrange(500)}", f"acct-{rng.randrange(500)}",
                                           rng.randrange(500), rng.randrange(500) + 0.5,
                                           float(rng.randrange(500)), rng.random() < 0.5])
        out.append((key, attrs))
    out[:3] = [("vip", {}), ("user-7", {"region": "us-west-2"}), ("user-70", {"plan": "pro"})]
    return out


def export(w: RepoWriter, out: Path) -> tuple[Path, Path]:
    """``rollout build`` of the native artifact and of the flagd export, as a user runs them."""
    native, flagd = out / "flags.resolved.json", out / "flags.flagd.json"
    result = run_cli(["build", "--out", str(native)], cwd=w.root)
    assert result.returncode == 0, result.stderr
    result = run_cli(["build", "--format", "flagd", "--flagd-schemas", str(flagd_schemas()),
                      "--out", str(flagd)], cwd=w.root)
    assert result.returncode == 0, result.stderr
    return native, flagd
