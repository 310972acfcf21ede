"""Text derived from input, made safe to print or record: one line, no workflow command, no secret.

Reasons, flag names, gate details and the error messages of metric sources come from files,
command lines and servers. Printed as they are, a newline followed by ``::error …`` becomes a
GitHub Actions workflow command (``control.yml`` and ``advance.yml`` run the CLI), and a server
that echoes the ``Authorization`` header leaks the bearer token into commits and logs.

- :func:`safe_line`: one line — control characters (newlines included) are escaped as ``\\n``,
  ``\\x1f``…, a line that would start with ``::`` or ``##[`` (after blanks) has its first
  character escaped, and the length is capped.
- :func:`redact`: every occurrence of a secret (and its URL-encoded and JSON-escaped forms)
  replaced by ``[redacted]``; :func:`redact_credentials` does the same for anything that looks
  like a credential (``Authorization: …``, ``Bearer …``, the ``user:password@`` of a URL),
  whatever the token.
- :func:`url_secrets`: what a configured URL (a webhook's, a metric source's) holds that no
  message may show: its userinfo and every query value; :func:`shown_url` is the URL as a
  message may show it; :func:`basic_auth` splits the userinfo off as HTTP Basic credentials.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Iterable

REDACTED = "[redacted]"
#: Secrets at least this long are replaced wherever they appear; shorter ones where they
#: stand alone (a one-letter test token must not blank out every "t").
_ANYWHERE = 8

#: What may not reach a terminal, a CI log or a commit raw: C0 and C1 control characters and
#: DEL (newlines, carriage returns, ESC sequences...), Unicode line and paragraph separators,
#: and the bidirectional overrides that make a line read differently than it is.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: A line GitHub Actions would read as a workflow command (``::error::``, ``::add-mask::``,
#: the older ``##[error]``), leading whitespace ignored as the runner ignores it.
_COMMAND = re.compile(r"\s*(::|##\[)")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CREDENTIAL = re.compile(r"(?i)(\bauthorization\b[\"']?\s*[:=]\s*[\"']?(?:bearer\s+|basic\s+|token\s+)?+"
                         r"|\bbearer\s+)(?!\[redacted\])[^\s\"',;}\]]+")
#: The userinfo of a URL in a text (``https://user:pass@host``): always a credential.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?!\[redacted\]@)[^\s/?#@\[\]]+@")
#: The longest input-derived text written in one piece, by default.
LINE_LIMIT = 2000


def escape_char(m: re.Match[str]) -> str:
    """The escape of one matched character: ``\\n``, ``\\x1b``, ``\\u2028``."""
    c = m.group()
    return _SHORT.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def escape_controls(text: str) -> str:
    """``text`` with every character :func:`safe_line` escapes shown as its escape."""
    return _UNSAFE.sub(escape_char, text) if _UNSAFE.search(text) is not None else text


def safe_line(text: object, limit: int = LINE_LIMIT) -> str:
    """``text`` as one harmless line: control characters escaped (``\\n``, ``\\x1b``...),
    a leading ``::`` or ``##[`` neutralised (``\\x3a:error``) so that GitHub Actions never
    reads a workflow command from it, and at most ``limit`` characters, a cut one ending
    with ``… (N more)``. Idempotent: a line it made comes back unchanged."""
    s = text if isinstance(text, str) else str(text)
    s = escape_controls(s)
    m = _COMMAND.match(s)
    if m is not None:
        at = m.start(1)
        s = f"{s[:at]}\\x{ord(s[at]):02x}{s[at + 1:]}"
    if len(s) > limit:
        tail = f"… ({len(s) - limit} more)"
        keep = max(limit - len(tail), 0)
        s = s[:keep] + f"… ({len(s) - keep} more)"
    return s


def safe_lines(text: object, limit: int = LINE_LIMIT) -> str:
    """Several lines (a message meant to span lines, such as a list of problems), each made
    a :func:`safe_line`."""
    return "\n".join(safe_line(part, limit) for part in str(text).split("\n"))


def record_line(text: object, limit: int = LINE_LIMIT) -> str:
    """What the runner records (a reason, a gate's detail, a trailer): one :func:`safe_line`
    with blanks collapsed and anything that looks like a credential redacted."""
    return safe_line(redact_credentials(" ".join(str(text).split())), limit)


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
    """Defence in depth: the value after ``Authorization:`` or ``Bearer``, and the
    ``user:password@`` of a URL, are never kept."""
    text = _USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", text)
    return _CREDENTIAL.sub(lambda m: m.group(1) + REDACTED, text)


def url_secrets(url: str) -> list[str]:
    """What ``url`` holds that no message may show, raw and decoded: its userinfo (the user,
    the password, both) and every query value (tokens travel there: ``?token=…``). A URL that
    does not parse is a secret as a whole."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return [url]
    out: list[str] = []
    named: list[str] = []  # a user name or a query value of one or two characters ("1") is
    # no secret, and would blank out every standalone "1" of a message
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at:
        user, _, password = userinfo.partition(":")
        out += [userinfo, password, urllib.parse.unquote(password),
                basic_auth(url)[1].removeprefix("Basic ")]  # as sent: a server may echo it
        named += [user, urllib.parse.unquote(user)]
    for piece in parts.query.split("&"):
        _, eq, value = piece.partition("=")
        raw = value if eq else piece
        named += [raw, urllib.parse.unquote_plus(raw)]
    named.append(parts.fragment)
    out += [s for s in named if len(s) >= 3]
    return sorted({s for s in out if s}, key=len, reverse=True)


def shown_url(url: str) -> str:
    """``url`` as a message may show it: the userinfo and every query value replaced by
    ``[redacted]`` (the names of the query's parameters kept: they say what was sent)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return REDACTED
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{REDACTED}@{host}" if "@" in parts.netloc else host
    query = "&".join(f"{piece.partition('=')[0]}={REDACTED}" if "=" in piece else REDACTED
                     for piece in parts.query.split("&")) if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query,
                                    REDACTED if parts.fragment else ""))


def basic_auth(url: str) -> tuple[str, str]:
    """``url`` without its userinfo, and the ``Authorization`` value (HTTP Basic) the userinfo
    stands for ("" without one): a ``https://user:pass@host/…`` URL is sent as Basic auth,
    never with the password in the request line or a message."""
    parts = urllib.parse.urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, ""
    user, _, password = userinfo.partition(":")
    pair = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode()
    bare = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, "Basic " + base64.b64encode(pair).decode("ascii")


__all__ = ["LINE_LIMIT", "REDACTED", "basic_auth", "escape_char", "escape_controls",
           "record_line", "redact", "redact_credentials", "safe_line", "safe_lines", "shown_url",
           "url_secrets"]
