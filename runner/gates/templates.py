"""Sandboxed, bounded Jinja2 rendering of query and path templates.

Templates come from plans and ``pyproject.toml`` — reviewed files, but still data: they are
rendered only by :class:`jinja2.sandbox.SandboxedEnvironment` with ``StrictUndefined``, so an
attribute escape such as ``{{ ''.__class__ }}`` or an undefined variable is an error, never an
empty string in a query.

A metric template is a query or a path with a few values in it, so the language is cut down
to what finishes quickly by construction (docs/metrics.md, "Templates"):

- allowed: text, ``{{ expression }}``, ``{% if %}``/``{% elif %}``/``{% else %}``,
  ``{% set name = expression %}``; literals, the variables, operators, tests (``is defined``),
  indexing and slicing, and the filters in :data:`FILTERS`;
- refused before rendering (an error naming the template): loops (``{% for %}``), macros,
  call blocks, includes and imports, and every function or method call (``range()``,
  ``'x'.ljust()``...): without them a template runs each of its operations at most once;
- every intermediate value and the output are at most :data:`MAX_OUTPUT` characters (an
  integer at most :data:`MAX_INT_BITS` bits), checked before an operation that could
  exceed it (``'x' * n``, ``2 ** n``, ``replace``) and after every other one;
- and, in case, a deadline of :data:`DEADLINE_SECONDS` checked at each operation.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer

from runner.errors import ContentError

#: Largest rendered template, and largest string or list any step of the rendering may build.
MAX_OUTPUT = 64 * 1024
#: Largest integer a template may compute.
MAX_INT_BITS = 4096
#: Wall-clock bound of one rendering (never reached by an allowed template in practice).
DEADLINE_SECONDS = 1.0

#: The filters a template may use: none can build more than a few times its input.
FILTERS = frozenset({
    "abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int",
    "last", "length", "lower", "max", "min", "replace", "round", "string", "title", "trim",
    "truncate", "upper", "urlencode",
})

_ALLOWED = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Const, nodes.Name, nodes.If,
    nodes.CondExpr, nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Neg,
    nodes.Pos, nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod,
    nodes.Pow, nodes.Concat, nodes.Filter, nodes.Test, nodes.Getitem, nodes.Slice,
    nodes.Getattr, nodes.List, nodes.Tuple, nodes.Dict, nodes.Pair, nodes.Assign,
    nodes.Keyword,
)
_REFUSED = {
    nodes.For: "a loop ({% for %})", nodes.Macro: "a macro", nodes.CallBlock: "a call block",
    nodes.Call: "a function or method call", nodes.Include: "an include",
    nodes.Import: "an import", nodes.FromImport: "an import", nodes.Extends: "extends",
    nodes.FilterBlock: "a filter block", nodes.AssignBlock: "a block assignment",
    nodes.With: "a with block", nodes.NSRef: "a namespace assignment",
}
_BOUNDED = "_rollout_bounded"
_FORMAT_WIDTH = re.compile(r"%[-#0 +]*(?:\*|\d{4,})|%[-#0 +]*\d*\.(?:\*|\d{4,})")

_deadline: contextvars.ContextVar[float] = contextvars.ContextVar("template_deadline",
                                                                  default=float("inf"))


class TemplateProblem(ContentError):
    """A template that does not render; the message names the template's purpose."""


class _Limit(Exception):
    """A bound of the rendering was reached (the message says which).

    Private (no :class:`runner.errors.RolloutError`): it unwinds a rendering and is caught in
    this module, where it becomes a :class:`TemplateProblem`; it never leaves it."""


def _check(value: Any) -> Any:
    if time.monotonic() > _deadline.get():
        raise _Limit(f"took longer than {DEADLINE_SECONDS:g}s to render")
    if isinstance(value, str | list | tuple | dict) and len(value) > MAX_OUTPUT:
        raise _Limit(f"builds a value longer than {MAX_OUTPUT} characters")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _Limit(f"computes an integer larger than {MAX_INT_BITS} bits")
    return value


