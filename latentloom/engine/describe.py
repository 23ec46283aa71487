"""Short, JSON-safe descriptions of values and exceptions for error events."""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

_MAX_TEXT = 200
_MAX_ITEMS = 8
_MAX_MESSAGE = 2000


class _ShortRepr(reprlib.Repr):
    """reprlib with tight limits, so hostile (deep or huge) values print short and never recurse far."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 2
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = 4
        self.maxstring = self.maxother = 80


def short_repr(value: Any) -> str:
    try:
        return _ShortRepr().repr(value)
    except Exception as error:  # a broken __repr__ must not hide the problem being reported
        return f"<{type(value).__name__}: repr failed with {type(error).__name__}>"


def error_message(error: BaseException) -> str:
    """The exception's message, cut to a readable length (one may quote a giant input back)."""
    message = str(error) or type(error).__name__
    if len(message) <= _MAX_MESSAGE:
        return message
    return f"{message[:_MAX_MESSAGE]}... ({len(message) - _MAX_MESSAGE} more characters)"


def full_type_name(kind: type) -> str:
    """``module.QualName``, or just the name for builtins (ComfyUI's exception_type)."""
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def summarize_inputs(inputs: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """Input name -> short descriptions of its items: scalars as themselves, the rest as short text."""
    summary: dict[str, list[Any]] = {}
    for name, items in inputs.items():
        shown = [summarize_value(item) for item in list(items)[:_MAX_ITEMS]]
        if len(items) > _MAX_ITEMS:
            shown.append(f"... ({len(items) - _MAX_ITEMS} more)")
        summary[name] = shown
    return summary


def summarize_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "..."
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        try:
            return f"{type(value).__name__}(shape={list(shape)}, dtype={dtype})"
        except TypeError:
            pass  # not a tensor after all; fall back to its repr
    text = short_repr(value)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."
