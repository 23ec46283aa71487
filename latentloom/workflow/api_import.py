"""API prompts (ComfyUI's and ours) -> Workflow, so a prompt opens in the editor.

A prompt has no positions: nodes are laid out in columns by their distance from the sources. Literal
inputs become widget values by name; ``[node_id, slot]`` inputs become links, typed by the schema of
the node they come from when it is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import latentloom
from latentloom.api import types as T
from latentloom.workflow import reader as R
from latentloom.workflow.errors import WorkflowFormatError
from latentloom.workflow.model import Link, NodeId, Socket, Workflow, WorkflowNode
from latentloom.workflow.node_types import NodeTypes, NodeTypeSource, node_types
from latentloom.workflow.order import execution_order
from latentloom.workflow.prompt import id_sort_key
from latentloom.workflow.sockets import schema_sockets

COLUMN_WIDTH = 360
ROW_HEIGHT = 220


def is_api_prompt(data: Any) -> bool:
    """A non-empty object whose values are all nodes with a class_type."""
    if not isinstance(data, Mapping) or not data:
        return False
    return all(isinstance(n, Mapping) and isinstance(n.get("class_type"), str) for n in data.values())


def is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str | int)
        and not isinstance(value[0], bool)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
        and value[1] >= 0
    )


def _node_id(key: str) -> NodeId:
    # "3" becomes 3 as in the editor; "03" or "5:2" stay text so that no two ids merge.
    return int(key) if key.isdigit() and str(int(key)) == key else key


def _literal(value: Any) -> Any:
    if isinstance(value, Mapping) and set(value) == {"__value__"}:
        return value["__value__"]
    return value


def api_prompt_to_workflow(
    prompt: Mapping[str, Any], registry: NodeTypeSource
) -> Workflow:
    """A workflow holding the prompt's nodes and links, laid out left to right."""
    if not is_api_prompt(prompt):
        raise WorkflowFormatError("an API prompt is an object of node id -> {class_type, inputs}")
    types = node_types(registry)
    keys = sorted(prompt, key=lambda k: id_sort_key(_node_id(str(k))))
    ids = {str(key): _node_id(str(key)) for key in keys}
    nodes = [_node(ids[str(key)], R.mapping(prompt[key], where=f"node {key!r}"), types) for key in keys]
    links = _links(prompt, keys, ids=ids, nodes={n.id: n for n in nodes}, types=types)
    workflow = Workflow(nodes=nodes, links=links, app_version=latentloom.__version__)
    for node in workflow.nodes:
        into = [x for x in links if x.to_node == node.id]
        _add_sockets(node, into, [x for x in links if x.from_node == node.id], types)
    _lay_out(workflow)
    for node_id, reason in _dangling(prompt, ids):
        workflow.problems.append(f"node {node_id}: {reason}")
    return workflow


def _node(node_id: NodeId, entry: Mapping[str, Any], types: NodeTypes) -> WorkflowNode:
    meta = entry.get("_meta")
    title = meta.get("title") if isinstance(meta, Mapping) and isinstance(meta.get("title"), str) else None
    inputs = R.mapping(entry.get("inputs", {}), where=f"node {node_id!r}.inputs")
    return WorkflowNode(
        id=node_id,
        type=types.canonical(entry["class_type"]),
        title=title,
        widgets={name: _literal(value) for name, value in inputs.items() if not is_link(value)},
    )


def _links(
    prompt: Mapping[str, Any],
    keys: list[Any],
    *,
    ids: Mapping[str, NodeId],
    nodes: Mapping[NodeId, WorkflowNode],
    types: NodeTypes,
) -> list[Link]:
    links: list[Link] = []
    for key in keys:
        for name, value in prompt[key].get("inputs", {}).items():
            if not is_link(value) or str(value[0]) not in ids:
                continue
            source = nodes[ids[str(value[0])]]
            link_type = _output_type(source, value[1], types)
            links.append(Link(len(links) + 1, source.id, value[1], ids[str(key)], name, type=link_type))
    return links


def _output_type(node: WorkflowNode, slot: int, types: NodeTypes) -> str:
    schema = types.schema(node.type)
    return schema.outputs[slot].type if schema is not None and 0 <= slot < len(schema.outputs) else T.ANY


def _dangling(prompt: Mapping[str, Any], ids: Mapping[str, NodeId]) -> list[tuple[Any, str]]:
    return [
        (key, f"input '{name}' is linked from node {value[0]!r}, which is not in the prompt; left out")
        for key, entry in prompt.items()
        for name, value in entry.get("inputs", {}).items()
        if is_link(value) and str(value[0]) not in ids
    ]


def _add_sockets(node: WorkflowNode, into: list[Link], out_of: list[Link], types: NodeTypes) -> None:
    schema = types.schema(node.type)
    if schema is not None:
        node.inputs, node.outputs = schema_sockets(schema, linked=[x.to_input for x in into])
        return
    # A type we do not have: draw the sockets its links show.
    node.inputs = [Socket(x.to_input, x.type) for x in into]
    slots = max((x.from_slot for x in out_of), default=-1) + 1
    slot_types = {x.from_slot: x.type for x in reversed(out_of)}  # the first link's type wins
    node.outputs = [Socket(f"output {slot}", slot_types.get(slot, T.ANY)) for slot in range(slots)]


def _lay_out(workflow: Workflow) -> None:
    """Column = longest path from a source; rows in id order within a column."""
    column: dict[NodeId, int] = {}
    for node_id in execution_order(workflow):
        feeding = [column.get(x.from_node, 0) + 1 for x in workflow.links_into(node_id)]
        column[node_id] = max(feeding, default=0)
    rows: dict[int, int] = {}
    for node in workflow.nodes:
        col = column[node.id]
        node.pos = (col * COLUMN_WIDTH, rows.get(col, 0) * ROW_HEIGHT)
        rows[col] = rows.get(col, 0) + 1
