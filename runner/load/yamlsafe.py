"""Safe, strict YAML: the only way this project reads YAML.

- PyYAML's safe loader, the C one when libyaml is there (an order of magnitude faster).
- The YAML 1.2 core schema: only ``true``/``false`` are booleans. YAML 1.1 would read
  ``on``/``off``/``yes``/``no`` as booleans, which turns the variant name ``off`` into
  ``False``; it would also read ``1:30`` as 90, ``010`` as 8 and dates as datetimes. No
  ``.inf``/``.nan`` either: a percentage must be a finite number.
- Tags beyond plain data (``!!python/object``...) are errors.
- Duplicate keys are errors (PyYAML silently keeps the last one).
- Anchors and aliases are allowed, but a document whose expansion exceeds a node budget is
  rejected before it is constructed (billion laughs), in time linear in its distinct nodes.
- Numbers are finite, integers 64-bit, and none is written with more than 64 characters.
- One document per file, a size limit, UTF-8 only, no NUL bytes.
"""

from __future__ import annotations

import math
import re
from typing import Any, NoReturn

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.errors import ContentError
from runner.load.problems import shown

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - libyaml is missing on some platforms
    # the pure-Python loader: another class, with the interface StrictLoader uses
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a flag file is a few hundred bytes
MAX_EXPANDED_NODES = 100_000
#: Integers are 64-bit (what JSON consumers, flagd and the schemas' bounds can handle).
MAX_INT = (1 << 63) - 1
#: A number written with more characters than this is refused before it is converted (a
#: float needs at most 17 significant digits; 5,000 digits is a mistake or an attack).
MAX_NUMBER_CHARS = 64


def number_error(text: str, value: int | float | None = None) -> str | None:
    """Why a number written ``text`` (read as ``value`` when it was read) is refused, or None.

    The one rule for every file a repository holds (YAML, JSON state, TOML config)."""
    if len(text) > MAX_NUMBER_CHARS:
        return (f"{text[:20]}…: a number of {len(text)} characters, too long "
                f"(at most {MAX_NUMBER_CHARS})")
    if isinstance(value, float) and not math.isfinite(value):
        return f"{text}: not a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        return f"{text}: out of range (integers are 64-bit: at most {MAX_INT} in size)"
    return None


class YamlError(ContentError):
    """A file that is not acceptable YAML. ``line``/``column`` are 1-based."""

    def __init__(self, message: str, line: int = 1, column: int = 1,
                 field: tuple[Any, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        #: The field path where the error is, when known (duplicate keys, tags...).
        self.field = field


_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

# The YAML 1.2 core schema: no yes/no/on/off booleans, no sexagesimal 1:30, no 010 octal,
# no timestamps (an unquoted start_at stays the string the schema expects).
_CORE_12: list[tuple[str, re.Pattern[str], str]] = [
    (_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"),
    (_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), "-+0123456789"),
    (_FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), "-+0123456789."),
    (_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), "~nN"),
    (_MERGE, re.compile(r"^(?:<<)$"), "<"),
]


def _yaml12_resolvers() -> dict[str | None, list[tuple[str, re.Pattern[str]]]]:
    out: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    for tag, rx, firsts in _CORE_12:
        for first in firsts:
            out.setdefault(first, []).append((tag, rx))
        if tag == _NULL:
            out.setdefault("", []).append((tag, rx))  # the empty scalar
    return out


