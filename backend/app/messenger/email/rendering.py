"""Jinja2 templates for emails: every email has a text part and an HTML part.

HTML templates (`*.html`) autoescape everything they interpolate; text templates do not
escape (plain text has nothing to escape), and neither part may carry raw HTML from input.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("backend.app.messenger.email", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, context: dict[str, Any]) -> tuple[str, str]:
    """(text, html) of `<template>.txt` and `<template>.html`."""
    env = environment()
    return (
        env.get_template(f"{template}.txt").render(context),
        env.get_template(f"{template}.html").render(context),
    )
