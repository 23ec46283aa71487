"""The first-party node pack. It registers its node types through the same hook as any plugin.

The composition root (server.composition) registers this module with the plugin manager.
"""

from __future__ import annotations

from latentloom.api import NodeType, Services, hookimpl
from latentloom.api.registry import NodeRegistry

SOURCE = "nodes"


def node_types(services: Services) -> tuple[NodeType, ...]:
    """Every node type defined in nodes/, made with the services it needs. The SD nodes join here."""
    return ()


@hookimpl
def register_nodes(registry: NodeRegistry, services: Services) -> None:
    for node_type in node_types(services):
        registry.register(node_type, source=SOURCE)
