"""What the workflow library asks of the installed node types: canonical names, schemas, ComfyUI names.

Conversions take a NodeRegistry, or a plain mapping class_type -> NodeSchema (tests, tools), or None
(every non-virtual type counts as missing). ``NodeTypes`` answers the same questions for all three.
"""

from __future__ import annotations

from collections.abc import Mapping

from latentloom.api.registry import NodeRegistry
from latentloom.api.schema import NodeSchema

# Node types that live only in the editor: the prompt never contains them (ComfyUI's virtual nodes).
REROUTE = "Reroute"
PRIMITIVE = "PrimitiveNode"
VIRTUAL_TYPES = frozenset({REROUTE, PRIMITIVE, "Note", "MarkdownNote"})


class NodeTypes:
    def __init__(self, source: NodeRegistry | Mapping[str, NodeSchema] | None) -> None:
        self._registry = source if isinstance(source, NodeRegistry) else None
        self._index: dict[str, NodeSchema] = {}
        if isinstance(source, Mapping):
            for key, schema in source.items():
                self._index[key] = schema
                self._index.setdefault(schema.type, schema)
                for alias in schema.aliases:
                    self._index.setdefault(alias, schema)

    def schema(self, name: str) -> NodeSchema | None:
        """The schema for a class_type or one of its aliases; None for unknown and virtual types."""
        if self._registry is not None:
            node = self._registry.get(name)
            return node.schema if node is not None else None
        return self._index.get(name)

    def canonical(self, name: str) -> str:
        """Our name for a class_type (ComfyUI's CheckpointLoaderSimple -> CheckpointLoader)."""
        schema = self.schema(name)
        return schema.type if schema is not None else name

    def comfy_name(self, name: str) -> str:
        """The class_type ComfyUI knows: by convention a schema lists ComfyUI's name as its first alias."""
        schema = self.schema(name)
        if schema is None:
            return name
        return schema.aliases[0] if schema.aliases else schema.type

    def is_missing(self, name: str) -> bool:
        return name not in VIRTUAL_TYPES and self.schema(name) is None


# What every conversion accepts as its ``registry`` argument.
NodeTypeSource = NodeTypes | NodeRegistry | Mapping[str, NodeSchema] | None


def node_types(source: NodeTypeSource) -> NodeTypes:
    return source if isinstance(source, NodeTypes) else NodeTypes(source)
