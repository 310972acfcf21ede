"""The ``prometheus`` source: instant queries against the Prometheus HTTP API.

- One ``POST /api/v1/query`` per gate, with ``time=`` the injected ``now``: the clock of the
  run decides which data is read, so backfilled or historical data gives the same answer
  every time.
- The PromQL is ``metrics.queries[gate]`` for built-in gates and the gate's own ``query`` for
  custom gates, a sandboxed Jinja2 template with ``flag``, ``window`` and ``percentage``.
- ``timeout`` bounds the whole source (all of its queries together): it is a deadline for the
  whole exchange — connecting, the headers and the body — not for each read, so a server that
  trickles its answer byte by byte is cut off at the deadline.
- An answer larger than :data:`MAX_BODY` (1 MiB) is an error for its gate.
- ``bearer_token_env`` names the environment variable holding a bearer token; it is sent as
  ``Authorization: Bearer …``. Redirects are refused, so the token never follows one to
  another host. The token's value is replaced by ``[redacted]`` in every text the source
  hands back (a server's error message that echoes the header included).
- A URL with userinfo (``https://user:password@host/…``) is sent as HTTP Basic auth
  (``Authorization: Basic …``), never with the userinfo in the request; with
  ``bearer_token_env`` as well, it is an error (one credential). Messages show the URL with
  its userinfo and every query value ``[redacted]``, and every text the source hands back
  has those values redacted wherever they appear (a 401 body echoing ``?token=`` included).
- ``url_env`` names the environment variable holding the URL instead of ``url`` (a
  repository variable or secret in Actions): read at run time, redacted like ``url``.

A gate with a ``confidence`` reads no rate query: it reads ``metrics.queries``
``step_requests`` and ``step_errors``, the flag's requests and errors since the current step
started (``step_window``), and the verdict rules judge them (docs/metrics.md).

With comparison gates, the cohort counts come from ``metrics.queries`` ``cohort_requests``,
``cohort_errors``, ``cohort_slow`` and (optional) ``cohort_assigned``, each rendered once per
cohort with ``variant``, ``cohort``, ``treatment_variant``, ``control_variant``,
``step_window``, ``objective_ms`` and ``objective_seconds`` (docs/guarded.md).

Answers: one sample → its value; an empty vector → no data (inconclusive); several series →
error (ambiguous: aggregate in the query with ``sum``/``max``); a scalar → its value; NaN or
±Inf → inconclusive; anything else (a matrix, a string, non-numeric text, an error status) →
error. An unreachable server, a timeout or a refused token → every gate is an error.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from typing import IO, Any

from runner.exchange import Exchange, handlers
from runner.gates.readings import (
    COHORTS,
    OPTIONAL_COUNTS,
    QUERY_PREFIX,
    STEP_COUNTS,
    STEP_QUERY_PREFIX,
    Reading,
    SourceCall,
    SourceError,
    cohort_key,
    counts_read,
    judges_counts,
    step_key,
    template_vars,
)
from runner.gates.templates import TemplateProblem, render
from runner.safetext import basic_auth, redact, shown_url, url_secrets

#: Largest answer read: a gate query returns one number; more is a mistake, not data.
MAX_BODY = 1024 * 1024
_MAX_ERROR_BODY = 64 * 1024
_SHOWN_QUERY = 200


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: http.client.HTTPMessage, newurl: str) -> urllib.request.Request | None:
        return None  # urllib then raises HTTPError for the 3xx


def _opener(url: str, env: Mapping[str, str],
            exchange: Exchange | None = None) -> urllib.request.OpenerDirector:
    """urllib with the run's proxy settings (``env``, not the process's) and no redirects."""
    proxies = {}
    for scheme in ("http", "https"):
        value = env.get(f"{scheme}_proxy") or env.get(f"{scheme.upper()}_PROXY")
        if value:
            proxies[scheme] = value
    no_proxy = env.get("no_proxy") or env.get("NO_PROXY")
    host = urllib.parse.urlsplit(url).hostname or ""
    # proxy_bypass_environment: urllib's own no_proxy rule (undocumented, not in typeshed)
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if proxies and no_proxy and bypass(host, {"no": no_proxy}):
        proxies = {}
    extra = handlers(exchange) if exchange is not None else []
    return urllib.request.build_opener(urllib.request.ProxyHandler(proxies), _NoRedirect(), *extra)


def _shorten(promql: str) -> str:
    one_line = " ".join(promql.split())
    return one_line if len(one_line) <= _SHOWN_QUERY else one_line[: _SHOWN_QUERY - 1] + "…"


def _number(text: object, promql: str) -> Reading:
    where = f"promql {_shorten(promql)}"
    if not isinstance(text, str):
        return Reading(error=f"answer value {text!r:.40} is not a number ({where})", detail=where)
    try:
        value = float(text)  # Prometheus writes NaN, +Inf, -Inf as such: float() reads them
    except ValueError:
        return Reading(error=f"answer value {text!r:.40} is not a number ({where})", detail=where)
    return Reading(value=value, detail=where)  # NaN/Inf: the verdict rules say inconclusive


def _interpret(body: Any, promql: str) -> Reading:
    where = f"promql {_shorten(promql)}"
    answered = isinstance(body, dict) and body.get("status") == "success"
    if not answered or not isinstance(body.get("data"), dict):
        return Reading(error=f"not a Prometheus query answer ({where})", detail=where)
    data = body["data"]
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return _number(result[1], promql)
    if kind != "vector" or not isinstance(result, list):
        return Reading(error=f"answer is a {kind}, expected an instant vector or a scalar ({where})",
                       detail=where)
    if not result:
        return Reading(detail=f"empty result: no series at this time ({where})")
    if len(result) > 1:
        labels = [s.get("metric", {}) if isinstance(s, dict) else s for s in result[:3]]
        return Reading(error=f"ambiguous: {len(result)} series, e.g. {labels}; aggregate them in "
                       f"the query (sum, max) ({where})", detail=where)
    sample = result[0]
    if not isinstance(sample, dict) or not isinstance(sample.get("value"), list) or len(sample["value"]) != 2:
        return Reading(error=f"malformed sample in answer ({where})", detail=where)
    return _number(sample["value"][1], promql)


def _query(url: str, promql: str, now: datetime, headers: Mapping[str, str], timeout: float,
           env: Mapping[str, str]) -> Reading:
    exchange = Exchange(timeout)
    late = SourceError(f"prometheus {shown_url(url)}: no answer within the timeout (the whole exchange)")
    with exchange.running():
        try:
            reading = _exchange(_opener(url, env, exchange), url, promql, now, headers, timeout)
        except (SourceError, OSError, http.client.HTTPException, ValueError):
            if exchange.expired:
                raise late from None
            raise
        if exchange.expired:  # cut off: what was read is not the answer
            raise late
    return reading


def _exchange(opener: urllib.request.OpenerDirector, url: str, promql: str, now: datetime,
              headers: Mapping[str, str], timeout: float) -> Reading:
    form = urllib.parse.urlencode({"query": promql, "time": f"{now.timestamp():.3f}"}).encode()
    request = urllib.request.Request(_endpoint(url), data=form, method="POST",
                                     headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with opener.open(request, timeout=timeout) as response:
            raw = response.read(MAX_BODY + 1)
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise SourceError(f"prometheus {shown_url(url)}: HTTP {e.code} {e.reason}: the bearer token was "
                              "refused (or none was configured: metrics.bearer_token_env)") from e
        if 300 <= e.code < 400:
            raise SourceError(f"prometheus {shown_url(url)}: HTTP {e.code} redirect refused "
                              "(configure the final URL)") from e
        # 400 bad_data, 422 execution, 503 timeout: Prometheus explains in a JSON body
        try:
            explained = json.loads(e.read(_MAX_ERROR_BODY))
            why = f"{explained.get('errorType')}: {explained.get('error')}"
        except (OSError, http.client.HTTPException, ValueError, AttributeError, RecursionError):
            # no body, not JSON (or nested too deep), not an object: the status line says it
            why = str(e.reason)
        where = f"promql {_shorten(promql)}"
        return Reading(error=f"prometheus answered HTTP {e.code}: {why} ({where})", detail=where)
    except TimeoutError as e:
        raise SourceError(f"prometheus {shown_url(url)}: no answer within the timeout") from e
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, TimeoutError):
            raise SourceError(f"prometheus {shown_url(url)}: no answer within the timeout") from e
        cause = getattr(reason, "strerror", None) or reason
        raise SourceError(f"prometheus {shown_url(url)}: unreachable: {cause}") from e
    except (OSError, http.client.HTTPException) as e:  # connection reset mid-answer and the like
        raise SourceError(f"prometheus {shown_url(url)}: {type(e).__name__}: {e}") from e
    if len(raw) > MAX_BODY:
        return Reading(error=f"answer larger than {MAX_BODY} bytes (promql {_shorten(promql)})")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return Reading(error=f"answer is not JSON (promql {_shorten(promql)})")
    return _interpret(body, promql)


def _endpoint(url: str) -> str:
    """The query API under ``url``: its path gains ``/api/v1/query``, its query string kept."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc,
                                    parts.path.rstrip("/") + "/api/v1/query", parts.query, ""))


