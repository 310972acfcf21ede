"""The signature of a publication (``flags.sig``): its format, signing, verifying, key pairs.

A signed publication has a third file beside ``flags.json`` and ``flags.flagd.json``: one
Ed25519 signature over the sha256 digests of the exact bytes of both files, their source
commit and generation (see docs/serving.md, "Signatures"). One signature over both digests:
neither file can be mixed with another publication's (TUF's *mix-and-match*), and a file a
compromised server makes up (*arbitrary artifact*) is refused by every client with the
public key. The document, UTF-8 JSON with sorted keys and no insignificant whitespace::

    {"algorithm":"ed25519","files":{"flags.flagd.json":"sha256:…","flags.json":"sha256:…"},
     "generation":G,"key_id":"<first 16 hex of sha256(raw public key)>",
     "signature":"<base64>","source_commit":"<S>","version":1}

The signature is over the same canonical JSON of the document *without* ``signature``.
Keys are base64 of their 32 raw bytes (``rollout keygen`` prints a pair). The ``files`` map
uses the canonical names whatever the files are called on disk; a ``file:`` target (the
native artifact alone) signs just ``flags.json``.

Like ``runner/git.py`` this module imports none of the layers. Ed25519 comes from
``cryptography`` (the optional extra ``[signing]``), imported only when a key is used:
applications and runs without signatures never load it. A private key never appears in a
message of this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runner.errors import ContentError, UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

ALGORITHM = "ed25519"
FORMAT_VERSION = 1
#: The canonical names of the files a signature covers.
NATIVE, FLAGD = "flags.json", "flags.flagd.json"
SIGNED_NAMES = (NATIVE, FLAGD)
#: The signature file beside a folder's or a branch's two files.
SIG_NAME = "flags.sig"
#: The most a signature file may be (it is a few hundred bytes).
MAX_SIG_BYTES = 64 * 1024
_KEY_BYTES = 32
_FIELDS = {"algorithm", "files", "generation", "key_id", "signature", "source_commit", "version"}


class SignatureError(ContentError):
    """A publication's signature is missing, malformed or does not verify; the message is
    one line saying why (never a key)."""


class SigningUnavailable(UsageError):
    """Signatures were asked for but ``cryptography`` is not installed."""


def _ed25519() -> Any:
    # here, not at the top: cryptography is an optional extra, and only signatures need it
    try:
        ed25519 = importlib.import_module("cryptography.hazmat.primitives.asymmetric.ed25519")
    except ImportError:
        raise SigningUnavailable(
            "signatures need the 'cryptography' package: pip install 'rollout-runner[signing]'"
        ) from None
    return ed25519


def canonical(doc: Mapping[str, Any]) -> bytes:
    """The one serialisation signed and written: sorted keys, no insignificant whitespace."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def file_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def key_id(public_raw: bytes) -> str:
    """The first 16 hex digits of the sha256 of the raw public key."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _raw_key(text: str, what: str) -> bytes:
    """The 32 raw bytes of a base64 key; ValueError saying what is wrong (never the key)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the {what} is not base64") from None
    if len(raw) != _KEY_BYTES:
        raise ValueError(f"the {what} is {len(raw)} bytes, an Ed25519 key is {_KEY_BYTES}")
    return raw


def load_private_key(private_key_b64: str) -> Ed25519PrivateKey:
    """The private key of its base64; ValueError saying what is wrong (never the key)."""
    raw = _raw_key(private_key_b64, "private key")
    key: Ed25519PrivateKey = _ed25519().Ed25519PrivateKey.from_private_bytes(raw)
    return key


def load_public_key(public_key_b64: str) -> Ed25519PublicKey:
    """The public key of its base64; ValueError saying what is wrong."""
    raw = _raw_key(public_key_b64, "public key")
    key: Ed25519PublicKey = _ed25519().Ed25519PublicKey.from_public_bytes(raw)
    return key


