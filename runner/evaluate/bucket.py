"""Percentage buckets, bit-for-bit those of flagd's ``fractional`` (openfeature-flagd-core 2.x).

flagd-core hashes the canonical CBOR encoding of the bucketing value with MurmurHash3
x86 32-bit, seed 0, and maps the hash into ``[0, total_weight)`` as
``(hash * total_weight) >> 32``; the first variant whose cumulative weight exceeds the
bucket wins.

Our exported flagd rules pass an explicit bucketing value,
``{"cat": ["<flag key>", {"var": "targetingKey"}]}``, rather than flagd's shorthand (which
hashes ``[$flagd.flagKey, targetingKey]``): a prerequisite's split must be evaluated inside
*another* flag's rule, where ``$flagd.flagKey`` names the other flag. The bucketing value
is therefore the text string ``flag key + bucketing value``, salted by the flag key so
that two flags at 5 % do not pick the same users. flagd-core encodes that string as a
CBOR text string: a major-type-3 header in shortest form followed by the UTF-8 bytes;
:func:`cbor_text` does the same without the cost of a general CBOR encoder.

The total weight is fixed at :data:`TOTAL_WEIGHT` (0.01 % resolution), so a user's bucket
never depends on the percentage: whoever is in at 5 % (bucket < 500) is in at 10 %, 25 %,
100 %.
"""

from __future__ import annotations

from typing import Any

import mmh3

#: Weights are in 10,000ths: percentages have 0.01 resolution (see runner.load.semantic).
TOTAL_WEIGHT = 10_000


def cbor_text(data: bytes) -> bytes:
    """The canonical CBOR encoding of a text string whose UTF-8 bytes are ``data``."""
    n = len(data)
    if n < 24:
        return bytes((0x60 + n,)) + data
    if n < 0x100:
        return b"\x78" + bytes((n,)) + data
    if n < 0x10000:
        return b"\x79" + n.to_bytes(2, "big") + data
    if n < 0x100000000:
        return b"\x7a" + n.to_bytes(4, "big") + data
    return b"\x7b" + n.to_bytes(8, "big") + data


#: CBOR text-string headers as characters, for ASCII strings shorter than 128 characters:
#: one byte (0x60 + n) below 24, then 0x78 and the length. All are ASCII themselves, so the
#: hashed string can be built and hashed as ``str`` without a bytes round trip.
_HEADERS = tuple(chr(0x60 + n) for n in range(24)) + tuple("x" + chr(n) for n in range(24, 128))


def bucket(flag_key: str, bucketing_value: str, total_weight: int = TOTAL_WEIGHT) -> int:
    """The bucket in ``[0, total_weight)`` of this bucketing value for this flag.

    The one bucketing hash: the evaluator's hot path calls it too, so it takes the short
    way for the usual case (an ASCII text under 128 characters) and the general CBOR
    encoding otherwise.
    """
    text = flag_key + bucketing_value
    n = len(text)
    if n < 128 and text.isascii():
        h = _murmur3(_HEADERS[n] + text, 0, False)
    else:
        h = _murmur3(cbor_text(text.encode("utf-8")), 0, False)
    return (h * total_weight) >> 32


_murmur3 = mmh3.hash  # a module global: one lookup fewer than ``mmh3.hash`` per call


def weight(percentage: float) -> int:
    """A percentage (0-100, 0.01 resolution) as a weight out of :data:`TOTAL_WEIGHT`."""
    return round(percentage * TOTAL_WEIGHT / 100)


def json_logic_text(value: Any) -> str | None:
    """A context value as JSON Logic's ``cat`` turns it into text; None when it is absent.

    Mirrors ``json_logic.builtins.to_string`` (used by flagd-core), so that a bucketing
    attribute holding a number or a boolean lands in the same bucket in both evaluators.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):  # booleans too: flagd-core's to_string gives "True"/"False"
        return str(value)
    if isinstance(value, float):
        return f"{value:.15g}"
    if isinstance(value, list | tuple):
        return ",".join("null" if v is None else (json_logic_text(v) or "") for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)
