"""Our Workflow -> ComfyUI's UI format, version 0.4 (what ComfyUI writes and every version reads).

The inverse of comfy_import: values by name go back to positions through the node schema, class
names back to ComfyUI's, and what the import kept aside (node extras, graph leftovers) goes back in.
Our own metadata rides in places ComfyUI keeps untouched: ``extra.latentloom`` and a node property
for the type version. A PNG's "workflow" chunk holds this format, so ComfyUI opens our images.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from latentloom.workflow.comfy_import import COMFY_MODES, METADATA_KEY, TYPE_VERSION_PROPERTY
from latentloom.workflow.migrations import FORMAT_VERSION
from latentloom.workflow.model import Group, Link, Reroute, Socket, Workflow, WorkflowNode
from latentloom.workflow.node_types import VIRTUAL_TYPES, NodeTypes, NodeTypeSource, node_types
from latentloom.workflow.order import execution_order
from latentloom.workflow.widgets import positional_values, widget_layout

_MODE_NUMBERS = MappingProxyType({mode: number for number, mode in COMFY_MODES.items()})


def workflow_to_comfy_ui(
    workflow: Workflow, registry: NodeTypeSource
) -> dict[str, Any]:
    """The workflow as a ComfyUI 0.4 UI-format dict."""
    types = node_types(registry)
    order = {node_id: index for index, node_id in enumerate(execution_order(workflow))}
    inputs_by_node = {n.id: _input_slots(n, workflow.links_into(n.id), types) for n in workflow.nodes}
    nodes = [
        _export_node(n, types=types, order=order[n.id], inputs=inputs_by_node[n.id], links=workflow.links)
        for n in workflow.nodes
    ]
    links = [_export_link(link, inputs_by_node) for link in workflow.links]
    comfy_extra = dict(workflow.extra)
    leftovers = comfy_extra.pop("comfyui", {})
    comfy_extra[METADATA_KEY] = {"format_version": FORMAT_VERSION, "app_version": workflow.app_version}
    if workflow.reroutes:
        comfy_extra["reroutes"] = [_export_reroute(r) for r in workflow.reroutes]
        parents = [{"id": x.id, "parentId": x.reroute} for x in workflow.links if x.reroute is not None]
        comfy_extra["linkExtensions"] = parents
    data: dict[str, Any] = {} if workflow.id is None else {"id": workflow.id}
    data |= {
        "last_node_id": max((n.id for n in workflow.nodes if isinstance(n.id, int)), default=0),
        "last_link_id": max((x.id for x in workflow.links), default=0),
        "nodes": nodes,
        "links": links,
        "groups": [_export_group(g) for g in workflow.groups],
        "config": {},
        "extra": comfy_extra,
        "version": 0.4,
    }
    data.update(leftovers)
    return data


def _input_slots(node: WorkflowNode, links: list[Link], types: NodeTypes) -> list[Socket]:
    """The node's input sockets, plus one for each linked input the stored sockets lack."""
    slots = list(node.inputs)
    schema = types.schema(node.type)
    for link in links:
        if all(s.name != link.to_input for s in slots):
            schema_input = schema.input(link.to_input) if schema is not None else None
            if schema_input is None:
                slots.append(Socket(link.to_input, link.type))
                continue
            widget = link.to_input if schema_input.accepts_literal else None
            slots.append(Socket(link.to_input, schema_input.type, widget=widget))
    return slots


def _export_node(
    node: WorkflowNode, *, types: NodeTypes, order: int, inputs: list[Socket], links: list[Link]
) -> dict[str, Any]:
    into = {link.to_input: link.id for link in links if link.to_node == node.id}
    data: dict[str, Any] = {
        "id": node.id,
        "type": node.type if node.type in VIRTUAL_TYPES else types.comfy_name(node.type),
        "pos": list(node.pos),
        "size": list(node.size) if node.size is not None else [200, 100],
        "flags": dict(node.flags),
        "order": order,
        "mode": _MODE_NUMBERS[node.mode],
    }
    if inputs:
        data["inputs"] = [_slot(s) | {"link": into.get(s.name)} for s in inputs]
    data["outputs"] = [
        _slot(s) | {"links": _links_from(node, i, links), "slot_index": i} for i, s in enumerate(node.outputs)
    ]
    for key in ("title", "color", "bgcolor"):
        if getattr(node, key) is not None:
            data[key] = getattr(node, key)
    data["properties"] = dict(node.properties)
    if node.type_version != 1:
        data["properties"][TYPE_VERSION_PROPERTY] = node.type_version
    values = _widget_values(node, types)
    if values:
        data["widgets_values"] = values
    return data | node.extra


def _links_from(node: WorkflowNode, slot: int, links: list[Link]) -> list[int]:
    return [x.id for x in links if x.from_node == node.id and x.from_slot == slot]


def _slot(socket: Socket) -> dict[str, Any]:
    data: dict[str, Any] = {"name": socket.name, "type": socket.type}
    if socket.widget is not None:
        data["widget"] = {"name": socket.widget}
    if socket.label is not None:
        data["label"] = socket.label
    return data


def _widget_values(node: WorkflowNode, types: NodeTypes) -> list[Any] | dict[str, Any]:
    layout = widget_layout(node.type, types)
    if layout is not None:
        return positional_values(node.widgets, node.controls, node.unnamed_widgets, layout)
    # A type we do not have: values named in our format stay named (ComfyUI reads both shapes).
    return dict(node.widgets) if node.widgets else list(node.unnamed_widgets)


def _export_link(link: Link, inputs_by_node: Mapping[Any, list[Socket]]) -> list[Any]:
    slots = inputs_by_node.get(link.to_node, [])
    slot = next((i for i, s in enumerate(slots) if s.name == link.to_input), -1)
    return [link.id, link.from_node, link.from_slot, link.to_node, slot, link.type]


def _export_group(group: Group) -> dict[str, Any]:
    data = group.to_json()
    extra = data.pop("extra", {})  # ComfyUI keeps a group's other fields (locked, flags) at its top
    return data | extra


def _export_reroute(reroute: Reroute) -> dict[str, Any]:
    data: dict[str, Any] = {"id": reroute.id, "pos": list(reroute.pos)}
    if reroute.parent is not None:
        data["parentId"] = reroute.parent
    data["linkIds"] = list(reroute.link_ids)
    if reroute.floating is not None:
        data["floating"] = reroute.floating
    return data