def _path_to(root: Node, line: int, column: int) -> tuple[Any, ...] | None:
    """Field path of the deepest node starting at 0-based (line, column), for messages."""
    best: tuple[Any, ...] | None = None
    seen: set[int] = set()
    stack: list[tuple[Node, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        m = node.start_mark
        if (m.line, m.column) == (line, column) and (best is None or len(path) >= len(best)):
            best = path
        # children pushed in reverse: visited in document order, so a node that aliases
        # share is found where its anchor is written
        if isinstance(node, SequenceNode):
            stack.extend((child, (*path, i)) for i, child in reversed(list(enumerate(node.value))))
        elif isinstance(node, MappingNode):
            for k, v in reversed(node.value):
                name = k.value if isinstance(k, ScalarNode) else "?"
                km = k.start_mark
                if (km.line, km.column) == (line, column) and (best is None or len(path) + 1 >= len(best)):
                    best = (*path, name)
                stack.append((v, (*path, name)))
    return best


class StrictLoader(_BaseLoader):
    yaml_implicit_resolvers = _yaml12_resolvers()
    #: Reject mapping keys that are not strings (``1: x``, ``null: x``): formats whose keys
    #: are names set this; plain data may have other keys.
    string_keys_only = False

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._may_alias = not isinstance(stream, str) or "*" in stream

    # The composer calls these for every node. No path resolvers here, so the general
    # versions' bookkeeping is skipped (a large share of the time spent on big repositories).
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in self.yaml_implicit_resolvers.get(value[:1], ()):
                    if regexp.match(value):
                        return tag
            return _STR
        return _SEQ if kind is SequenceNode else _MAP

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, Node] = {}
            merge: Node | None = None
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:  # ``<<: *defaults``, flattened by PyYAML
                    if merge is not None:  # PyYAML would silently keep one of them
                        m = key_node.start_mark
                        raise YamlError(f"duplicate merge key << (first at line "
                                        f"{merge.start_mark.line + 1}); merge several "
                                        "mappings with one: <<: [*a, *b]", m.line + 1, m.column + 1)
                    merge = key_node
                    continue
                if isinstance(key_node, ScalarNode):
                    m = key_node.start_mark
                    if self.string_keys_only and key_node.tag != _STR:
                        key = self.construct_object(key_node)
                        raise YamlError(f"{shown(key_node.value)}: a key must be a name (a string), "
                                        f"this is {_kind(key)}; quote it", m.line + 1, m.column + 1)
                    # compared as written (tag and text), without constructing every key
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        raise YamlError(
                            f"duplicate key (first at line {seen[key].start_mark.line + 1})",
                            m.line + 1,
                            m.column + 1,
                        )
                    seen[key] = key_node
                elif self.string_keys_only:
                    m = key_node.start_mark
                    raise YamlError("a key must be a name (a string)", m.line + 1, m.column + 1)
        # PyYAML's own check refuses a node that is no mapping (``!!map [a]``); its stub
        # types the argument as the mapping node that check lets through
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]

    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = self.construct_scalar(node)
        if len(text) > MAX_NUMBER_CHARS:  # before converting: int("9" * 5000) is slow or fails
            _bad_number(node, text)
        sign = -1 if text.startswith("-") else 1
        digits = text.lstrip("+-")
        if digits.startswith(("0x", "0o")):
            value = sign * int(digits[2:], 16 if digits[1] == "x" else 8)
        else:
            value = sign * int(digits, 10)
        if abs(value) > MAX_INT:
            _bad_number(node, text, value)
        return value

    def construct_yaml_float(self, node: ScalarNode) -> float:
        if len(node.value) > MAX_NUMBER_CHARS:
            _bad_number(node, node.value)
        value = float(super().construct_yaml_float(node))
        if not math.isfinite(value):
            _bad_number(node, node.value, value)
        return value

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        try:
            if self._may_alias:  # an alias is written *name: without a "*" nothing can expand
                _check_expansion(node)
            try:
                return self._construct_plain(node)
            except _NotPlain:
                return self.construct_document(node)
        except YamlError as e:
            e.field = _path_to(node, e.line - 1, e.column - 1) or ()
            raise
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            if mark is not None:
                text = " ".join(str(p) for p in (e.context, e.problem) if p)
                tag = re.search(r"constructor for the tag '([^']*)'", text)
                if tag:
                    short = tag[1].replace("tag:yaml.org,2002:", "!!")
                    text = f"the tag {short} is not allowed (plain YAML data only)"
                raise YamlError(text, mark.line + 1, mark.column + 1,
                                _path_to(node, mark.line, mark.column) or ()) from None
            raise

    def _construct_plain(self, root: Node) -> Any:
        """Build the data of a plain document: string keys, core scalars, no merge keys.

        Flag and plan files are such documents; building them directly is several times faster
        than PyYAML's general constructor. Anything else (including every error case, so that
        messages are PyYAML's and ours as above) raises _NotPlain and takes the general path.
        """
        built: dict[int, Any] = {}  # by node: an alias yields the same object, as in PyYAML

        def build(node: Node) -> Any:
            known = built.get(id(node), built)
            if known is not built:
                return known
            tag = node.tag
            value: Any
            if isinstance(node, ScalarNode):
                if tag == _STR:
                    value = node.value
                elif tag == _INT:
                    value = self.construct_yaml_int(node)
                elif tag == _FLOAT:
                    value = self.construct_yaml_float(node)
                elif tag == _BOOL:
                    value = node.value[0] in "tT"
                elif tag == _NULL:
                    value = None
                else:
                    raise _NotPlain
            elif isinstance(node, SequenceNode) and tag == _SEQ:
                value = [build(child) for child in node.value]
            elif isinstance(node, MappingNode) and tag == _MAP:
                value = {}
                for key_node, value_node in node.value:
                    if not isinstance(key_node, ScalarNode) or key_node.tag != _STR:
                        raise _NotPlain
                    key = key_node.value
                    if key in value:
                        raise _NotPlain  # a duplicate key: reported by construct_mapping
                    value[key] = build(value_node)
            else:
                raise _NotPlain
            built[id(node)] = value
            return value

        return build(root)


