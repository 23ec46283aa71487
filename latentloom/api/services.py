"""A typed bag of shared objects (model store, folders, device manager) made in the composition root.

Plugins receive it in their registration hook and take what their node types need.
"""

from __future__ import annotations

from typing import Any, TypeVar

S = TypeVar("S")


class Services:
    def __init__(self, *objects: Any) -> None:
        self._objects: dict[type, Any] = {}
        for obj in objects:
            self.add(obj)

    def add(self, obj: Any) -> None:
        self._objects[type(obj)] = obj

    def get(self, kind: type[S]) -> S:
        """The object of this type (or a subclass); KeyError names the missing service."""
        for obj_type, obj in self._objects.items():
            if issubclass(obj_type, kind):
                return obj
        raise KeyError(f"no {kind.__name__} service was provided")

    def find(self, kind: type[S]) -> S | None:
        try:
            return self.get(kind)
        except KeyError:
            return None
