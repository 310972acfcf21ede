"""Text derived from input, made safe to print or record: one line, no workflow command, no secret.

Reasons, flag names, gate details and the error messages of metric sources come from files,
command lines and servers. Printed as they are, a newline followed by ``::error …`` becomes a
GitHub Actions workflow command (``control.yml`` and ``advance.yml`` run the CLI), and a server
that echoes the ``Authorization`` header leaks the bearer token into commits and logs.

- :func:`safe_line`: one line — control characters (newlines included) are escaped as ``\\n``,
  ``\\x1f``…, and a line that would start with ``::`` (after blanks) has it escaped to ``\\::``.
- :func:`redact`: every occurrence of a secret (and its URL-encoded and JSON-escaped forms)
  replaced by ``[redacted]``; :func:`redact_credentials` does the same for anything that looks
  like a credential (``Authorization: …``, ``Bearer …``), whatever the token.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable

REDACTED = "[redacted]"
#: Secrets at least this long are replaced wherever they appear; shorter ones where they
#: stand alone (a one-letter test token must not blank out every "t").
_ANYWHERE = 8

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators some viewers break on
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CREDENTIAL = re.compile(r"(?i)(\bauthorization\b[\"']?\s*[:=]\s*[\"']?(?:bearer\s+|basic\s+|token\s+)?+"
                         r"|\bbearer\s+)(?!\[redacted\])[^\s\"',;}\]]+")


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return _ESCAPES.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def safe_line(text: object) -> str:
    """``text`` as one printable line that cannot start a GitHub workflow command."""
    line = _CONTROL.sub(_escape, str(text))
    stripped = line.lstrip(" ")
    if stripped.startswith("::"):
        line = line[: len(line) - len(stripped)] + "\\" + stripped
    return line


def safe_lines(text: object) -> str:
    """Several lines (a message that is meant to span lines), each made a :func:`safe_line`."""
    return "\n".join(safe_line(part) for part in str(text).split("\n"))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (raw, URL-encoded, JSON-escaped) replaced by ``[redacted]``."""
    for secret in secrets:
        if not secret:
            continue
        forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret),
                 json.dumps(secret)[1:-1]}
        for form in sorted(forms, key=len, reverse=True):
            if len(form) >= _ANYWHERE:
                text = text.replace(form, REDACTED)
            elif form:  # a short one only where it stands alone, not inside every word
                text = re.sub(rf"(?<![\w.~+/-]){re.escape(form)}(?![\w.~+/=-])", REDACTED, text)
    return redact_credentials(text)


def redact_credentials(text: str) -> str:
    """Defence in depth: the value after ``Authorization:`` or ``Bearer`` is never kept."""
    return _CREDENTIAL.sub(lambda m: m.group(1) + REDACTED, text)


__all__ = ["REDACTED", "redact", "redact_credentials", "safe_line", "safe_lines"]
