"""Buckets: bit-for-bit flagd's ``fractional`` under both schemes, uniform, and monotone in the
percentage. (The JavaScript core is checked by test_flagd_js_agreement.py, with node.)"""

from __future__ import annotations

import random
import string

import cbor2
import pytest
from openfeature.contrib.tools.flagd.core.targeting.custom_ops import fractional

from runner.evaluate.bucket import (
    BUCKETING_SCHEMES,
    DEFAULT_BUCKETING,
    TOTAL_WEIGHT,
    bucket,
    bucket_function,
    bucket_v2,
    bucket_v3,
    cbor_text,
    js_text,
    json_logic_text,
    text_function,
    weight,
)


def _random_text(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + "-_@.éü中😀"
    return "".join(rng.choice(alphabet) for _ in range(rng.choice((0, 1, 5, 20, 23, 24, 60,
                                                                  127, 128, 300))))


def test_cbor_text_is_the_canonical_encoding_cbor2_gives() -> None:
    rng = random.Random(7)
    for text in ["", "a", "x" * 23, "x" * 24, "x" * 255, "x" * 256, "é" * 40000,
                 *(_random_text(rng) for _ in range(300))]:
        assert cbor_text(text.encode()) == cbor2.dumps(text, canonical=True), repr(text[:30])


def test_bucket_v3_is_the_one_python_flagd_core_fractional_picks() -> None:
    # 10,000 one-wide buckets: flagd's fractional returns the bucket index as the variant
    weights = [[str(i), 1] for i in range(TOTAL_WEIGHT)]
    rng = random.Random(11)
    for _ in range(300):
        flag_key = rng.choice(["phase_4_deployment", "f", "checkout_v2", "ü_flag"])
        value = _random_text(rng)
        data = {"targetingKey": value, "$flagd": {"flagKey": flag_key}}
        expected = int(fractional(data, flag_key + value, *weights))
        assert bucket_v3(flag_key, value) == expected
        assert bucket(flag_key, value, scheme="flagd-v3") == expected


def test_bucket_v2_hashes_the_utf8_string_as_the_go_daemon_does() -> None:
    # Go: uint32(murmur3.StringSum32(s)) over the string's (UTF-8) bytes, then
    # (hash * total) >> 32 (flagd core/pkg/evaluator/fractional.go, core v0.15.0 and later)
    import mmh3

    rng = random.Random(12)
    for _ in range(300):
        flag_key, value = rng.choice(["phase_4_deployment", "f"]), _random_text(rng)
        h = mmh3.hash((flag_key + value).encode("utf-8"), 0, signed=False)
        assert bucket_v2(flag_key, value) == (h * TOTAL_WEIGHT) >> 32
    # MurmurHash3 x86_32 reference vectors (seed 0): the empty string and "hello"
    assert mmh3.hash(b"", 0, signed=False) == 0
    assert mmh3.hash("hello", 0, signed=False) == 613153351


def test_schemes_are_chosen_by_name_and_unknown_names_refused() -> None:
    assert BUCKETING_SCHEMES == ("flagd-v2", "flagd-v3") and DEFAULT_BUCKETING == "flagd-v2"
    assert bucket_function("flagd-v2") is bucket_v2 and bucket_function("flagd-v3") is bucket_v3
    assert text_function("flagd-v2") is js_text and text_function("flagd-v3") is json_logic_text
    assert bucket("f", "u1") == bucket_v2("f", "u1")
    with pytest.raises(ValueError, match="unknown bucketing scheme 'murmur'"):
        bucket_function("murmur")
    # the two schemes really disagree: a 37.5 % flag answers differently for ~47 % of users
    n = 17_000
    differ = sum(1 for i in range(n)
                 if (bucket_v2("f", f"user-{i}") < 3750) != (bucket_v3("f", f"user-{i}") < 3750))
    assert 0.4 * n < differ < 0.55 * n


def test_non_string_bucketing_values_become_text_as_javascript_writes_them() -> None:
    # what the JavaScript core's cat gives (checked against node in test_flagd_js_agreement)
    cases = [(True, "true"), (False, "false"), (0, "0"), (42, "42"), (-3, "-3"), (3.0, "3"),
             (-0.0, "0"), (0.1, "0.1"), (1.5, "1.5"), (1e20, "100000000000000000000"),
             (1e21, "1e+21"), (1.2345e21, "1.2345e+21"), (1e-6, "0.000001"), (1e-7, "1e-7"),
             (2.5e-7, "2.5e-7"), (0.3333333333333333, "0.3333333333333333"),
             (12345678901234567890, "12345678901234567000"), ([1, None, "a"], "1,,a"),
             (["x", True], "x,true")]
    for value, text in cases:
        assert js_text(value) == text, value
    assert js_text({"a": 1}) == "[object Object]" and js_text(None) is None


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


@pytest.mark.parametrize("scheme", BUCKETING_SCHEMES)
def test_distribution_over_100000_keys_is_uniform_chi_square(scheme: str) -> None:
    """The share in at 5/10/25/50 % is within tolerance, and all 100 percentiles are even."""
    n = 100_000
    buckets = [bucket("phase_4_deployment", f"user-{i}", scheme=scheme) for i in range(n)]
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


@pytest.mark.parametrize("scheme", BUCKETING_SCHEMES)
def test_two_flags_bucket_the_same_users_independently(scheme: str) -> None:
    n = 20_000
    both = sum(1 for i in range(n) if bucket("flag_a", f"u{i}", scheme=scheme) < 1000
               and bucket("flag_b", f"u{i}", scheme=scheme) < 1000)
    # independent 10 % samples overlap on about 1 %; the same salt would give 10 %
    assert 100 < both < 300


@pytest.mark.parametrize("scheme", BUCKETING_SCHEMES)
@pytest.mark.parametrize("flag_key", ["phase_4_deployment", "llm_integration_enabled"])
def test_whoever_is_in_at_p_stays_in_at_every_higher_q(flag_key: str, scheme: str) -> None:
    steps = (0.5, 5, 10, 25, 33.33, 50, 75, 100)
    for i in range(20_000):
        b = bucket(flag_key, f"user-{i}", scheme=scheme)
        ins = [b < weight(p) for p in steps]
        first = ins.index(True) if True in ins else len(ins)
        assert all(ins[first:]), f"user-{i} (bucket {b}) drops out after {steps[first]} %"
