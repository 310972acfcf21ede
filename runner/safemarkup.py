"""Text from input made inert in Markdown (GitHub) and Slack mrkdwn: no mention, no link, no HTML.

Author names, reasons and commit subjects reach incident reports, the status dashboard, the
plan comment, GitHub issues and Slack. Each surface passes them through one function here
(``runner/review/render.py``'s ``md`` filter is :func:`markdown`), so that a name such as
``@org/team <!channel> [click](https://evil.example) <img src=x>`` reads the same and does
nothing:

- **mentions and references**: a WORD JOINER (U+2060, invisible, no width) follows every
  ``@`` and every ``#`` before a letter or digit: ``@org/team`` pings nobody on GitHub or
  Slack, ``#12`` links no issue; in Markdown an ``@`` inside a word (``a@b.example``, where
  no mention starts) is the entity ``&#64;``, as 0.2 wrote it;
- **links**: Markdown's ``[x](y)`` and ``<url>`` are escaped (``\\[``, ``\\<``); a bare URL
  is broken where autolinking starts (``https:⁠//``, ``www⁠.``), so GitHub's and Slack's
  autolinkers never see one;
- **HTML** (Markdown): ``< > &`` are escaped, as every other character Markdown reads;
- **Slack syntax** (mrkdwn): ``& < >`` escaped as Slack asks, so ``<!channel>``, ``<@U…>``
  and ``<url|text>`` are text; the Block Kit text objects holding input set
  ``verbatim: true`` (``runner/integrations/notify.py``) so Slack parses nothing more.

Every result is one line, its control characters escaped (``runner.safetext``).
"""

from __future__ import annotations

import re

from runner.safetext import escape_controls, safe_line

#: Invisible, no width, not a space: breaks a mention, a reference or an autolink and reads
#: the same.
JOINER = "\u2060"

#: Where GitHub and Slack start a mention, a reference or an autolink.
_TRIGGERS = re.compile(r"(@|(?<!&)#)(?=\w)|(:)(?=//)|(?i:\b(www)(?=\.))")
#: An ``@`` inside a word (an address): no mention starts there; written ``&#64;`` in
#: Markdown as 0.2 wrote it (``rollout status`` output stays byte-identical).
_INNER_AT = re.compile(r"(?<=\w)@")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def defuse(text: str) -> str:
    """``text`` with a :data:`JOINER` where a mention (``@x``), a reference (``#1``) or an
    autolink (``scheme://``, ``www.``) would start; nothing else changes."""
    return _TRIGGERS.sub(lambda m: m.group() + JOINER, text)


def markdown(value: object) -> str:
    """Text safe inside a Markdown paragraph or table cell (GitHub-flavoured): one line,
    blanks collapsed, every character Markdown reads backslash-escaped, ``&`` an entity,
    then :func:`defuse`."""
    s = _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split())).replace("&", "&amp;")
    s = _INNER_AT.sub("&#64;", s)
    # after the escapes: a control character shows as ``\u202e``, one backslash
    return defuse(escape_controls(s))


def mrkdwn(value: object, limit: int = 2900) -> str:
    """Text safe in Slack's mrkdwn: one line, ``& < >`` escaped as Slack asks (no
    ``<!channel>``, ``<@U…>`` or ``<url|text>`` of the input's making), :func:`defuse`\\d,
    at most ``limit`` characters (a cut never splits an escape)."""
    text = safe_line(value, limit)
    text = defuse(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    if len(text) > limit:  # the escapes made it longer: cut, never inside an escape
        text = re.sub(r"&[a-z]*$", "", text[: limit - 1]) + "…"
    return text


__all__ = ["JOINER", "defuse", "markdown", "mrkdwn"]
