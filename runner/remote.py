"""Reading the artifact over HTTP(S): one conditional GET at a time, standard library only.

:class:`UrlSource` is what ``FlagClient.from_url`` polls. Each :meth:`UrlSource.get` sends
``If-None-Match`` (the last accepted ``ETag``) and ``If-Modified-Since`` (its
``Last-Modified``), so an unchanged artifact costs a ``304`` and a few hundred bytes.
Validators are remembered only for a body the caller accepted (:meth:`UrlSource.accept`):
a corrupt body is fetched again at the next look, never taken for "unchanged".

Bodies are capped (``max_bytes``, the SDK passes ``MAX_ARTIFACT_BYTES``): a
``Content-Length`` above it is refused before anything is read, and no more than one byte
past it is ever read (or inflated, for a gzip-encoded body). A bearer token is read from the
named environment variable at each request (so a rotated token is picked up), sent only to
the URL's own origin (scheme, host, port: never across a redirect to another one), and
never appears in a message: failures name the URL without its query string or user info.

``timeout`` bounds the whole request — connecting, the headers and the body, across
redirects — not each read: a server that trickles its answer a byte at a time is cut off
at the deadline (:class:`runner.exchange.Exchange` shuts its sockets down, so a read blocked anywhere
returns at once), as ``runner/gates/sources/prometheus.py`` does for a metrics query.
:meth:`UrlSource.abort` cuts a request in flight the same way (a client being closed).
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
import zlib
from email.message import Message
from typing import IO, Any

from runner import __version__
from runner.errors import ExternalError
from runner.exchange import Exchange, handlers
from runner.safetext import redact_credentials, safe_line

USER_AGENT = f"rollout-runner-sdk/{__version__}"
MAX_REDIRECTS = 5
_CHUNK = 1 << 16
#: The longest message of a failed request (a server's reason phrase is input).
MESSAGE_LIMIT = 500


class FetchError(ExternalError):
    """The source could not be read. The message is safe to log: no token, no query, one
    line without control characters (a server's reason phrase, ``HTTP 503 \x1b[31m…``, is
    input: it never writes an escape sequence or a second line into an application's log)."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        # a user:password@ a server echoed
        super().__init__(safe_line(redact_credentials(message), MESSAGE_LIMIT))
        self.retry_after = retry_after


def shown_url(url: str) -> str:
    """``url`` as messages show it: without user info, and ``?…`` for a query (a signed
    URL's query is a credential)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", "")) + (
        "?…" if parts.query else "")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value and value.strip().isdigit():
        return float(value.strip())
    return None  # an HTTP date, or nothing: the client's own backoff decides


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects (http and https only); the token goes along only to its origin."""

    max_redirections = MAX_REDIRECTS

    def __init__(self, origin: tuple[str, str, int | None], authorization: str | None):
        super().__init__()
        self._origin = origin
        self._authorization = authorization

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: http.client.HTTPMessage, newurl: str) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise urllib.error.HTTPError(req.full_url, code, "redirect to a URL that is "
                                         "neither http nor https refused", headers, fp)
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        # The Authorization header was added unredirected: urllib never copies it. Put it
        # back only when the redirect stays on the origin the token was given for.
        if new is not None and self._authorization and _origin(newurl) == self._origin:
            new.add_unredirected_header("Authorization", self._authorization)
        return new


