"""Rendering of stage commands and paths with jinja2 (StrictUndefined: a typo is an error, never "")."""

from __future__ import annotations

from functools import lru_cache

import jinja2
import jinja2.meta

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateProblem(Exception):
    """A template that does not render; the message says why (undefined name, syntax)."""


@lru_cache(maxsize=None)
def compile_template(source: str) -> jinja2.Template:
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as err:
        raise TemplateProblem(f"template syntax error: {err.message}") from None


def render(source: str, context: dict) -> str:
    """Render source with context; raise TemplateProblem naming what is undefined."""
    if "{" not in source:
        return source
    try:
        return compile_template(source).render(context)
    except jinja2.UndefinedError as err:
        available = ", ".join(sorted(context)) or "none"
        raise TemplateProblem(f"{err.message} (available: {available})") from None


@lru_cache(maxsize=None)
def names_in(source: str) -> frozenset[str]:
    """The template names source uses ({{ features }} -> 'features'); empty for a template that does not parse."""
    if "{" not in source:
        return frozenset()
    try:
        return frozenset(jinja2.meta.find_undeclared_variables(_ENV.parse(source)))
    except jinja2.TemplateSyntaxError:
        return frozenset()  # reported, with its line, when the template is rendered
