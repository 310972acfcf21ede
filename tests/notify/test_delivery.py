"""Deliveries to real HTTP receivers on loopback, in-process: the Slack message's blocks,
the JSON webhook's fields and signature (checked with hmac here, independently), the events
each target asked for, and receivers that fail, refuse or never answer."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

from runner.integrations.notify import Change, deliver, delivery_id, slack_message
from runner.model import CohortEvidence, GateResult, NotifyConfig, NotifyTarget, Verdict
from tests.notify.receivers import closed_port_url, receiver, silent_receiver

NOW = datetime(2026, 1, 15, 12, 30, tzinfo=UTC)
SENT = datetime(2026, 1, 15, 12, 30, 5, tzinfo=UTC)
SHA = "c31bba03d2b05a629a0884571dc3c36d324be813"
SECRET = "hook-signing-key-0123456789"
COMPARISON = GateResult(
    name="error_rate_vs_control", verdict=Verdict.FAIL, value=1.6, threshold="<= +0.5 points",
    detail="treatment worse than control", evaluated_at=NOW,
    cohorts=CohortEvidence(treatment_rate=2.5, control_rate=0.9, treatment_requests=1200,
                           control_requests=11800, low=0.8, high=2.4, margin=0.5,
                           confidence=0.95))


def change(event: str = "rollback", reason: str = "rolled back at 25%: gate failed",
           **kw: object) -> Change:
    fields: dict[str, object] = dict(
        event=event, flag="checkout_v2", plan="checkout_v2", action=event, from_percentage=25.0,
        to_percentage=0.0, phase="rolled_back", reason=reason, commit=SHA,
        commit_url=f"https://github.com/acme/flags/commit/{SHA}", pushed=True, decided_at=NOW,
        gates=(COMPARISON, GateResult(name="p95_latency_ms", verdict=Verdict.PASS, value=120,
                                      threshold="<= 500", evaluated_at=NOW)),
        run_url="https://github.com/acme/flags/actions/runs/42", repository="acme/flags")
    fields.update(kw)
    return Change(**fields)  # type: ignore[arg-type]


def slack(name: str = "ops", events: tuple[str, ...] = ("rollback",), timeout: float = 5.0
          ) -> NotifyTarget:
    return NotifyTarget(name, "slack", f"{name.upper()}_URL", events, timeout=timeout)


def webhook(name: str = "hook", events: tuple[str, ...] = ("rollback",), timeout: float = 5.0
            ) -> NotifyTarget:
    return NotifyTarget(name, "webhook", f"{name.upper()}_URL", events, secret_env="HOOK_SECRET",
                        timeout=timeout)


def test_the_slack_message_is_block_kit_with_the_evidence_and_the_commit_link() -> None:
    msg = slack_message(change(reason="rolled back <!channel> & <https://evil.example|click>"))
    types = [b["type"] for b in msg["blocks"]]
    assert types == ["header", "section", "section", "section", "context"]
    header = msg["blocks"][0]["text"]
    assert header["type"] == "plain_text" and "checkout_v2 rolled back" in header["text"]
    fields = [f["text"] for f in msg["blocks"][1]["fields"]]
    assert fields[0] == "*Flag*\n`checkout_v2`" and fields[1] == "*Action*\nrollback"
    assert fields[2] == "*Percentage*\n25% → 0%"
    assert fields[3] == f"*Commit*\n<https://github.com/acme/flags/commit/{SHA}|c31bba0>"
    # what came from input cannot mention a channel or make a link
    reason = msg["blocks"][2]["text"]["text"]
    assert "<!channel>" not in reason and "&lt;!channel&gt; &amp; &lt;https:\u2060//evil" in reason
    assert msg["blocks"][2]["text"]["verbatim"] is True
    evidence = msg["blocks"][3]["text"]["text"]
    assert evidence.startswith("*Gate evidence*\n• error_rate_vs_control = 1.6")
    assert ("treatment 2.5% of 1,200 requests vs control 0.9% of 11,800 requests; 95% interval "
            "of the difference [+0.8, +2.4] points, allowed +0.5 points") in evidence
    assert "<https://github.com/acme/flags/actions/runs/42|workflow run>" in \
        msg["blocks"][4]["elements"][0]["text"]
    assert msg["text"] == "checkout_v2 rolled back: 25% → 0%"


def test_no_commit_link_when_the_repository_is_unknown() -> None:
    msg = slack_message(change(commit_url=None, pushed=False, run_url=None))
    assert msg["blocks"][1]["fields"][3]["text"] == "*Commit*\n`c31bba0` (local commit, not pushed)"
    assert "workflow run" not in json.dumps(msg)


def test_slack_and_webhook_receive_their_documents_and_the_signature_verifies() -> None:
    config = NotifyConfig(targets=(slack(), webhook()))
    with receiver() as s, receiver() as h:
        env = {"OPS_URL": f"{s.url}/services/T0/B0/tokentoken", "HOOK_URL": f"{h.url}/in",
               "HOOK_SECRET": SECRET}
        out = deliver(config, [change()], env, SENT)
    assert out.delivered == [("ops", "rollback", "checkout_v2"), ("hook", "rollback", "checkout_v2")]
    assert not out.undelivered
    (sl,), (wh,) = s.seen, h.seen
    assert sl.path == "/services/T0/B0/tokentoken"
    assert sl.json()["blocks"][0]["type"] == "header"
    # the receiver's check, written from the documentation, not from the runner's code
    expected = "sha256=" + hmac.new(SECRET.encode(), wh.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(wh.headers["X-Rollout-Signature-256"], expected)
    doc = wh.json()
    assert wh.headers["X-Rollout-Event"] == doc["event"] == "rollback"
    assert wh.headers["X-Rollout-Delivery"] == doc["delivery"] == delivery_id("hook", change())
    assert wh.headers["X-Rollout-Timestamp"] == str(doc["timestamp"]) == str(int(SENT.timestamp()))
    assert wh.headers["Content-Type"].startswith("application/json")
    assert (doc["flag"], doc["action"], doc["from_percentage"], doc["to_percentage"]) == \
        ("checkout_v2", "rollback", 25, 0)
    assert doc["commit"] == {"sha": SHA, "url": f"https://github.com/acme/flags/commit/{SHA}",
                             "pushed": True}
    assert doc["decided_at"] == "2026-01-15T12:30:00Z" and doc["version"] == 1
    gate = doc["gates"][0]
    assert gate["cohorts"] == {"treatment_rate": 2.5, "control_rate": 0.9,
                               "treatment_requests": 1200, "control_requests": 11800,
                               "low": 0.8, "high": 2.4, "margin": 0.5, "confidence": 0.95}
    assert doc["gates"][1]["cohorts"] is None
    # a body changed in transit no longer verifies
    tampered = wh.body.replace(b'"to_percentage":0', b'"to_percentage":100')
    assert tampered != wh.body
    bad = "sha256=" + hmac.new(SECRET.encode(), tampered, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(wh.headers["X-Rollout-Signature-256"], bad)


def test_each_target_gets_only_the_events_it_asked_for() -> None:
    config = NotifyConfig(targets=(slack("done", ("completed",)),
                                   webhook("hook", ("rollback", "stuck"))))
    with receiver() as d, receiver() as h:
        env = {"DONE_URL": d.url, "HOOK_URL": h.url, "HOOK_SECRET": SECRET}
        out = deliver(config, [change("rollback"), change("advance"), change("stuck"),
                               change("completed")], env, SENT)
    # sent at once: they may arrive in any order
    assert sorted(x.json()["event"] for x in h.seen) == ["rollback", "stuck"]
    assert len(d.seen) == 1 and "completed" in d.seen[0].json()["text"]
    assert sorted(out.delivered) == [("done", "completed", "checkout_v2"),
                                     ("hook", "rollback", "checkout_v2"),
                                     ("hook", "stuck", "checkout_v2")]


def test_a_silent_receiver_and_a_closed_port_are_given_up_on_and_the_others_delivered() -> None:
    config = NotifyConfig(targets=(webhook("silent", timeout=0.5), webhook("refused", timeout=0.5),
                                   slack("ops")))
    with silent_receiver() as silent, receiver() as ok:
        env = {"SILENT_URL": silent.url, "REFUSED_URL": closed_port_url(), "OPS_URL": ok.url,
               "HOOK_SECRET": SECRET}
        out = deliver(config, [change()], env, SENT)
        # deliver returned while the silent receiver still holds the connection unanswered:
        # the run did not wait for it beyond the target's timeout
        assert silent.accepted.is_set() and not silent.release.is_set()
    assert out.delivered == [("ops", "rollback", "checkout_v2")]
    why = {u.target: u.why for u in out.undelivered}
    assert why["silent"] == "no answer within 0.5s"
    assert why["refused"].startswith("cannot reach the receiver:") and "refused" in why["refused"]
    assert "127.0.0.1" not in " ".join(why.values())  # the URL is never said


def test_targets_are_sent_to_at_once() -> None:
    # the receiver answers only once three requests are open together: one at a time, each
    # would wait in vain and time out
    config = NotifyConfig(targets=(webhook("a"), webhook("b"), webhook("c")))
    with receiver(barrier=3) as r:
        env = {"A_URL": r.url, "B_URL": r.url, "C_URL": r.url, "HOOK_SECRET": SECRET}
        out = deliver(config, [change()], env, SENT)
    assert not out.undelivered and len(out.delivered) == 3
    assert len({x.headers["X-Rollout-Delivery"] for x in r.seen}) == 3


def test_a_refusal_is_reported_with_the_url_and_the_secret_redacted() -> None:
    config = NotifyConfig(targets=(webhook("hook"), slack("ops")))
    token = "T0123/B0456/abcdefghijklmnopqrstuvwx"
    with receiver(status=403, answer="invalid_token for {path}") as r:
        env = {"HOOK_URL": f"{r.url}/x?key={SECRET}", "HOOK_SECRET": SECRET,
               "OPS_URL": f"{r.url}/services/{token}"}
        out = deliver(config, [change()], env, SENT)
    text = " ".join(str(u) for u in out.undelivered)
    assert "the receiver answered HTTP 403: invalid_token for" in text
    assert SECRET not in text and "abcdefghijklmnopqrstuvwx" not in text
    assert "[redacted]" in text


def test_unset_and_malformed_variables_are_reported_by_name_nothing_sent() -> None:
    config = NotifyConfig(targets=(slack("ops"), webhook("hook"), webhook("nokey")))
    env = {"HOOK_URL": "ftp://example.com/x", "NOKEY_URL": "http://127.0.0.1:9/"}
    out = deliver(config, [change()], env, SENT)
    assert not out.delivered
    assert {u.target: u.why for u in out.undelivered} == {
        "ops": "$OPS_URL is not set",
        "hook": "$HOOK_URL is not an http:// or https:// URL",
        "nokey": "$HOOK_SECRET (its signing key) is not set"}


def test_a_target_that_wants_none_of_the_events_is_not_contacted() -> None:
    out = deliver(NotifyConfig(targets=(slack("ops", ("completed",)),)), [change()], {}, SENT)
    assert not out.attempted and not out.undelivered


def test_the_documented_receiver_check_accepts_a_delivery_and_refuses_a_replay() -> None:
    import re
    import time
    from pathlib import Path

    import pytest

    doc = (Path(__file__).parents[2] / "docs/notifications.md").read_text(encoding="utf-8")
    (snippet,) = re.findall(r"```python\n(import hashlib.*?)```", doc, re.S)
    scope: dict[str, object] = {}
    exec(snippet, scope)
    verify = scope["verify"]
    config = NotifyConfig(targets=(webhook(),))
    with receiver() as h:
        env = {"HOOK_URL": h.url, "HOOK_SECRET": SECRET}
        deliver(config, [change()], env, datetime.fromtimestamp(int(time.time()), UTC))
        deliver(config, [change()], env, datetime.fromtimestamp(int(time.time()) - 3600, UTC))
    seen, old = h.seen
    got: set[str] = set()
    sig = seen.headers["X-Rollout-Signature-256"]
    assert verify(seen.body, sig, SECRET.encode(), got)["flag"] == "checkout_v2"  # type: ignore[operator]
    with pytest.raises(ValueError, match="already received"):
        verify(seen.body, sig, SECRET.encode(), got)  # type: ignore[operator]
    with pytest.raises(ValueError, match="bad signature"):
        verify(seen.body + b" ", sig, SECRET.encode(), set())  # type: ignore[operator]
    with pytest.raises(ValueError, match="too old"):  # signed, but an hour old: a replay
        verify(old.body, old.headers["X-Rollout-Signature-256"], SECRET.encode(), set())  # type: ignore[operator]


def test_userinfo_is_sent_as_basic_auth_and_no_url_secret_is_ever_reported() -> None:
    import base64

    config = NotifyConfig(targets=(webhook("hook"), slack("ops")))
    with receiver(status=401, answer="401: bad credentials for {path}, token abc, user u:secret"
                  ) as r:
        host = r.url.removeprefix("http://")
        env = {"HOOK_URL": f"http://u:secret@{host}/hook?token=abc", "HOOK_SECRET": SECRET,
               "OPS_URL": f"http://ops:secret@{host}/services?token=abc&x=y"}
        out = deliver(config, [change()], env, SENT)
    assert {s.path for s in r.seen} == {"/hook?token=abc", "/services?token=abc&x=y"}
    assert {s.headers["Authorization"] for s in r.seen} == {
        "Basic " + base64.b64encode(b"u:secret").decode(),
        "Basic " + base64.b64encode(b"ops:secret").decode()}
    text = " ".join(str(u) for u in out.undelivered)
    assert "the receiver answered HTTP 401" in text and "[redacted]" in text
    assert "secret" not in text and "abc" not in text, text


def test_slack_text_objects_holding_input_are_verbatim() -> None:
    def text_objects(node: object) -> list[dict[str, object]]:
        if isinstance(node, dict):
            found = [node] if node.get("type") == "mrkdwn" else []
            return found + [t for v in node.values() for t in text_objects(v)]
        if isinstance(node, list):
            return [t for v in node for t in text_objects(v)]
        return []

    objects = text_objects(slack_message(change(reason="see <https://x|here> #general")))
    assert objects and all(o.get("verbatim") is True for o in objects)
