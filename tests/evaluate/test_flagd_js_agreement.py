"""``bucketing = "flagd-v2"`` against the real JavaScript flagd core.

``@openfeature/flagd-core`` (pinned in tests/flagd_js/package-lock.json, installed by
``npm ci`` in .ci/run) evaluates the flagd export in one ``node`` process
(tests/flagd_js/evaluate.cjs) for every context; FlagClient evaluates the native artifact.
Without node or the package these tests FAIL: they are the proof of the default scheme.

What is promised, and tested here:

* every bucketing text made of ASCII characters buckets exactly as the JavaScript core
  buckets it (and as the Go daemon does: both hash the string);
* a non-ASCII text is hashed as its UTF-8 bytes, as the Go daemon's ``murmur3.StringSum32``
  does. The JavaScript core hashes UTF-16 code units instead (``imurmurhash``): for those
  texts it disagrees with Go, and with us; tested as such, and documented.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import mmh3
import pytest

from runner import FlagClient
from runner.evaluate.bucket import TOTAL_WEIGHT, bucket_v2
from tests.evaluate.agreement import N_CONTEXTS, agreement_repo, contexts, export
from tests.evaluate.conftest import RepoWriter

JS_DIR = Path(__file__).resolve().parent.parent / "flagd_js"
SCRIPT = JS_DIR / "evaluate.cjs"


def run_js_core(document: dict[str, Any], types: dict[str, str],
                ctxs: list[dict[str, Any]], hash_texts: Sequence[str] = ()) -> dict[str, Any]:
    """One node process: the JavaScript core's answers, ``[[variant, value, error]...]`` per
    context in the order of ``keys``, and its MurmurHash3 of each of ``hash_texts``."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: .ci/run installs nodejs and npm (apt-get)")
    if not (JS_DIR / "node_modules" / "@openfeature" / "flagd-core" / "package.json").is_file():
        pytest.fail(f"@openfeature/flagd-core is not installed: run `npm ci` in {JS_DIR}")
    payload = json.dumps({"document": document, "types": types, "contexts": ctxs,
                          "hash": list(hash_texts)})
    out = subprocess.run([node, str(SCRIPT)], input=payload, capture_output=True, text=True,
                         cwd=JS_DIR, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _js_context(tk: str | None, attrs: dict[str, Any]) -> dict[str, Any]:
    # an application without a targeting key passes none (not null)
    return {**attrs, **({} if tk is None else {"targetingKey": tk})}


@pytest.fixture
def v2_export(make_repo: Callable[..., RepoWriter], tmp_path: Path) -> tuple[FlagClient, dict[str, Any]]:
    # no bucketing key: the default, flagd-v2
    native, flagd = export(agreement_repo(make_repo, None), tmp_path)
    assert json.loads(native.read_text())["bucketing"] == "flagd-v2"
    doc = json.loads(flagd.read_text())
    assert doc["metadata"]["bucketing"] == "flagd-v2"
    return FlagClient.from_file(native, env={}), doc


def test_javascript_flagd_core_agrees_with_flagclient_on_every_ascii_context(
        v2_export: tuple[FlagClient, dict[str, Any]]) -> None:
    client, doc = v2_export
    keys = client.flag_keys()
    types = {k: client.flag_type(k) or "" for k in keys}
    assert len(keys) == 21
    pairs = contexts(N_CONTEXTS + 2_000, ascii_keys=True)
    js = run_js_core(doc, types, [_js_context(tk, attrs) for tk, attrs in pairs])
    assert js["versions"]["@openfeature/flagd-core"] == "4.0.1"
    assert js["keys"] == sorted(keys)
    seen: dict[str, set[str]] = {k: set() for k in keys}
    checked = 0
    for (tk, attrs), answers in zip(pairs, js["results"], strict=True):
        ctx = {**attrs, "targetingKey": tk}
        for key, (variant, value, error) in zip(js["keys"], answers, strict=True):
            ours = client.evaluate(key, ctx)
            assert error is None, (key, tk, attrs, error)
            assert (value, variant) == (ours.value, ours.variant), \
                f"{key} for {tk!r} {attrs}: JavaScript flagd-core {variant}, FlagClient {ours.variant}"
            seen[key].add(str(ours.variant))
            checked += 1
    assert checked == len(pairs) * 21 >= 10_000 * 21
    # every outcome was exercised: splits of two and three variants, canaries, rules,
    # prerequisites, bucket_by, rollouts in progress, paused and rolled back
    assert seen["canaried"] == {"on", "off"} and seen["grandchild"] == {"on", "off"}
    assert seen["color"] == {"red", "green", "blue"} and seen["limit"] == {"low", "mid", "high"}
    assert seen["half_percent"] == {"on", "off"} and seen["rolled_child"] == {"on", "off"}
    assert seen["per_account"] == {"on", "off"} and seen["paused"] == {"on", "off"}
    assert seen["rolled_back"] == {"off"} and seen["needs_rolled_back"] == {"off"}


def test_non_ascii_keys_hash_as_utf8_bytes_where_the_javascript_core_hashes_utf16(
        v2_export: tuple[FlagClient, dict[str, Any]]) -> None:
    client, doc = v2_export
    keys = client.flag_keys()
    types = {k: client.flag_type(k) or "" for k in keys}
    texts = [f"{c}-{i}" for i in range(400) for c in ("ü", "é", "中", "😀", "Ωmega")]
    # 1. The JavaScript core's own hash over the UTF-8 bytes (given as a string of one
    #    character per byte) is MurmurHash3 of the UTF-8 bytes: what Go hashes, what we hash.
    as_bytes = [t.encode("utf-8").decode("latin-1") for t in texts]
    js = run_js_core(doc, types, [{"targetingKey": b} for b in as_bytes],
                     hash_texts=as_bytes + texts)
    n = len(texts)
    for text, h in zip(texts, js["hash"][:n], strict=True):
        assert h == mmh3.hash(text.encode("utf-8"), 0, signed=False)
        assert (h * TOTAL_WEIGHT) >> 32 == bucket_v2("", text)
    # ... and the core, bucketing those byte strings, serves what FlagClient serves for the
    # real keys (flags with a split and no rule on the key)
    split_only = ("half_percent", "five", "third", "limit", "ratio", "layout", "color")
    for text, answers in zip(texts, js["results"], strict=True):
        for key, (variant, _value, _error) in zip(js["keys"], answers, strict=True):
            if key in split_only:
                assert variant == client.evaluate(key, {"targetingKey": text}).variant, (key, text)
    # 2. Given the real string, the JavaScript core hashes UTF-16 code units: a character
    #    below U+0100 as its Latin-1 byte, so "ü" is not hashed as Go (UTF-8) hashes it.
    raw = js["hash"][n:]
    latin1 = [t for t in texts if max(map(ord, t)) < 0x100]
    for text in latin1:
        assert raw[texts.index(text)] == mmh3.hash(text.encode("latin-1"), 0, signed=False)
    differ = sum(1 for text, h in zip(texts, raw, strict=True)
                 if h != mmh3.hash(text.encode("utf-8"), 0, signed=False))
    assert differ == n  # not one non-ASCII text hashes alike in the two


def test_javascript_cat_turns_numbers_and_booleans_into_the_text_we_hash() -> None:
    from runner.evaluate.bucket import js_text

    values: list[Any] = [True, False, 0, 42, -3, 3.0, -0.0, 0.1, 1.5, 1e20, 1e21, 1e-6, 1e-7,
                         2.5e-7, 1 / 3, 12345678901234567890, 123456.789, [1, None, "a"],
                         {"a": 1}]
    expected = [f"k{js_text(v)}" for v in values]
    doc = {"flags": {"f": {"state": "ENABLED", "variants": {t: t for t in expected},
                           "defaultVariant": expected[0],
                           "targeting": {"cat": ["k", {"var": "v"}]}}}}
    js = run_js_core(doc, {"f": "string"}, [{"v": v} for v in values])
    assert [r[0][0] for r in js["results"]] == expected