def _raw_public(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization  # as _ed25519: the extra

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def new_keypair() -> tuple[str, str]:
    """A new Ed25519 key pair: (private, public), each base64 of its 32 raw bytes."""
    ed25519 = _ed25519()
    from cryptography.hazmat.primitives import serialization  # as _ed25519: the extra

    private = ed25519.Ed25519PrivateKey.generate()
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    return (base64.b64encode(raw).decode(),
            base64.b64encode(_raw_public(private.public_key())).decode())


def check_private_key(private_key_b64: str) -> str | None:
    """Why ``private_key_b64`` is not a usable private key (never quoting it), or None."""
    try:
        load_private_key(private_key_b64)
    except ValueError as e:
        return str(e)
    return None


def sign_publication(files: Mapping[str, bytes], *, generation: int, source_commit: str,
                     private_key_b64: str) -> bytes:
    """The ``flags.sig`` of ``files`` (canonical names -> exact bytes); ValueError when the
    key is not a valid private key (the message never quotes it)."""
    unknown = sorted(set(files) - set(SIGNED_NAMES))
    if unknown or NATIVE not in files:
        raise ValueError(f"a publication signs {NATIVE} (and {FLAGD}), not {unknown or 'nothing'}")
    key = load_private_key(private_key_b64)
    doc: dict[str, Any] = {
        "algorithm": ALGORITHM,
        "files": {name: file_digest(data) for name, data in files.items()},
        "generation": generation,
        "key_id": key_id(_raw_public(key.public_key())),
        "source_commit": source_commit,
        "version": FORMAT_VERSION,
    }
    doc["signature"] = base64.b64encode(key.sign(canonical(doc))).decode()
    return canonical(doc)


def _shown(value: object, limit: int = 80) -> str:
    """A value of the signature file in a message (the file is input: anyone who can write
    beside the artifact wrote it): printable ASCII (a string's control and non-ASCII
    characters escaped, anything else as :func:`ascii` shows it), bounded; the message
    reaches an application's logs and ``last_error`` as it is."""
    text = (value.encode("unicode_escape").decode("ascii") if isinstance(value, str)
            else ascii(value))
    return _bounded(text, limit)


def _unquoted(name: str) -> str:
    """A field name as the message showed it (bare), escaped."""
    return name.encode("unicode_escape").decode("ascii")


def _bounded(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def parse_signature(sig: bytes) -> dict[str, Any]:
    """The signature document, its shape checked; :class:`SignatureError` saying why not."""
    if len(sig) > MAX_SIG_BYTES:
        raise SignatureError(f"signature file larger than {MAX_SIG_BYTES} bytes")
    try:
        doc = json.loads(sig)
    except (ValueError, RecursionError):
        raise SignatureError("signature file is not JSON") from None
    if not isinstance(doc, dict):
        raise SignatureError("signature file is not a JSON object")
    if set(doc) != _FIELDS:
        missing, extra = sorted(_FIELDS - set(doc)), sorted(set(doc) - _FIELDS)
        raise SignatureError("signature file has " + "; ".join(
            part for part in (f"no {', '.join(missing)}" if missing else "",
                              f"unknown {_bounded(', '.join(map(_unquoted, extra)))}" if extra else "")
            if part))
    if doc["version"] != FORMAT_VERSION or doc["algorithm"] != ALGORITHM:
        raise SignatureError(f"signature version {_bounded(ascii(doc['version']))} / algorithm "
                             f"{_bounded(ascii(doc['algorithm']))} unknown (expected "
                             f"{FORMAT_VERSION}, {ALGORITHM})")
    files = doc["files"]
    if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise SignatureError("signature file's files is not a map of names to digests")
    if not isinstance(doc["generation"], int) or isinstance(doc["generation"], bool):
        raise SignatureError("signature file's generation is not an integer")
    if not isinstance(doc["source_commit"], str) or not isinstance(doc["key_id"], str):
        raise SignatureError("signature file's source_commit or key_id is not a string")
    if not isinstance(doc["signature"], str):
        raise SignatureError("signature file's signature is not a string")
    return doc


def verify_publication(sig: bytes, files: Mapping[str, bytes],
                       public_keys: Sequence[str]) -> None:
    """Check that ``sig`` is a signature by one of ``public_keys`` (base64) over exactly
    ``files`` (canonical names -> exact bytes; every file given must be covered with its
    digest: a client checks the one file it reads). :class:`SignatureError` with a one-line
    reason otherwise."""
    doc = parse_signature(sig)
    keys = []
    for text in public_keys:
        try:
            keys.append(load_public_key(text))
        except ValueError as e:
            raise SignatureError(f"public key unusable: {e}") from None
    if not keys:
        raise SignatureError("no public key to verify the signature with")
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("signature is not base64") from None
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    message = canonical(unsigned)
    from cryptography.exceptions import InvalidSignature  # loaded by load_public_key

    by = next((k for k in keys if _verifies(k, signature, message, InvalidSignature)), None)
    if by is None:
        raise SignatureError(f"signature (key {_shown(doc['key_id'][:16])}) does not verify with "
                             f"{'the public key' if len(keys) == 1 else 'any public key'} given")
    covered = doc["files"]
    for name, data in files.items():
        if name not in covered:
            raise SignatureError(f"the signature does not cover {name}")
        if covered[name] != file_digest(data):
            raise SignatureError(f"{name} is not the file signed (its sha256 differs from "
                                 f"the signature's, publication {_shown(doc['source_commit'][:12])})")


def _verifies(key: Ed25519PublicKey, signature: bytes, message: bytes,
              invalid: type[Exception]) -> bool:
    try:
        key.verify(signature, message)
    except invalid:
        return False
    return True


def signature_files(files: Mapping[str, bytes], *, generation: int, source_commit: str,
                    private_key_b64: str) -> dict[str, bytes]:
    """``files`` (on-disk names) with ``flags.sig`` beside them: what a signed ``dir:`` or
    ``branch:`` target holds. The files keep their bytes."""
    signed = {name: data for name, data in files.items() if name in SIGNED_NAMES}
    return {**files, SIG_NAME: sign_publication(signed, generation=generation,
                                                source_commit=source_commit,
                                                private_key_b64=private_key_b64)}


def sig_name_for(artifact_name: str) -> str:
    """The name of the signature file beside an artifact file: ``flags.sig`` beside
    ``flags.json``, else ``<name>.sig``."""
    return SIG_NAME if artifact_name == NATIVE else f"{artifact_name}.sig"


def sig_url_for(url: str) -> str:
    """The URL of the signature beside an artifact URL, named as a ``file:`` target names
    it (:func:`sig_name_for`: ``flags.sig`` beside ``flags.json``, ``prod.json.sig`` beside
    ``prod.json``, so that a ``file:`` publication served over HTTP verifies); its last path
    segment replaced, the query (if any) kept; ``flags.sig`` for a URL ending in ``/``."""
    from urllib.parse import quote, unquote, urlsplit, urlunsplit  # only clients on a URL with a key

    parts = urlsplit(url)
    head, _, last = parts.path.rpartition("/")
    name = sig_name_for(unquote(last)) if last else SIG_NAME
    return urlunsplit(parts._replace(path=f"{head}/{quote(name)}", fragment=""))


def public_keys(key: str | Sequence[str] | None) -> tuple[str, ...]:
    """A client's ``public_key`` argument as a tuple; ValueError when a key is not one."""
    if key is None:
        return ()
    keys = (key,) if isinstance(key, str) else tuple(key)
    if not keys:
        raise ValueError("public_key: an empty list accepts nothing; give a key or None")
    for k in keys:
        if not isinstance(k, str):
            raise ValueError(f"public_key: a key is base64 text, not {type(k).__name__}")
        load_public_key(k)
    return keys
