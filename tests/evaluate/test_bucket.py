"""Buckets: bit-for-bit flagd-core's ``fractional``, uniform, and monotone in the percentage."""

from __future__ import annotations

import random
import string

import cbor2
import pytest
from openfeature.contrib.tools.flagd.core.targeting.custom_ops import fractional

from runner.evaluate.bucket import TOTAL_WEIGHT, bucket, cbor_text, json_logic_text, weight


def _random_text(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + "-_@.éü中😀"
    return "".join(rng.choice(alphabet) for _ in range(rng.choice((0, 1, 5, 20, 23, 24, 60,
                                                                  127, 128, 300))))


def test_cbor_text_is_the_canonical_encoding_cbor2_gives() -> None:
    rng = random.Random(7)
    for text in ["", "a", "x" * 23, "x" * 24, "x" * 255, "x" * 256, "é" * 40000,
                 *(_random_text(rng) for _ in range(300))]:
        assert cbor_text(text.encode()) == cbor2.dumps(text, canonical=True), repr(text[:30])


def test_bucket_is_the_one_flagd_core_fractional_picks() -> None:
    # 10,000 one-wide buckets: flagd's fractional returns the bucket index as the variant
    weights = [[str(i), 1] for i in range(TOTAL_WEIGHT)]
    rng = random.Random(11)
    for _ in range(300):
        flag_key = rng.choice(["phase_4_deployment", "f", "checkout_v2", "ü_flag"])
        value = _random_text(rng)
        data = {"targetingKey": value, "$flagd": {"flagKey": flag_key}}
        expected = int(fractional(data, flag_key + value, *weights))
        assert bucket(flag_key, value) == expected


def test_bucketing_values_that_are_not_strings_are_turned_into_text_as_json_logic_does() -> None:
    from json_logic.builtins import to_string

    for value in [0, 7, -3, 1.5, 2.0, 1e20, True, False, [1, None, "a"], {"a": 1}]:
        assert json_logic_text(value) == to_string(value)
    assert json_logic_text(None) is None


def test_percentages_become_weights_with_001_resolution() -> None:
    assert weight(0.5) == 50
    assert weight(33.33) == 3333
    assert weight(0.01) == 1
    assert weight(100) == TOTAL_WEIGHT


def test_distribution_over_100000_keys_is_uniform_chi_square() -> None:
    """The share in at 5/10/25/50 % is within tolerance, and all 100 percentiles are even."""
    n = 100_000
    buckets = [bucket("phase_4_deployment", f"user-{i}") for i in range(n)]
    for pct in (5, 10, 25, 50):
        inside = sum(1 for b in buckets if b < weight(pct))
        p = pct / 100
        expected_in, expected_out = n * p, n * (1 - p)
        chi2 = ((inside - expected_in) ** 2 / expected_in
                + (n - inside - expected_out) ** 2 / expected_out)
        assert chi2 < 10.83, f"{pct} %: {inside} in, chi-square {chi2:.2f} (p < 0.001)"
    counts = [0] * 100
    for b in buckets:
        counts[b // 100] += 1
    chi2 = sum((c - n / 100) ** 2 / (n / 100) for c in counts)
    assert chi2 < 148.2, f"chi-square over 100 cells is {chi2:.1f} (99 dof, p < 0.001)"


def test_two_flags_bucket_the_same_users_independently() -> None:
    n = 20_000
    both = sum(1 for i in range(n) if bucket("flag_a", f"u{i}") < 1000
               and bucket("flag_b", f"u{i}") < 1000)
    # independent 10 % samples overlap on about 1 %; the same salt would give 10 %
    assert 100 < both < 300


@pytest.mark.parametrize("flag_key", ["phase_4_deployment", "llm_integration_enabled"])
def test_whoever_is_in_at_p_stays_in_at_every_higher_q(flag_key: str) -> None:
    steps = (0.5, 5, 10, 25, 33.33, 50, 75, 100)
    for i in range(20_000):
        b = bucket(flag_key, f"user-{i}")
        ins = [b < weight(p) for p in steps]
        first = ins.index(True) if True in ins else len(ins)
        assert all(ins[first:]), f"user-{i} (bucket {b}) drops out after {steps[first]} %"
