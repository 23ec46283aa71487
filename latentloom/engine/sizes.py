"""Estimating how many bytes a cached value holds, without importing torch or numpy."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from typing import Any

_CONTAINERS = (list, tuple, set, frozenset)


def estimate_size(value: Any) -> int:
    """Bytes held by ``value``, counting each object once (the sum of ``measure_parts``)."""
    return sum(measure_parts(value).values())


def measure_parts(value: Any) -> dict[int, int]:
    """Bytes held by ``value``, per part: ``{id of the object that holds them: bytes}``.

    - an object whose type defines ``__cache_parts__()`` names the objects whose memory it keeps alive,
      as ``(owner, bytes)`` pairs: model handles do, so clones sharing one UNet name the same part; its
      ``__cache_contents__()``, if defined, are values it also holds, measured like any other (a model's
      patches: a LoRA's tensors, a merge's other model);
    - an object whose type defines ``__sizeof_cache__()`` is one part of that size;
    - tensors (anything with ``element_size()`` and ``nelement()``): ``element_size() * nelement()``;
    - arrays (an integer ``nbytes``): ``nbytes``;
    - lists, tuples, sets, mappings and dataclass instances: their own size plus their contents;
    - anything else: ``sys.getsizeof``.
    Ids stay meaningful while ``value`` is alive (it keeps every part alive), so whoever holds the value
    can add up parts of several values and count shared ones once. Iterative, so deeply nested values
    cannot exhaust the stack; shared or cyclic parts count once.
    """
    parts: dict[int, int] = {}
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:  # None is a shared singleton: no value's memory
            continue
        seen.add(id(item))
        owned = _owned_parts(item)
        if owned is not None:
            parts.update(owned)
            seen.update(owned)  # a contained value may name the same owner: keep the declared size
            contents = getattr(type(item), "__cache_contents__", None)
            stack.extend(contents(item) if callable(contents) else ())
            continue
        leaf = _leaf_size(item)
        if leaf is not None:
            parts[id(item)] = leaf
            continue
        parts[id(item)] = sys.getsizeof(item)
        stack.extend(_children(item))
    return parts


def _owned_parts(item: Any) -> dict[int, int] | None:
    declared = getattr(type(item), "__cache_parts__", None)
    if not callable(declared):
        return None
    return {id(owner): int(size) for owner, size in declared(item)}


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
