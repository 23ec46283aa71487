"""Small checked readers for JSON values: each names where in the file a wrong value sits."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, TypeVar

from latentloom.workflow.errors import WorkflowFormatError

E = TypeVar("E", bound=Enum)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def mapping(value: Any, *, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WorkflowFormatError(f"{where}: expected an object, got {_kind(value)}")
    return value


def sequence(value: Any, *, where: str, length: int | None = None) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise WorkflowFormatError(f"{where}: expected a list, got {_kind(value)}")
    if length is not None and len(value) != length:
        raise WorkflowFormatError(f"{where}: expected {length} items, got {len(value)}")
    return value


def string(value: Any, *, where: str) -> str:
    if not isinstance(value, str):
        raise WorkflowFormatError(f"{where}: expected a string, got {_kind(value)}")
    return value


def optional_string(value: Any, *, where: str) -> str | None:
    return None if value is None else string(value, where=where)


def integer(value: Any, *, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkflowFormatError(f"{where}: expected an integer, got {_kind(value)}")
    return value


def integers(value: Any, *, where: str) -> list[int]:
    return [integer(item, where=where) for item in sequence(value, where=where)]


def number(value: Any, *, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WorkflowFormatError(f"{where}: expected a finite number, got {value!r:.40}")
    return value


def numbers(value: Any, *, where: str, length: int) -> tuple[Any, ...]:
    return tuple(number(item, where=where) for item in sequence(value, where=where, length=length))


def pair(value: Any, *, where: str) -> tuple[float, float]:
    first, second = numbers(value, where=where, length=2)
    return first, second


def node_id(value: Any, *, where: str) -> int | str:
    """Node ids are integers, or strings for ids that other tools build (e.g. "5:2")."""
    if isinstance(value, str) and value:
        return value
    return integer(value, where=where)


def choice(value: Any, kind: type[E], *, where: str) -> E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in kind)
        raise WorkflowFormatError(f"{where}: expected one of {allowed}, got {value!r:.40}") from None


def check_unique_ids(items: Iterable[Any], *, what: str) -> None:
    seen: set[Any] = set()
    for item in items:
        if item.id in seen:
            raise WorkflowFormatError(f"two {what}s have the id {item.id!r}")
        seen.add(item.id)
