"""Sandboxed Jinja2 rendering of query and path templates.

Templates come from plans and ``pyproject.toml`` — reviewed files, but still data: they are
rendered only by :class:`jinja2.sandbox.SandboxedEnvironment` with ``StrictUndefined``, so an
attribute escape such as ``{{ ''.__class__ }}`` or an undefined variable is an error, never an
empty string in a query.
"""

from __future__ import annotations

from functools import lru_cache

import jinja2
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                            keep_trailing_newline=False)


class TemplateProblem(Exception):
    """A template that does not render; the message names the template's purpose."""


@lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


def render(source: str, *, what: str, flag: str, window: str, percentage: float) -> str:
    """Render ``source`` with the variables every template gets: flag, window, percentage.

    ``percentage`` renders as ``25`` rather than ``25.0`` when whole, as people write it.
    """
    pct: float | int = int(percentage) if float(percentage).is_integer() else percentage
    try:
        return _compile(source).render(flag=flag, window=window, percentage=pct)
    except jinja2.TemplateSyntaxError as e:
        raise TemplateProblem(f"{what}: template syntax error (line {e.lineno}): {e.message}") from e
    except jinja2.exceptions.SecurityError as e:
        raise TemplateProblem(f"{what}: template rejected by the sandbox: {e}") from e
    except jinja2.UndefinedError as e:
        raise TemplateProblem(f"{what}: template uses an undefined value: {e.message}") from e
    except Exception as e:  # a template can raise anything (division by zero, bad filter args)
        raise TemplateProblem(f"{what}: template failed: {type(e).__name__}: {e}") from e