def read(call: SourceCall) -> dict[str, Reading]:
    m = call.metrics
    configured = m.url
    if m.url_env and not m.url:
        configured = call.env.get(m.url_env, "").strip() or None
        if not configured:
            raise SourceError(f"environment variable {m.url_env} (metrics.url_env) is not set or "
                              "empty: it must hold the Prometheus URL (in Actions: a repository "
                              "variable or secret, set in the step's env)")
        if not configured.lower().startswith(("http://", "https://")):
            raise SourceError(f"environment variable {m.url_env} (metrics.url_env) is not an "
                              f"http(s) URL: {shown_url(configured)}")
    if not configured:
        raise SourceError("metrics type prometheus needs a url")
    try:
        url, basic = basic_auth(configured.rstrip("/"))
    except ValueError:
        raise SourceError(f"metrics.url is not a URL: {shown_url(configured)}") from None
    headers = {"Accept": "application/json", "User-Agent": "rollout-runner"}
    if basic:
        if m.bearer_token_env:
            raise SourceError("metrics.url carries a user and password and metrics."
                              "bearer_token_env names a token: keep one of them")
        headers["Authorization"] = basic
    if m.bearer_token_env:
        token = call.env.get(m.bearer_token_env)
        if not token:
            raise SourceError(f"environment variable {m.bearer_token_env} (metrics.bearer_token_env) is "
                              "not set or empty: it must hold the Prometheus bearer token")
        headers["Authorization"] = f"Bearer {token}"
    secrets = [token for token in [call.env.get(m.bearer_token_env or "")] if token]
    secrets += url_secrets(configured)
    try:
        readings = _read_all(call, url, headers)
    except SourceError as e:
        raise SourceError(redact(str(e), secrets)) from None
    return {name: Reading(r.value, redact(r.error, secrets) if r.error is not None else None,
                          redact(r.detail, secrets)) for name, r in readings.items()}


