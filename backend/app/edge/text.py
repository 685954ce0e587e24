"""Text that PostgreSQL, JSON encoders and log lines can all hold.

NUL (U+0000) cannot be stored in PostgreSQL text, and an unpaired surrogate cannot be encoded
as UTF-8 (every later write, response or log line with it would fail with a 5xx). One rule
for every entry point: such text is refused as bad input before anything is written.
"""

from __future__ import annotations

import json
from typing import Any

# Deeper JSON than this is refused. No payload of the contract nests more than four levels;
# the bound also keeps recursive walks (ours, Pydantic's, the json module's) far from
# Python's recursion limit.
MAX_JSON_DEPTH = 32


class UnsafeInput(ValueError):
    """The input holds text we refuse (NUL, unpaired surrogate) or is nested too deeply."""


def text_problem(value: str) -> str | None:
    """Why this string cannot be accepted, or None when it is fine."""
    if "\x00" in value:
        return "must not contain NUL (U+0000) characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain unpaired surrogates"
    return None


def check_text(value: str) -> str:
    """A Pydantic `AfterValidator`: refuse NUL and unpaired surrogates."""
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def check_json_value(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Walk a decoded JSON document without recursion; raise UnsafeInput on the first problem."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                raise UnsafeInput(f"a string {problem}")
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise UnsafeInput(f"JSON is nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    stack.append((key, depth))
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def loads_checked(raw: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` that refuses unsafe text and deep nesting (as UnsafeInput) instead of
    raising RecursionError. Malformed JSON still raises ValueError."""
    try:
        value = json.loads(raw)
    except RecursionError as exc:
        raise UnsafeInput(f"JSON is nested deeper than {max_depth} levels") from exc
    check_json_value(value, max_depth=max_depth)
    return value
