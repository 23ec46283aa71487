"""Estimating how many bytes a cached value holds, without importing torch or numpy."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from typing import Any

_CONTAINERS = (list, tuple, set, frozenset)


def estimate_size(value: Any) -> int:
    """Bytes held by ``value``, counting each object once.

    - an object whose type defines ``__sizeof_cache__()`` reports its own size (model handles do);
    - tensors (anything with ``element_size()`` and ``nelement()``): ``element_size() * nelement()``;
    - arrays (an integer ``nbytes``): ``nbytes``;
    - lists, tuples, sets, mappings and dataclass instances: their own size plus their contents;
    - anything else: ``sys.getsizeof``.
    Iterative, so deeply nested values cannot exhaust the stack; shared or cyclic parts count once.
    """
    total = 0
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        leaf = _leaf_size(item)
        if leaf is not None:
            total += leaf
            continue
        total += sys.getsizeof(item)
        stack.extend(_children(item))
    return total


def _leaf_size(item: Any) -> int | None:
    """The size of an item whose contents are not walked; None for containers."""
    own_size = getattr(type(item), "__sizeof_cache__", None)
    if callable(own_size):
        return int(own_size(item))
    element_size = getattr(item, "element_size", None)
    nelement = getattr(item, "nelement", None)
    if callable(element_size) and callable(nelement):
        return int(element_size()) * int(nelement())
    nbytes = getattr(item, "nbytes", None)
    if isinstance(nbytes, int) and not isinstance(nbytes, bool):
        return nbytes
    if isinstance(item, (*_CONTAINERS, Mapping)) or _is_dataclass_instance(item):
        return None
    return sys.getsizeof(item)


def _children(item: Any) -> list[Any]:
    if isinstance(item, Mapping):
        return [*item.keys(), *item.values()]
    if isinstance(item, _CONTAINERS):
        return list(item)
    return [getattr(item, f.name, None) for f in dataclasses.fields(item)]


def _is_dataclass_instance(item: Any) -> bool:
    return dataclasses.is_dataclass(item) and not isinstance(item, type)
