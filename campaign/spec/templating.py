"""Rendering of stage commands and paths with jinja2 (StrictUndefined: a typo is an error, never "").

Every template is rendered in jinja2's immutable sandbox: a campaign file cannot reach Python's
internals (`{{ cycler.__init__.__globals__ }}`) nor change the values it is given, so `plan` runs
nothing. Each distinct source is parsed and compiled once; the names it uses come from that one parse.
"""

from __future__ import annotations

from functools import cache, cached_property

import jinja2
import jinja2.meta
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

_ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateProblem(Exception):
    """A template that does not render; the message says why (undefined name, syntax, unsafe access)."""


class Compiled:
    """One template source, parsed once: its compiled form and the names it uses, each made when first
    asked for (planning 500 stages compiles every command, but asks the names of a few)."""

    def __init__(self, tree: jinja2.nodes.Template | None, syntax_error: str | None = None):
        self.tree, self.syntax_error = tree, syntax_error

    @cached_property
    def template(self) -> jinja2.Template | None:
        return None if self.tree is None else _ENV.from_string(self.tree)

    @cached_property
    def names(self) -> frozenset[str]:
        return frozenset() if self.tree is None else frozenset(jinja2.meta.find_undeclared_variables(self.tree))


@cache
def compiled(source: str) -> Compiled:
    """Parse source once; a syntax error is kept and raised where the template is used."""
    try:
        return Compiled(_ENV.parse(source))
    except jinja2.TemplateSyntaxError as err:
        return Compiled(None, f"template syntax error: {err.message}")


def compile_template(source: str) -> jinja2.Template:
    result = compiled(source)
    if result.template is None:
        raise TemplateProblem(result.syntax_error or "template syntax error")
    return result.template


def render(source: str, context: dict) -> str:
    """Render source with context; raise TemplateProblem naming what is undefined or unsafe."""
    if "{" not in source:
        return source
    try:
        return compile_template(source).render(context)
    except jinja2.UndefinedError as err:
        available = ", ".join(sorted(context)) or "none"
        raise TemplateProblem(f"{err.message} (available: {available})") from None
    except jinja2.exceptions.SecurityError as err:
        raise TemplateProblem(
            f"unsafe template: {err}. Templates may only use the names campaign gives "
            "them (and their plain values), not Python internals"
        ) from None


def names_in(source: str) -> frozenset[str]:
    """The template names source uses ({{ features }} -> 'features'); empty for a template that does not parse."""
    if "{" not in source:
        return frozenset()
    return compiled(source).names