class UrlSource:
    """One artifact URL, read with conditional requests."""

    def __init__(self, url: str, *, timeout: float, max_bytes: int,
                 bearer_token_env: str | None = None):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{shown_url(url)!r}: an artifact URL is http:// or https:// "
                             "with a host")
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.url = url
        self.shown = shown_url(url)
        self.timeout = float(timeout)
        self.max_bytes = max_bytes
        self.bearer_token_env = bearer_token_env or None
        self.etag: str | None = None
        self.last_modified: str | None = None
        self.plain_http_with_token = (parts.scheme.lower() == "http" and bool(bearer_token_env)
                                      and not _is_loopback(parts.hostname.lower()))
        self._in_flight: Exchange | None = None  # the request abort() cuts

    # --- the request ---------------------------------------------------------------------

    def _authorization(self) -> str | None:
        name = self.bearer_token_env
        if name is None:
            return None
        token = os.environ.get(name, "").strip()
        if not token:
            raise FetchError(f"{self.shown}: ${name} (its bearer token) is not set; "
                             "not requesting without it")
        if not all(33 <= ord(c) < 127 for c in token):
            raise FetchError(f"{self.shown}: ${name} holds characters a bearer token cannot "
                             "(blanks, control or non-ASCII characters); not sent")
        return f"Bearer {token}"

    def _request(self) -> tuple[urllib.request.Request, str | None]:
        authorization = self._authorization()
        req = urllib.request.Request(self.url, method="GET")
        req.add_header("User-Agent", USER_AGENT)
        req.add_header("Accept", "application/json")
        req.add_header("Accept-Encoding", "gzip")
        if self.etag is not None:
            req.add_header("If-None-Match", self.etag)
        if self.last_modified is not None:
            req.add_header("If-Modified-Since", self.last_modified)
        if authorization is not None:
            req.add_unredirected_header("Authorization", authorization)
        return req, authorization

    def get(self) -> tuple[bytes, str | None, str | None] | None:
        """``(body, etag, last_modified)`` of a new body, or None when unchanged (``304``).

        Raises :class:`FetchError` for anything else: unreachable, no whole answer within
        ``timeout`` (connecting, the headers and the body together), an HTTP error status,
        a body over the cap, a truncated body, :meth:`abort`.
        """
        req, authorization = self._request()
        exchange = Exchange(self.timeout)
        opener = urllib.request.build_opener(_Redirects(_origin(self.url), authorization),
                                             *handlers(exchange))
        self._in_flight = exchange
        try:
            with exchange.running():
                try:
                    got = self._exchange(opener, req)
                except FetchError:
                    if exchange.expired:  # cut off: what failed is the deadline
                        raise self._cut(exchange) from None
                    raise
                if exchange.expired:  # what was read by then is not the whole answer
                    raise self._cut(exchange)
                return got
        finally:
            self._in_flight = None

    def abort(self) -> None:
        """Cut the request in flight now (from another thread: a client being closed);
        it fails with :class:`FetchError`. Nothing happens when none is in flight."""
        exchange = self._in_flight
        if exchange is not None:
            exchange.expire(aborted=True)

    def _cut(self, exchange: Exchange) -> FetchError:
        if exchange.aborted:
            return FetchError(f"{self.shown}: request stopped (the client was closed)")
        return self._timed_out()

    def _timed_out(self) -> FetchError:
        # also when a read's own timeout (the time left) fires a moment before the deadline
        return FetchError(f"{self.shown}: timed out after {self.timeout:g} s (the whole "
                          "request: connecting, the headers and the body)")

    def _exchange(self, opener: urllib.request.OpenerDirector, req: urllib.request.Request
                  ) -> tuple[bytes, str | None, str | None] | None:
        """One request, its failures as :class:`FetchError`."""
        try:
            with opener.open(req, timeout=self.timeout) as resp:
                return self._read(resp)
        except urllib.error.HTTPError as e:
            with e:  # close the error's body
                if e.code == 304:
                    return None
                raise FetchError(f"{self.shown}: HTTP {e.code} {e.reason}",
                                 retry_after=_retry_after(e.headers)
                                 if e.code in (429, 503) else None) from None
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, TimeoutError):
                raise self._timed_out() from None
            raise FetchError(f"{self.shown}: cannot reach: "
                             f"{getattr(reason, 'strerror', None) or reason}") from None
        except TimeoutError:
            raise self._timed_out() from None
        except http.client.IncompleteRead:
            raise FetchError(f"{self.shown}: the body ended early (connection cut)") from None
        except (http.client.HTTPException, OSError) as e:
            raise FetchError(f"{self.shown}: {type(e).__name__}: "
                             f"{getattr(e, 'strerror', None) or e}") from None
        except ValueError:  # a header http.client refuses to send: say no more than that
            raise FetchError(f"{self.shown}: the request could not be sent") from None

    def _read(self, resp: Any) -> tuple[bytes, str | None, str | None]:
        cap = self.max_bytes
        length = resp.headers.get("Content-Length")
        encoding = (resp.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            raise FetchError(f"{self.shown}: served with Content-Encoding {encoding!r}, "
                             "which this SDK does not read")
        if length and length.strip().isdigit() and int(length) > cap:
            raise FetchError(self._too_large())
        chunks, total, received = [], 0, 0
        inflate = zlib.decompressobj(wbits=31) if encoding == "gzip" else None
        while True:
            chunk = resp.read(_CHUNK)
            if not chunk:
                break
            received += len(chunk)
            if inflate is not None:
                try:
                    chunk = inflate.decompress(chunk, cap + 1 - total)
                except zlib.error:
                    raise FetchError(f"{self.shown}: the gzip body is corrupt") from None
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise FetchError(self._too_large())
        if length and length.strip().isdigit() and received < int(length):
            # http.client hands a short read over as it is when the connection closes
            raise FetchError(f"{self.shown}: the body ended early ({received} of {int(length)} "
                             "bytes; connection cut)")
        if inflate is not None and not inflate.eof:
            raise FetchError(f"{self.shown}: the gzip body ended early")
        return b"".join(chunks), resp.headers.get("ETag"), resp.headers.get("Last-Modified")

    def _too_large(self) -> str:
        cap = self.max_bytes
        size = f"{cap // (1024 * 1024)} MiB" if cap >= 1024 * 1024 else f"{cap} bytes"
        return f"{self.shown}: larger than {size}, the most an artifact may be; not a rollout artifact?"

    def accept(self, etag: str | None, last_modified: str | None) -> None:
        """Remember the validators of a body that was accepted: the next request is
        conditional on it."""
        self.etag, self.last_modified = etag, last_modified

    def forget(self) -> None:
        self.etag = self.last_modified = None