def _bad_number(node: Node, text: str, value: int | float | None = None) -> NoReturn:
    m = node.start_mark
    raise YamlError(number_error(text, value) or f"{text}: not a number", m.line + 1, m.column + 1)


def _refuse(loader: StrictLoader, node: Node) -> Any:
    m = node.start_mark
    short = str(node.tag).replace("tag:yaml.org,2002:", "!!")
    raise YamlError(f"the tag {short} is not allowed (plain YAML data only)", m.line + 1, m.column + 1)


class _NotPlain(Exception):
    """The document needs PyYAML's full constructor (merge keys, tags, odd keys...).

    Control flow, not an error (so no :class:`runner.errors.RolloutError`): raised and caught
    inside this module to take the general path; it never leaves it."""


StrictLoader.add_constructor(_INT, StrictLoader.construct_yaml_int)
StrictLoader.add_constructor(_FLOAT, StrictLoader.construct_yaml_float)
# JSON-compatible data only: no bytes, sets, ordered pairs or datetimes
for _tag in ("binary", "set", "omap", "pairs", "timestamp"):
    StrictLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse)


class NamedKeysLoader(StrictLoader):
    """StrictLoader for documents whose keys are all names (flags, plans)."""

    string_keys_only = True


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _check_expansion(root: Node) -> None:
    """Reject documents whose aliases expand past the node budget (billion laughs).

    Sizes are memoised per node object, so the check is linear in distinct nodes even
    when aliases make the expanded tree exponential.
    """
    sizes: dict[int, int] = {}
    # started, not finished: everything above a node's "done" entry on the stack is inside
    # it, so meeting it again there means it contains itself (&a [*a])
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        if not done and id(node) in open_nodes:
            m = node.start_mark
            raise YamlError("an alias refers to a node that contains it (recursive alias)",
                            m.line + 1, m.column + 1)
        if isinstance(node, ScalarNode):
            sizes[id(node)] = 1
            continue
        children: list[Node]
        if isinstance(node, SequenceNode):
            children = list(node.value)
        else:
            children = [n for pair in node.value for n in pair]
        if done:
            total = 1 + sum(sizes.get(id(c), 0) for c in children)
            if total > MAX_EXPANDED_NODES:
                m = node.start_mark
                raise YamlError(
                    f"aliases expand to more than {MAX_EXPANDED_NODES} nodes (alias bomb?)",
                    m.line + 1,
                    m.column + 1,
                )
            sizes[id(node)] = total
            open_nodes.discard(id(node))
        else:
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)