def _read_all(call: SourceCall, url: str, headers: Mapping[str, str]) -> dict[str, Reading]:
    m = call.metrics
    deadline = time.monotonic() + m.timeout
    # (readings key, template or None, what, the template's extra variables)
    wanted: list[tuple[str, str | None, str, dict[str, object]]] = []
    shared = template_vars(call)
    for gate in call.gates:
        if gate.confidence is not None:
            continue  # judged on the step counts below, not on a rate query
        template = gate.query if gate.query is not None else m.queries.get(gate.name)
        wanted.append((gate.name, template, f"gate {gate.name}", shared))
    if judges_counts(call.gates):  # a gate with a confidence: counts since the step started
        for count in STEP_COUNTS:
            name = f"{STEP_QUERY_PREFIX}{count}"
            wanted.append((step_key(count), m.queries.get(name), name, shared))
    if call.compare is not None:  # each cohort count: one template rendered once per cohort
        optional = tuple(c for c in OPTIONAL_COUNTS if f"{QUERY_PREFIX}{c}" in m.queries)
        for cohort in COHORTS:
            extra = template_vars(call, cohort)
            for count in counts_read(call.compare, optional):
                name = f"{QUERY_PREFIX}{count}"
                wanted.append((cohort_key(cohort, count), m.queries.get(name),
                               f"{name} ({cohort})", extra))
    readings: dict[str, Reading] = {}
    for key, template, what, extra in wanted:
        if template is None:
            fix = "it" if what.startswith("gate ") else what.split(" ")[0]
            readings[key] = Reading(error=f"no PromQL for {what}: add {fix} to metrics.queries")
            continue
        try:
            promql = render(template, what=f"query of {what}", flag=call.flag,
                            window=m.window, percentage=call.percentage, extra=extra)
        except TemplateProblem as e:
            readings[key] = Reading(error=str(e))
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SourceError(f"prometheus {shown_url(url)}: no answer within the timeout ({m.timeout:g}s)")
        readings[key] = _query(url, promql, call.now, headers, remaining, call.env)
    return readings
