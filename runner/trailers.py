"""Commit trailers (``Key: value`` lines closing a message), the one place they are found.

The low level under ``runner/reconcile/message.py`` (which reads runner commits through
:func:`split_message`). Two ways, one contract (docs/runner.md):

- found in a raw message (``%B``) by :func:`split_message`, as git finds them: every read
  of a runner commit (``rollout history``'s long log, who last changed a state, the local
  commits a run drops): asking git for ``%(trailers:...)`` made git ~25 % slower than the
  plain log it is measured against, while here a message whose last paragraph is all
  trailers (every runner commit) costs one regex call;
- asked of git, with the ``%(trailers:...)`` placeholder :func:`trailer_format` writes, for
  the one trailer of a publication branch's commits (``Rollout-Source-Commit``).

Anything less regular (continuation lines, comments, a ``Signed-off-by`` among prose,
blank lines holding spaces) goes through a line-by-line port of git's ``trailer.c`` rules:

- the first paragraph (the subject) is never trailers;
- the trailer block is the last paragraph, after trailing blank and ``#`` comment lines, when
  its lines are all ``Key: value`` (or continuation lines starting with whitespace), or when
  it holds a git-generated line (``Signed-off-by: ``, ``(cherry picked from commit ``) and at
  least a quarter of its lines are trailers;
- a key is ASCII letters, digits and ``-``, then optional blanks, then ``:``; key and value
  are trimmed, continuation lines are unfolded into one space (``%(trailers:unfold)``).
"""

from __future__ import annotations

import re

#: Every line ``Key: value``; group 1 the key, group 2 the trimmed value (git's isspace is
#: space, tab, CR and LF only). Greedy up to the last non-blank: a lazy ``(.*?)`` before
#: ``[ \t\r]*$`` retries the end at every character, 2.5x slower.
_TRAILER_LINES = re.compile(r"^([A-Za-z0-9-]+)[ \t]*:[ \t\r]*([^\n]*[^ \t\r\n])?[ \t\r]*$",
                            re.M)
#: A paragraph of nothing but such lines (checked in one match, without building groups).
_ALL_TRAILER_LINES = re.compile(r"(?:[A-Za-z0-9-]+[ \t]*:[^\n]*\n)*[A-Za-z0-9-]+[ \t]*:[^\n]*")
_GIT_GENERATED = ("Signed-off-by: ", "(cherry picked from commit ")
_SEPARATOR = re.compile(r"[A-Za-z0-9-]+[ \t]*:")
_BLANK = " \t\r"
_UNFOLD = re.compile(r"\n[ \t\r\n]*")


def trailer_format(key: str, separator: str | None = None) -> str:
    """The ``git log --format`` placeholder of the values of trailer ``key``; several values
    are joined by ``separator`` (a format literal such as ``%x2C``), else by line breaks."""
    joined = f",separator={separator}" if separator is not None else ""
    return f"%(trailers:key={key},valueonly{joined})"


def split_message(message: str) -> tuple[str, int, list[tuple[str, str]]]:
    """``(subject, body_start, trailers)`` of a raw message: the subject as ``%s`` prints it,
    where the body starts (-1 when there is none), and the trailers in order."""
    nl = message.find("\n")
    if nl < 0 or nl == len(message) - 1:  # one line: a subject, nothing else
        return _subject_line(message[:nl] if nl >= 0 else message), -1, []
    if _plain_subject(message, nl):
        end = _content_end(message)
        cut = message.rfind("\n\n", 0, end)
        if cut >= nl:
            # searched in place (no slices): 20,000 messages make every copy count
            found = _TRAILER_LINES.findall(message, cut + 2, end)
            if found and len(found) == message.count("\n", cut + 2, end) + 1:
                return message[:nl], nl + 2, found  # the last paragraph: all trailers
        return message[:nl], nl + 2, _trailers_like_git(message)
    subject, body_start = _subject_and_body(message)
    return subject, body_start, _trailers_like_git(message)


def trailer_paragraph(message: str) -> str | None:
    """The last paragraph when a plain subject line is followed, at the end, by a paragraph
    of nothing but ``Key: value`` lines (every runner commit); None when the message is
    shaped otherwise (which does not mean it has no trailers)."""
    nl = message.find("\n")
    return _trailer_paragraph(message, nl) if _plain_subject(message, nl) else None


def _plain_subject(message: str, nl: int) -> bool:
    """One subject line without edge blanks, then an empty line."""
    return (nl > 0 and message[nl + 1: nl + 2] == "\n" and message[0] not in _BLANK
            and message[nl - 1] not in _BLANK)


