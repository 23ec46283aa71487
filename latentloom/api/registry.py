"""The set of node types the executor and the server know, keyed by class_type (and aliases)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from latentloom.api.errors import NodeTypeConflict
from latentloom.api.node import NodeType


@dataclass(frozen=True)
class Registration:
    node: NodeType
    source: str  # the pack that registered it: "nodes" for built-ins, else the plugin's name


class NodeRegistry:
    def __init__(self) -> None:
        self._by_name: dict[str, Registration] = {}
        self._aliases: dict[str, str] = {}

    def register(self, node: NodeType, *, source: str = "nodes") -> None:
        """Add a node type. A name (or alias) that is already taken raises NodeTypeConflict."""
        name = node.schema.type
        for taken in (name, *node.schema.aliases):
            owner = self._owner(taken)
            if owner is not None:
                raise NodeTypeConflict(
                    f"node type {taken!r} from {source!r} is already registered by {owner.source!r}"
                )
        self._by_name[name] = Registration(node, source)
        for alias in node.schema.aliases:
            self._aliases[alias] = name

    def _owner(self, name: str) -> Registration | None:
        return self._by_name.get(self._aliases.get(name, name))

    def get(self, name: str) -> NodeType | None:
        """The node type for a class_type or one of its aliases."""
        registration = self._owner(name)
        return registration.node if registration else None

    def source_of(self, name: str) -> str | None:
        registration = self._owner(name)
        return registration.source if registration else None

    def canonical_name(self, name: str) -> str:
        return self._aliases.get(name, name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._owner(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_name))

    def __len__(self) -> int:
        return len(self._by_name)

    def object_info(self, name: str | None = None) -> dict[str, Any]:
        """ComfyUI's /object_info: every node type (aliases included, so ComfyUI clients find theirs)."""
        names = [name] if name is not None else [*self._by_name, *self._aliases]
        info: dict[str, Any] = {}
        for n in names:
            registration = self._owner(n)
            if registration is None:
                continue
            entry = registration.node.schema.to_object_info(python_module=registration.source)
            if n != registration.node.schema.type:
                entry = entry | {"name": n, "alias_of": registration.node.schema.type}
            info[n] = entry
        return info
