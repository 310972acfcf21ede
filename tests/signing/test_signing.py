"""runner/signing.py: the flags.sig format, signing and verifying, checked against an
independent verification with `cryptography` over canonical bytes computed here."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from runner.errors import ContentError
from runner.signing import (
    SignatureError,
    new_keypair,
    sig_name_for,
    sig_url_for,
    sign_publication,
    signature_files,
    verify_publication,
)

FILES = {"flags.json": b'{"flags":{},"digest":"sha256:ab"}\n',
         "flags.flagd.json": b'{"flags":{},"metadata":{}}\n'}
PRIVATE, PUBLIC = new_keypair()
OTHER_PRIVATE, OTHER_PUBLIC = new_keypair()
COMMIT = "3f9c2e1a7b40d5c0e4b2a8f6c1d3e5f7a9b0c2d4"


def signed(files=FILES, *, generation=7, source_commit=COMMIT, key=PRIVATE) -> bytes:
    return sign_publication(files, generation=generation, source_commit=source_commit,
                            private_key_b64=key)


def resigned(doc: dict, key: str = PRIVATE) -> bytes:
    """``doc`` changed and signed again properly (a valid signature over a changed document)."""
    from runner.signing import load_private_key

    doc = {k: v for k, v in doc.items() if k != "signature"}
    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    doc["signature"] = base64.b64encode(load_private_key(key).sign(body)).decode()
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def test_round_trip_and_the_format_checked_independently():
    sig = signed()
    verify_publication(sig, FILES, [PUBLIC])
    verify_publication(sig, {"flags.json": FILES["flags.json"]}, [PUBLIC])  # a client's check
    doc = json.loads(sig)
    # the bytes are the canonical JSON: sorted keys, no whitespace
    assert sig == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert doc == {
        "algorithm": "ed25519",
        "files": {name: "sha256:" + hashlib.sha256(data).hexdigest()
                  for name, data in FILES.items()},
        "generation": 7,
        "key_id": hashlib.sha256(base64.b64decode(PUBLIC)).hexdigest()[:16],
        "signature": doc["signature"],
        "source_commit": COMMIT,
        "version": 1,
    }
    # independently: the signature over the document without it, with cryptography itself
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    message = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
    Ed25519PublicKey.from_public_bytes(base64.b64decode(PUBLIC)).verify(
        base64.b64decode(doc["signature"]), message)
    assert signed() == sig  # Ed25519 is deterministic: an unchanged publication, the same bytes


def test_signature_error_is_a_content_error():
    assert issubclass(SignatureError, ContentError)


def _tamper_byte(name):
    files = dict(FILES)
    data = bytearray(files[name])
    data[2] ^= 0x01
    files[name] = bytes(data)
    return files


def _doc(**changes):
    doc = json.loads(signed())
    doc.update(changes)
    return doc


@pytest.mark.parametrize("sig, files, keys, reason", [
    pytest.param(signed(), _tamper_byte("flags.json"), [PUBLIC], "flags.json is not the file signed",
                 id="a byte of flags.json"),
    pytest.param(signed(), _tamper_byte("flags.flagd.json"), [PUBLIC],
                 "flags.flagd.json is not the file signed", id="a byte of the flagd file"),
    pytest.param(json.dumps(_doc(generation=8), sort_keys=True, separators=(",", ":")).encode(),
                 FILES, [PUBLIC], "does not verify", id="generation changed"),
    pytest.param(json.dumps(_doc(source_commit="0" * 40), sort_keys=True,
                            separators=(",", ":")).encode(),
                 FILES, [PUBLIC], "does not verify", id="source commit changed"),
    pytest.param(signed(key=OTHER_PRIVATE), FILES, [PUBLIC], "does not verify",
                 id="signed by another key"),
    pytest.param(resigned(_doc(files={"flags.flagd.json": json.loads(signed())["files"]
                                      ["flags.flagd.json"]})),
                 FILES, [PUBLIC], "does not cover flags.json", id="a file entry missing"),
    pytest.param(b"{not json", FILES, [PUBLIC], "not JSON", id="malformed JSON"),
    pytest.param(b"[1]", FILES, [PUBLIC], "not a JSON object", id="JSON not an object"),
    pytest.param(json.dumps(_doc(signature="@@@not base64")).encode(), FILES, [PUBLIC],
                 "signature is not base64", id="signature not base64"),
    pytest.param(json.dumps({k: v for k, v in _doc().items() if k != "generation"}).encode(),
                 FILES, [PUBLIC], "no generation", id="a field missing"),
    pytest.param(json.dumps(_doc(extra=1)).encode(), FILES, [PUBLIC], "unknown extra",
                 id="an unknown field"),
    pytest.param(json.dumps(_doc(algorithm="rsa")).encode(), FILES, [PUBLIC],
                 "unknown", id="another algorithm"),
    pytest.param(json.dumps(_doc(generation="7")).encode(), FILES, [PUBLIC],
                 "generation is not an integer", id="generation a string"),
    pytest.param(signed(), FILES, [PUBLIC[:20]], "public key unusable", id="truncated key"),
    pytest.param(signed(), FILES, ["%%%"], "public key unusable: the public key is not base64",
                 id="key not base64"),
    pytest.param(signed(), FILES, [], "no public key", id="no key"),
    pytest.param(b"", FILES, [PUBLIC], "not JSON", id="empty signature file"),
])
def test_refused_with_its_reason(sig, files, keys, reason):
    with pytest.raises(SignatureError) as e:
        verify_publication(sig, files, keys)
    assert reason in str(e.value)
    assert "\n" not in str(e.value)


def test_rotation_two_public_keys_accept_either():
    old, new = signed(key=OTHER_PRIVATE), signed()
    for sig in (old, new):
        verify_publication(sig, FILES, [OTHER_PUBLIC, PUBLIC])
        verify_publication(sig, FILES, [PUBLIC, OTHER_PUBLIC])
    with pytest.raises(SignatureError, match="does not verify"):
        verify_publication(old, FILES, [PUBLIC])


def test_a_bad_private_key_is_refused_without_quoting_it():
    for bad in ("", "not base64!", PRIVATE[:20], base64.b64encode(b"x" * 31).decode()):
        with pytest.raises(ValueError) as e:
            signed(key=bad)
        if bad:
            assert bad not in str(e.value)


def test_keypair_is_base64_of_32_bytes_and_pairs():
    private, public = new_keypair()
    assert len(base64.b64decode(private)) == len(base64.b64decode(public)) == 32
    assert private != public
    verify_publication(signed(key=private), FILES, [public])


def test_signature_files_and_names():
    out = signature_files(FILES, generation=3, source_commit=COMMIT, private_key_b64=PRIVATE)
    assert set(out) == {"flags.json", "flags.flagd.json", "flags.sig"}
    assert out["flags.json"] == FILES["flags.json"]
    verify_publication(out["flags.sig"], FILES, [PUBLIC])
    assert sig_name_for("flags.json") == "flags.sig"
    assert sig_name_for("prod.json") == "prod.json.sig"
    assert sig_url_for("https://h.example/a/b/flags.json?x=1") == "https://h.example/a/b/flags.sig?x=1"
    # named as the file: target that wrote it names it (prod.json -> prod.json.sig)
    assert sig_url_for("http://127.0.0.1:8080/prod.json") == "http://127.0.0.1:8080/prod.json.sig"
    assert sig_url_for("http://h.example/x/") == "http://h.example/x/flags.sig"
    assert sig_url_for("http://h.example/a%20b.json#f") == "http://h.example/a%20b.json.sig"


def test_without_cryptography_a_clear_error_names_the_extra(monkeypatch):
    import sys

    from runner.errors import UsageError

    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric.ed25519", None)
    with pytest.raises(UsageError, match=r"rollout-runner\[signing\]"):
        signed()


def test_a_hostile_signature_file_never_reaches_a_message_as_it_is():
    """Every piece of a flags.sig quoted in a refusal is escaped and bounded: the message
    goes to an application's logs (and `last_error`) as it is."""
    import json

    hostile = "\x1b[31m\n::error::pwned\u202e" + "k" * 5000
    base = json.loads(signed(key=PRIVATE))
    cases = [{**base, hostile: 1}, {**base, "version": hostile},
             {**base, "key_id": "\n::error::x\x1b"}, {**base, "algorithm": hostile}]
    for doc in cases:
        with pytest.raises(SignatureError) as caught:
            verify_publication(json.dumps(doc).encode(), FILES, [PUBLIC])
        message = str(caught.value)
        assert message.isprintable() and "\x1b" not in message and "\u202e" not in message
        assert len(message) < 400, len(message)
    tampered = {**base, "source_commit": "\n::error::x"}
    with pytest.raises(SignatureError) as caught:
        verify_publication(json.dumps(tampered).encode(), FILES, [PUBLIC])
    assert str(caught.value).isprintable()