def _content_end(message: str) -> int:
    """Length of ``message`` without its trailing blanks and line breaks."""
    if message.endswith("\n") and message[-2:-1] not in ("\n", " ", "\t", "\r"):
        return len(message) - 1  # a single final line break, the usual end
    return len(message.rstrip(" \t\r\n"))


def _trailer_paragraph(message: str, nl: int) -> str | None:
    end = _content_end(message)
    cut = message.rfind("\n\n", 0, end)
    if cut < nl:
        return None
    return message[cut + 2: end] if _ALL_TRAILER_LINES.fullmatch(message, cut + 2, end) else None


def _subject_line(line: str) -> str:
    return line.rstrip(" \t\r") if line.strip(" \t\r") else ""


def _subject_and_body(message: str) -> tuple[str, int]:
    """git's ``format_subject``: skip blank lines, join the first paragraph's right-trimmed
    lines with one space; the body starts after the blank line that ends it."""
    lines = message.split("\n")
    pos, i = 0, 0
    while i < len(lines) and _is_blank(lines[i]):
        pos += len(lines[i]) + 1
        i += 1
    parts = []
    while i < len(lines) and not _is_blank(lines[i]):
        parts.append(lines[i].rstrip(_BLANK))
        pos += len(lines[i]) + 1
        i += 1
    return " ".join(parts), (pos if i < len(lines) else -1)


def _is_blank(line: str) -> bool:
    return not line.strip(" \t\r")


def _trailers_like_git(message: str) -> list[tuple[str, str]]:
    lines = message.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    # skip leading blank lines (git's subject offset), then the title paragraph
    start = 0
    while start < len(lines) and _is_blank(lines[start]):
        start += 1
    end_of_title = start
    while end_of_title < len(lines) and (lines[end_of_title].startswith("#")
                                         or not _is_blank(lines[end_of_title])):
        end_of_title += 1
    end = _end_of_log_message(lines)
    block_start = _trailer_block_start(lines, end_of_title, end)
    if block_start is None:
        return []
    # continuation lines join the trailer above them; comment lines are no trailers
    items: list[list[str]] = []
    last: list[str] | None = None
    for line in lines[block_start:end]:
        if last is not None and line[:1] in (" ", "\t", "\r", "\n"):
            last.append(line)
            continue
        item = [line]
        items.append(item)
        last = item if _SEPARATOR.match(line) else None
    found = []
    for item in items:
        first = item[0]
        if first.startswith("#") or not (m := _SEPARATOR.match(first)):
            continue
        key = first[: m.end() - 1].rstrip(" \t")
        # git trims the whole value, then folds each line break and the blanks after it
        # into one space (blanks before a break stay)
        value = _UNFOLD.sub(" ", "\n".join([first[m.end():], *item[1:]]).strip(_BLANK + "\n"))
        found.append((key, value))
    return found


def _end_of_log_message(lines: list[str]) -> int:
    """Index after the last line that counts: trailing blank and comment lines (and an old
    ``Conflicts:`` block) are not part of the message git reads trailers from."""
    boc: int | None = None
    in_conflicts = False
    for i, line in enumerate(lines):
        if line.startswith("#") or line == "":
            if boc is None:
                boc = i
        elif line == "Conflicts:":
            in_conflicts = True
            if boc is None:
                boc = i
        elif in_conflicts and line.startswith("\t"):
            pass
        elif boc is not None:
            boc, in_conflicts = None, False
    return len(lines) if boc is None else boc


def _trailer_block_start(lines: list[str], end_of_title: int, end: int) -> int | None:
    only_spaces = True
    recognized_prefix = False
    trailer_lines = non_trailer_lines = possible_continuation_lines = 0
    for i in range(end - 1, end_of_title - 1, -1):
        line = lines[i]
        if line.startswith("#"):
            non_trailer_lines += possible_continuation_lines
            possible_continuation_lines = 0
            continue
        if _is_blank(line):
            if only_spaces:
                continue
            non_trailer_lines += possible_continuation_lines
            if recognized_prefix and trailer_lines * 3 >= non_trailer_lines:
                return i + 1
            if trailer_lines and not non_trailer_lines:
                return i + 1
            return None
        only_spaces = False
        if line.startswith(_GIT_GENERATED):
            trailer_lines += 1
            possible_continuation_lines = 0
            recognized_prefix = True
        elif _SEPARATOR.match(line):
            trailer_lines += 1
            possible_continuation_lines = 0
        elif line[:1] in (" ", "\t", "\r"):
            possible_continuation_lines += 1
        else:
            non_trailer_lines += 1 + possible_continuation_lines
            possible_continuation_lines = 0
    return None
