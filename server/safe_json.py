"""Strict JSON for request bodies: standard JSON only, and nesting a validator can walk.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON and would reach
nodes as floats no widget can hold; they are refused while parsing. Nesting deeper than ``MAX_DEPTH``
is refused too (real workflows nest about ten levels): a parser or validator that recurses must never
meet it, and the parser's own RecursionError on absurd depths is reported the same way.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 100


class JsonBodyError(ValueError):
    """A request body that is not strict JSON, or nests too deeply."""


def _refuse_constant(name: str) -> Any:
    raise JsonBodyError(f"{name} is not a JSON number; send a finite number or null")


def loads_strict(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``raw`` parsed as JSON; JsonBodyError for non-standard constants or nesting past ``max_depth``.

    json.JSONDecodeError and UnicodeDecodeError pass through for malformed text."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonBodyError(f"the JSON nests deeper than {max_depth} levels") from None
    check_depth(value, max_depth=max_depth)
    return value


def check_depth(value: Any, *, max_depth: int) -> None:
    """JsonBodyError when lists and objects nest deeper than ``max_depth``; an explicit stack, no recursion."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        container, depth = stack.pop()
        if depth > max_depth:
            raise JsonBodyError(f"the JSON nests deeper than {max_depth} levels")
        children = container.values() if isinstance(container, dict) else container
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