def decode(raw: bytes) -> str:
    if len(raw) > MAX_FILE_BYTES:
        raise YamlError(f"file is {len(raw)} bytes, over the limit of {MAX_FILE_BYTES}")
    if b"\x00" in raw:
        raise YamlError("binary file (NUL byte), expected YAML text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        column = e.start - raw.rfind(b"\n", 0, e.start)
        raise YamlError(f"not UTF-8 text (byte {e.start}): save the file as UTF-8", line,
                        column) from None


def _deepest_flow_nesting(text: str) -> tuple[int, int]:
    """1-based (line, column) where ``[``/``{`` nesting is deepest: where a file too deeply
    nested for the parser's recursion is reported (PyYAML >= 6.0.4 stops there itself)."""
    depth = best = 0
    at = (1, 1)
    line, start = 1, 0
    for i, ch in enumerate(text):
        if ch in "[{":
            depth += 1
            if depth > best:
                best, at = depth, (line, i - start + 1)
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "\n":
            line, start = line + 1, i + 1
    return at


def load_text(text: str, *, string_keys: bool = False) -> Any:
    """Parse one YAML document. Raises :class:`YamlError` with a position.

    ``string_keys``: every mapping key must be a string (flags, plans, any named-field format).
    """
    loader = (NamedKeysLoader if string_keys else StrictLoader)(text)
    try:
        return loader.get_single_data()
    except YamlError:
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        msg = " ".join(str(p) for p in (e.context, e.problem) if p)
        if "expected a single document" in msg:
            msg = "more than one YAML document in the file (one per file)"
        elif "maximum nesting depth" in msg:
            # PyYAML >= 6.0.4 (its C parser) stops deep nesting itself, before our recursion
            # limit does: the same problem, said the same way, now with a position
            msg = "nested too deeply"
        if mark is None:
            raise YamlError(msg) from None
        line_text = (text.splitlines()[mark.line:mark.line + 1] or [""])[0]
        if "\t" in line_text[:mark.column + 1] and ("token" in msg or "indent" in msg):
            msg = "a tab: indent YAML with spaces"
        elif "cannot start any token" in msg and line_text[mark.column:mark.column + 1] in ("@", "`"):
            msg = f"{line_text[mark.column]!r} cannot start an unquoted value: put the value in quotes"
        raise YamlError(msg, mark.line + 1, mark.column + 1) from None
    except yaml.YAMLError as e:
        raise YamlError(str(e).splitlines()[0] if str(e) else "invalid YAML") from None
    except RecursionError:
        raise YamlError("nested too deeply", *_deepest_flow_nesting(text)) from None
    except ValueError as e:
        if "digits" in str(e):  # Python's int conversion limit
            raise YamlError("a number with too many digits") from None
        raise YamlError(f"invalid YAML: {e}") from None
    except TypeError as e:
        raise YamlError(f"invalid YAML: {e}") from None
    finally:
        loader.dispose()


def locate(text: str, path: tuple[Any, ...]) -> tuple[int, int]:
    """1-based (line, column) of the value at ``path`` (keys and list indices) in ``text``.

    Called only when there is an error to report, so valid files never pay for the node
    tree. Walks as deep as the path exists; an absent key points at its parent mapping.
    """
    return Locator(text).locate(path)


class Locator:
    """Positions in one text, composing its node tree once for all the errors in a file."""

    def __init__(self, text: str) -> None:
        try:
            self.root: Node | None = yaml.compose(text, Loader=StrictLoader)
        except (yaml.YAMLError, RecursionError, ValueError):
            self.root = None

    def locate(self, path: tuple[Any, ...]) -> tuple[int, int]:
        node = self.root
        if node is None:
            return 1, 1
        mark = node.start_mark
        for part in path:
            nxt: Node | None = None
            if isinstance(node, MappingNode):
                for k, v in node.value:
                    if isinstance(k, ScalarNode) and k.value == str(part):
                        nxt = v
                        mark = k.start_mark  # the line that names the field
                        break
            elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
                nxt = node.value[part]
                mark = nxt.start_mark
            if nxt is None:
                break
            node = nxt
        return mark.line + 1, mark.column + 1
