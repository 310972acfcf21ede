"""Safe, strict YAML: the only way this project reads YAML.

- PyYAML's safe loader, the C one when libyaml is there (an order of magnitude faster).
- YAML 1.2 booleans: only ``true``/``false``. YAML 1.1 would read ``on``/``off``/``yes``/``no``
  as booleans, which turns the variant name ``off`` into ``False``.
- Duplicate keys are errors (PyYAML silently keeps the last one).
- Anchors and aliases are allowed, but a document whose expansion exceeds a node budget is
  rejected before it is constructed (billion laughs), in time linear in its distinct nodes.
- One document per file, a size limit, UTF-8 only, no NUL bytes.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - libyaml is missing on some platforms
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a flag file is a few hundred bytes
MAX_EXPANDED_NODES = 100_000


class YamlError(Exception):
    """A file that is not acceptable YAML. ``line``/``column`` are 1-based."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


_BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


def _yaml12_resolvers(base: dict) -> dict:
    out: dict = {}
    for first, resolvers in base.items():
        kept = [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
        if first in "tTfF":
            kept.insert(0, ("tag:yaml.org,2002:bool", _BOOL_12))
        out[first] = kept
    for first in "tTfF":
        out.setdefault(first, [("tag:yaml.org,2002:bool", _BOOL_12)])
    return out


class StrictLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    yaml_implicit_resolvers = _yaml12_resolvers(_BaseLoader.yaml_implicit_resolvers)

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, Node] = {}
            for key_node, _ in node.value:
                if isinstance(key_node, ScalarNode):
                    key = self.construct_scalar(key_node)
                    if key in seen:
                        m = key_node.start_mark
                        raise YamlError(
                            f"{key}: duplicate key (first at line {seen[key].start_mark.line + 1})",
                            m.line + 1,
                            m.column + 1,
                        )
                    seen[key] = key_node
        return super().construct_mapping(node, deep=deep)

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return self.construct_document(node)


def _check_expansion(root: Node) -> None:
    """Reject documents whose aliases expand past the node budget (billion laughs).

    Sizes are memoised per node object, so the check is linear in distinct nodes even
    when aliases make the expanded tree exponential.
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
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
        else:
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
        raise YamlError(f"not UTF-8 text (byte {e.start})", line) from None


def load_text(text: str) -> Any:
    """Parse one YAML document. Raises :class:`YamlError` with a position."""
    loader = StrictLoader(text)
    try:
        return loader.get_single_data()
    except YamlError:
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        msg = " ".join(str(p) for p in (e.context, e.problem) if p)
        if "expected a single document" in msg:
            msg = "more than one YAML document in the file (one per file)"
        if mark is None:
            raise YamlError(msg) from None
        raise YamlError(msg, mark.line + 1, mark.column + 1) from None
    except yaml.YAMLError as e:
        raise YamlError(str(e).splitlines()[0] if str(e) else "invalid YAML") from None
    except (RecursionError, ValueError, TypeError) as e:
        raise YamlError(f"invalid YAML: {e}") from None
    finally:
        loader.dispose()


def locate(text: str, path: tuple[Any, ...]) -> tuple[int, int]:
    """1-based (line, column) of the value at ``path`` (keys and list indices) in ``text``.

    Called only when there is an error to report, so valid files never pay for the node
    tree. Walks as deep as the path exists; an absent key points at its parent mapping.
    """
    try:
        node = yaml.compose(text, Loader=StrictLoader)
    except yaml.YAMLError:
        return 1, 1
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
