"""Percentage buckets, bit-for-bit those of flagd's ``fractional``, in either of its two schemes.

flagd implementations hash the bucketing value with MurmurHash3 x86 32-bit, seed 0, and map
the hash into ``[0, total_weight)`` as ``(hash * total_weight) >> 32``; the first variant
whose cumulative weight exceeds the bucket wins. What they hash differs
(see docs/evaluation.md, "Bucketing schemes"):

* ``flagd-v2`` — the bucketing *string* itself: the Go flagd daemon (core 0.15 and later,
  ``murmur3.StringSum32``, UTF-8 bytes) and the JavaScript core ``@openfeature/flagd-core``
  4.x (``imurmurhash``, which reads UTF-16 code units: the same as UTF-8 for ASCII only);
  :func:`bucket_v2`.
* ``flagd-v3`` — the canonical CBOR encoding of the bucketing value (flagd's accepted ADR
  "fractional non-string rand units"): ``openfeature-flagd-core`` 2.x for Python;
  :func:`bucket_v3`. For a text string that is a major-type-3 header in shortest form
  followed by the UTF-8 bytes: :func:`cbor_text` does the same without the cost of a
  general CBOR encoder.

Our exported flagd rules pass an explicit bucketing value,
``{"cat": ["<flag key>", {"var": "targetingKey"}]}``, rather than flagd's shorthand (which
hashes ``[$flagd.flagKey, targetingKey]`` under v3 and ``flagKey + targetingKey`` under v2):
a prerequisite's split must be evaluated inside *another* flag's rule, where
``$flagd.flagKey`` names the other flag. The bucketing value is therefore the text string
``flag key + bucketing value``, salted by the flag key so that two flags at 5 % do not pick
the same users. A bucketing attribute that is not a string becomes text as ``cat`` makes
it, and that differs between JavaScript (:func:`js_text`) and Python's JSON Logic
(:func:`json_logic_text`): each scheme uses the text of its implementation.

A client picks the scheme's functions once, when it compiles an artifact
(:func:`bucket_function`, :func:`text_function`): the evaluation path never branches on it.

The total weight is fixed at :data:`TOTAL_WEIGHT` (0.01 % resolution), so a user's bucket
never depends on the percentage: whoever is in at 5 % (bucket < 500) is in at 10 %, 25 %,
100 %.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

import mmh3

from runner.model.config import BUCKETING_SCHEMES, DEFAULT_BUCKETING

#: Weights are in 10,000ths: percentages have 0.01 resolution (see runner.load.semantic).
TOTAL_WEIGHT = 10_000

FLAGD_V2, FLAGD_V3 = BUCKETING_SCHEMES  # the values of [tool.rollout] bucketing
#: An artifact without a ``bucketing`` field was built by 0.1, which bucketed with v3.
LEGACY_BUCKETING = FLAGD_V3



class BucketFunction(Protocol):
    """(flag key, bucketing text[, total weight]) -> the bucket in ``[0, total_weight)``."""

    def __call__(self, flag_key: str, bucketing_value: str,
                 total_weight: int = TOTAL_WEIGHT) -> int: ...


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


def bucket_v3(flag_key: str, bucketing_value: str, total_weight: int = TOTAL_WEIGHT) -> int:
    """``flagd-v3``: the bucket of the canonical CBOR text string ``flag key + value``.

    The evaluator's hot path calls it, so it takes the short way for the usual case (an
    ASCII text under 128 characters) and the general CBOR encoding otherwise.
    """
    text = flag_key + bucketing_value
    n = len(text)
    if n < 128 and text.isascii():
        h = _murmur3(_HEADERS[n] + text, 0, False)
    else:
        h = _murmur3(cbor_text(text.encode("utf-8")), 0, False)
    return (h * total_weight) >> 32


_murmur3 = mmh3.hash  # a module global: one lookup fewer than ``mmh3.hash`` per call


def bucket_v2(flag_key: str, bucketing_value: str, total_weight: int = TOTAL_WEIGHT) -> int:
    """``flagd-v2``: the bucket of the string ``flag key + value``, hashed as UTF-8 bytes.

    That is the Go daemon's ``murmur3.StringSum32`` for every string, and the JavaScript
    core's for ASCII strings (it hashes UTF-16 code units; see docs/evaluation.md).
    ``mmh3.hash`` of a ``str`` hashes its UTF-8 encoding.
    """
    return (_murmur3(flag_key + bucketing_value, 0, False) * total_weight) >> 32


_BUCKET_FUNCTIONS: dict[str, BucketFunction] = {FLAGD_V2: bucket_v2, FLAGD_V3: bucket_v3}


def bucket_function(scheme: str) -> BucketFunction:
    """The bucket function of a scheme (``flagd-v2`` / ``flagd-v3``); ValueError otherwise."""
    try:
        return _BUCKET_FUNCTIONS[scheme]
    except (KeyError, TypeError):
        raise ValueError(f"unknown bucketing scheme {scheme!r} (expected one of "
                         f"{', '.join(BUCKETING_SCHEMES)})") from None


def bucket(flag_key: str, bucketing_value: str, total_weight: int = TOTAL_WEIGHT, *,
           scheme: str = DEFAULT_BUCKETING) -> int:
    """The bucket in ``[0, total_weight)`` of this bucketing value for this flag, under
    ``scheme`` (the default one unless told). For tools and tests: the evaluator calls the
    scheme's function directly (:func:`bucket_function`)."""
    return bucket_function(scheme)(flag_key, bucketing_value, total_weight)


def weight(percentage: float) -> int:
    """A percentage (0-100, 0.01 resolution) as a weight out of :data:`TOTAL_WEIGHT`."""
    return round(percentage * TOTAL_WEIGHT / 100)


def json_logic_text(value: Any) -> str | None:
    """``flagd-v3``: a context value as Python JSON Logic's ``cat`` turns it into text; None
    when it is absent.

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


def js_number_text(x: float) -> str:
    """A number as JavaScript's ``String(x)`` writes it (ECMA-262 Number::toString)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"  # -0 too
    sign, digits_t, exp = Decimal(repr(x)).as_tuple()  # repr: the shortest round trip, as JS
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    assert isinstance(exp, int)
    n = len(digits_t) + exp  # x = 0.<digits> * 10**n
    k = len(digits)
    minus = "-" if sign else ""
    if k <= n <= 21:
        return minus + digits + "0" * (n - k)
    if 0 < n <= 21:
        return minus + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return minus + "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{minus}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def js_text(value: Any) -> str | None:
    """``flagd-v2``: a context value as the JavaScript core's ``cat`` turns it into text
    (``String(value)``); None when it is absent.

    ``true``/``false`` in lower case, numbers as JavaScript writes them (integers beyond
    2**53 lose their last digits, as a JavaScript number does), arrays joined by commas
    with ``null`` as nothing, objects as ``[object Object]``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < 2**53 else js_number_text(float(value))
    if isinstance(value, float):
        return js_number_text(value)
    if isinstance(value, list | tuple):
        return ",".join("" if v is None else (js_text(v) or "") for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


#: (a context value) -> its bucketing text, or None when absent
TextFunction = Callable[[Any], str | None]
_TEXT_FUNCTIONS: dict[str, TextFunction] = {FLAGD_V2: js_text, FLAGD_V3: json_logic_text}


def text_function(scheme: str) -> TextFunction:
    """How a scheme's implementation turns a non-string bucketing attribute into text."""
    bucket_function(scheme)  # the same check, the same message
    return _TEXT_FUNCTIONS[scheme]