def _sized(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


class _Environment(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%", "//", "/", "-"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check(None)
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if _sized(seq) and isinstance(n, int) and len(seq) * max(n, 0) > MAX_OUTPUT:
                    raise _Limit(f"builds a value longer than {MAX_OUTPUT} characters")
            if (isinstance(left, int) and isinstance(right, int)
                    and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1):
                raise _Limit(f"computes an integer larger than {MAX_INT_BITS} bits")
        elif operator == "**":
            if (isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
                    and right * left.bit_length() > MAX_INT_BITS):
                raise _Limit(f"computes an integer larger than {MAX_INT_BITS} bits")
        elif operator == "%" and isinstance(left, str) and _FORMAT_WIDTH.search(left):
            raise _Limit("uses a %-format width or precision of 1000 or more")
        return _check(super().call_binop(context, operator, left, right))


def _bounded(value: Any) -> Any:
    return _check(value)


@jinja2.pass_eval_context
def _replace(eval_ctx: Any, value: Any, old: Any, new: Any, count: Any = None) -> Any:
    s, o, n = str(value), str(old), str(new)
    times = s.count(o) if o else len(s) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    if len(s) + times * max(len(n) - len(o), 0) > MAX_OUTPUT:
        raise _Limit(f"builds a value longer than {MAX_OUTPUT} characters (replace)")
    return _REPLACE(eval_ctx, value, old, new, count)


_ENV = _Environment(undefined=jinja2.StrictUndefined, autoescape=False,
                    keep_trailing_newline=False)
_REPLACE: Callable[..., Any] = _ENV.filters["replace"]
_ENV.filters = {name: f for name, f in _ENV.filters.items() if name in FILTERS}
_ENV.filters["replace"] = _replace
_ENV.filters[_BOUNDED] = _bounded
_ENV.globals = {}


class _Bound(NodeTransformer):
    """Every concatenation and filter result goes through the size and deadline check."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, _BOUNDED, [], [], None, None, lineno=node.lineno)

    def visit_Filter(self, node: nodes.Filter) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, _BOUNDED, [], [], None, None, lineno=node.lineno)


def _refusal(tree: nodes.Template) -> str | None:
    for node in tree.find_all(nodes.Node):
        for kind, words in _REFUSED.items():
            if isinstance(node, kind):
                return (f"uses {words} (line {node.lineno}), which metric templates may not: "
                        "they are text, {{ expressions }}, if and set")
        if isinstance(node, nodes.Filter) and node.name not in FILTERS:
            return (f"uses the filter {node.name!r} (line {node.lineno}), which metric "
                    f"templates may not (allowed: {', '.join(sorted(FILTERS))})")
        if isinstance(node, nodes.Test) and node.name not in _ENV.tests:
            return f"uses the unknown test {node.name!r} (line {node.lineno})"
        if not isinstance(node, _ALLOWED):
            return f"uses {type(node).__name__} (line {node.lineno}), which metric templates may not"
    return None


@lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    tree = _ENV.parse(source)
    refused = _refusal(tree)
    if refused:
        raise _Limit(refused)
    bounded = _Bound().visit(tree)
    return _ENV.from_string(bounded)


def render(source: str, *, what: str, flag: str, window: str, percentage: float,
           extra: Mapping[str, object] | None = None) -> str:
    """Render ``source`` with the variables every template gets: flag, window, percentage,
    and ``extra`` ones (the cohort variables of comparison gates: docs/guarded.md).

    ``percentage`` renders as ``25`` rather than ``25.0`` when whole, as people write it.
    Raises :class:`TemplateProblem` (naming ``what``) for a template that does not render,
    is refused, or reaches a bound.
    """
    pct: float | int = int(percentage) if float(percentage).is_integer() else percentage
    token = _deadline.set(time.monotonic() + DEADLINE_SECONDS)
    try:
        if len(source) > MAX_OUTPUT:
            raise _Limit(f"is longer than {MAX_OUTPUT} characters")
        out = _compile(source).render({**(extra or {}), "flag": flag, "window": window,
                                        "percentage": pct})
        if len(out) > MAX_OUTPUT:
            raise _Limit(f"renders to more than {MAX_OUTPUT} characters")
        return out
    except jinja2.TemplateSyntaxError as e:
        raise TemplateProblem(f"{what}: template syntax error (line {e.lineno}): {e.message}") from e
    except _Limit as e:
        raise TemplateProblem(f"{what}: template {e}") from None
    except jinja2.exceptions.SecurityError as e:
        raise TemplateProblem(f"{what}: template rejected by the sandbox: {e}") from e
    except jinja2.UndefinedError as e:
        raise TemplateProblem(f"{what}: template uses an undefined value: {e.message}") from e
    except RecursionError:
        raise TemplateProblem(f"{what}: template is nested too deeply") from None
    except Exception as e:  # a template can raise anything (division by zero, bad filter args)
        raise TemplateProblem(f"{what}: template failed: {type(e).__name__}: {e}") from e
    finally:
        _deadline.reset(token)
