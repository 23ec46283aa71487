"""The validated, immutable graph that the executor runs (built by ``validate_prompt``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class Link:
    """An input fed by another node's output: ``[source, output_index]`` in the API prompt."""

    source: str
    output_index: int


@dataclass(frozen=True, slots=True)
class GraphNode:
    id: str
    class_type: str  # canonical name (aliases resolved)
    literals: Mapping[str, Any]  # input name -> value as Input.coerce returned it
    links: Mapping[str, Link]  # input name -> the output feeding it
    position: int  # index of the node in the submitted prompt, for deterministic ordering


@dataclass(frozen=True)
class Graph:
    """Only the nodes the requested outputs need, in the order they run (a topological order).

    ``prompt`` is the prompt as submitted: nodes that declare a PROMPT hidden input receive it.
    """

    nodes: Mapping[str, GraphNode]
    outputs: tuple[str, ...]
    prompt: Mapping[str, Any]

    @classmethod
    def build(cls, nodes: list[GraphNode], *, outputs: tuple[str, ...], prompt: Mapping[str, Any]) -> Graph:
        """Wrap already-ordered nodes so that neither the mapping nor any node's inputs can change."""
        frozen = {
            node.id: GraphNode(
                id=node.id,
                class_type=node.class_type,
                literals=MappingProxyType(dict(node.literals)),
                links=MappingProxyType(dict(sorted(node.links.items()))),
                position=node.position,
            )
            for node in nodes
        }
        return cls(nodes=MappingProxyType(frozen), outputs=outputs, prompt=prompt)

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes
