"""Node types a workflow uses that this installation lacks: counted, reported, and refused for a run."""

from __future__ import annotations

from collections import Counter

from latentloom.workflow.errors import MissingNodeTypes, missing_node_types_message
from latentloom.workflow.model import NodeMode, Workflow
from latentloom.workflow.node_types import NodeTypeSource, node_types
from latentloom.workflow.widgets import name_values, widget_layout

__all__ = [
    "missing_node_types",
    "missing_node_types_message",
    "name_placeholder_widgets",
    "require_node_types",
]


def missing_node_types(
    workflow: Workflow,
    registry: NodeTypeSource,
    *,
    running_only: bool = False,
) -> dict[str, int]:
    """Missing type -> number of nodes, sorted by type name. ``running_only`` skips muted and
    bypassed nodes, which a run never executes."""
    types = node_types(registry)
    counts = Counter(
        node.type
        for node in workflow.nodes
        if types.is_missing(node.type) and not (running_only and node.mode is not NodeMode.NORMAL)
    )
    return dict(sorted(counts.items()))


def require_node_types(
    workflow: Workflow, registry: NodeTypeSource
) -> None:
    """Raise MissingNodeTypes (its message lists them) when a node that would run has no type here."""
    counts = missing_node_types(workflow, registry, running_only=True)
    if counts:
        raise MissingNodeTypes(counts)


def name_placeholder_widgets(
    workflow: Workflow, registry: NodeTypeSource
) -> list[str]:
    """Give names to the positional values of placeholders whose type is now installed, in place.

    A node imported while its type was missing keeps its ComfyUI type name and values unnamed; once
    the type is here, it takes our type name and its schema names the values. Returns the problems
    met (values that do not fit the schema).
    """
    types = node_types(registry)
    problems: list[str] = []
    for node in workflow.nodes:
        layout = widget_layout(node.type, types)
        if layout is None or node.widgets or not node.unnamed_widgets:
            continue
        named = name_values(node.unnamed_widgets, layout, label=f"node {node.id} ({node.type})")
        node.type = types.canonical(node.type)
        node.widgets, node.controls, node.unnamed_widgets = named.widgets, named.controls, named.unnamed
        problems.extend(named.problems)
    return problems
