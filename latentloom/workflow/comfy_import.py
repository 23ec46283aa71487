"""ComfyUI UI-format workflows (versions 0.4 and 1) -> our Workflow.

Positional ``widgets_values`` become values by input name through the node schema (widgets.py). Node
types we do not have stay as placeholders: their sockets, values and fields are kept as they are, so
exporting them back gives what was read. Node fields we have no place for go to ``node.extra``, graph
fields to ``workflow.extra["comfyui"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import latentloom
from latentloom.workflow import reader as R
from latentloom.workflow.comfy_versions import upgrade_comfy_graph
from latentloom.workflow.model import Group, Link, NodeMode, Reroute, Socket, Workflow, WorkflowNode
from latentloom.workflow.node_types import VIRTUAL_TYPES, NodeTypes, NodeTypeSource, node_types
from latentloom.workflow.widgets import name_values, widget_layout

# ComfyUI's (litegraph's) node mode numbers: 0 always, 2 never (muted), 4 bypass.
COMFY_MODES: Mapping[int, NodeMode] = MappingProxyType(
    {0: NodeMode.NORMAL, 2: NodeMode.MUTED, 4: NodeMode.BYPASSED}
)
# Where our node type version travels inside a ComfyUI file (ComfyUI keeps unknown properties).
TYPE_VERSION_PROPERTY = "latentloom_type_version"
# Graph metadata we add to a ComfyUI file's "extra" on export.
METADATA_KEY = "latentloom"

_NODE_FIELDS = frozenset(
    {"id", "type", "pos", "size", "flags", "order", "mode", "inputs", "outputs", "properties",
     "widgets_values", "color", "bgcolor", "title"}
)
_GRAPH_FIELDS = frozenset({"id", "nodes", "links", "groups", "reroutes", "extra", "version", "state"})
_GROUP_FIELDS = frozenset({"id", "title", "bounding", "color", "font_size"})


def comfy_ui_to_workflow(
    data: Mapping[str, Any], registry: NodeTypeSource
) -> Workflow:
    """Import a ComfyUI UI-format workflow; what did not fit is listed in ``workflow.problems``
    (links that cannot be placed are left out and listed there)."""
    types = node_types(registry)
    graph = upgrade_comfy_graph(R.mapping(data, where="ComfyUI workflow"))
    problems: list[str] = []
    raw_nodes = R.sequence(graph.get("nodes", []), where="nodes")
    nodes = [
        _import_node(R.mapping(raw, where=f"nodes[{i}]"), types, problems) for i, raw in enumerate(raw_nodes)
    ]
    R.check_unique_ids(nodes, what="node")
    raw_by_id = {node.id: raw for node, raw in zip(nodes, raw_nodes, strict=True)}
    by_id = {node.id: node for node in nodes}
    links = _import_links(graph.get("links") or [], nodes=by_id, raw=raw_by_id, problems=problems)
    extra = dict(graph.get("extra") or {})
    metadata = extra.pop(METADATA_KEY, None)
    leftovers = {key: value for key, value in graph.items() if key not in _GRAPH_FIELDS}
    if not leftovers.get("config"):  # the export writes an empty config itself
        leftovers.pop("config", None)
    if leftovers:
        extra["comfyui"] = leftovers
    if "definitions" in leftovers:
        problems.append("subgraphs are not supported yet: nodes that use one count as missing node types")
    workflow = Workflow(
        nodes=nodes,
        links=links,
        groups=[_import_group(R.mapping(g, where="groups[]")) for g in graph.get("groups") or []],
        reroutes=[_import_reroute(R.mapping(r, where="reroutes[]")) for r in graph.get("reroutes") or []],
        id=graph.get("id") if isinstance(graph.get("id"), str) else None,
        app_version=_app_version(metadata),
        extra=extra,
    )
    workflow.problems.extend(problems)
    return workflow


def _app_version(metadata: Any) -> str:
    if isinstance(metadata, Mapping) and isinstance(metadata.get("app_version"), str):
        return metadata["app_version"]
    return latentloom.__version__


def _vector(value: Any, *, where: str) -> tuple[float, float]:
    # Old files store a vector as {"0": x, "1": y}.
    if isinstance(value, Mapping):
        value = [value.get("0"), value.get("1")]
    return R.pair(value, where=where)


def _mode(value: Any) -> NodeMode:
    # Litegraph's other modes (1 on event, 3 on trigger) run like normal nodes in ComfyUI.
    return COMFY_MODES.get(value, NodeMode.NORMAL) if isinstance(value, int) else NodeMode.NORMAL


def _type_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return value if isinstance(value, str) else "*"


def _socket(raw: Any, *, where: str) -> Socket:
    slot = R.mapping(raw, where=where)
    widget = slot.get("widget")
    widget_name = widget.get("name") if isinstance(widget, Mapping) else None
    label = slot.get("label")
    return Socket(
        name=str(slot.get("name", "")),
        type=_type_text(slot.get("type", "*")),
        widget=widget_name if isinstance(widget_name, str) else None,
        label=label if isinstance(label, str) else None,
    )


def _import_node(raw: Mapping[str, Any], types: NodeTypes, problems: list[str]) -> WorkflowNode:
    node_id = R.node_id(raw.get("id"), where="node id")
    comfy_type = R.string(raw.get("type"), where=f"node {node_id!r}.type")
    node_type = comfy_type if comfy_type in VIRTUAL_TYPES else types.canonical(comfy_type)
    where = f"node {node_id!r} ({comfy_type})"
    properties = dict(raw.get("properties") or {})
    type_version = properties.pop(TYPE_VERSION_PROPERTY, 1)
    size = raw.get("size")
    node = WorkflowNode(
        id=node_id,
        type=node_type,
        type_version=type_version if isinstance(type_version, int) else 1,
        pos=_vector(raw.get("pos", [0, 0]), where=f"{where}.pos"),
        size=None if size is None else _vector(size, where=f"{where}.size"),
        title=raw.get("title") if isinstance(raw.get("title"), str) else None,
        color=raw.get("color") if isinstance(raw.get("color"), str) else None,
        bgcolor=raw.get("bgcolor") if isinstance(raw.get("bgcolor"), str) else None,
        mode=_mode(raw.get("mode", 0)),
        flags=dict(raw.get("flags") or {}),
        inputs=[_socket(s, where=f"{where}.inputs") for s in raw.get("inputs") or []],
        outputs=[_socket(s, where=f"{where}.outputs") for s in raw.get("outputs") or []],
        properties=properties,
        extra={key: value for key, value in raw.items() if key not in _NODE_FIELDS},
    )
    _import_widgets(node, raw.get("widgets_values"), types=types, where=where, problems=problems)
    return node


def _import_widgets(
    node: WorkflowNode, values: Any, *, types: NodeTypes, where: str, problems: list[str]
) -> None:
    if isinstance(values, Mapping):  # some custom nodes save their widgets by name already
        node.widgets = dict(values)
        return
    values = list(values or [])
    layout = widget_layout(node.type, types)
    if layout is None:
        node.unnamed_widgets = values
        return
    named = name_values(values, layout, label=where)
    node.widgets, node.controls, node.unnamed_widgets = named.widgets, named.controls, named.unnamed
    problems.extend(named.problems)


def _import_links(
    raw_links: Any,
    *,
    nodes: Mapping[Any, WorkflowNode],
    raw: Mapping[Any, Mapping[str, Any]],
    problems: list[str],
) -> list[Link]:
    links = []
    for item in R.sequence(raw_links, where="links"):
        link = R.mapping(item, where="links[]")
        link_id = R.integer(link.get("id"), where="link id")
        origin, target = link.get("origin_id"), link.get("target_id")
        if origin not in nodes or target not in nodes:
            problems.append(f"link {link_id} joins nodes {origin!r} and {target!r}; one is not in the file")
            continue
        slot = link.get("target_slot")
        target_inputs = raw[target].get("inputs") or []
        if not isinstance(slot, int) or not 0 <= slot < len(target_inputs):
            problems.append(f"link {link_id} goes to input slot {slot!r}, which node {target!r} lacks")
            continue
        slot_data = target_inputs[slot]
        live = slot_data.get("link", link_id) if isinstance(slot_data, Mapping) else link_id
        if live != link_id:  # a stale entry: the input is connected by another link, or by none
            problems.append(f"link {link_id} is not the one connected to node {target!r} input {slot}")
            continue
        parent = link.get("parentId")
        links.append(
            Link(
                id=link_id,
                from_node=origin,
                from_slot=R.integer(link.get("origin_slot"), where=f"link {link_id} origin_slot"),
                to_node=target,
                to_input=nodes[target].inputs[slot].name,
                type=_type_text(link.get("type", "*")),
                reroute=parent if isinstance(parent, int) else None,
            )
        )
    return links


def _import_group(raw: Mapping[str, Any]) -> Group:
    group_id, font_size = raw.get("id"), raw.get("font_size")
    return Group(
        id=group_id if isinstance(group_id, int) else None,
        title=str(raw.get("title", "")),
        bounding=R.numbers(raw.get("bounding"), where="group bounding", length=4),
        color=raw.get("color") if isinstance(raw.get("color"), str) else None,
        font_size=font_size if isinstance(font_size, int | float) else None,
        extra={key: value for key, value in raw.items() if key not in _GROUP_FIELDS},
    )


def _import_reroute(raw: Mapping[str, Any]) -> Reroute:
    parent, floating = raw.get("parentId"), raw.get("floating")
    return Reroute(
        id=R.integer(raw.get("id"), where="reroute id"),
        pos=_vector(raw.get("pos"), where="reroute pos"),
        parent=parent if isinstance(parent, int) else None,
        link_ids=[i for i in raw.get("linkIds") or [] if isinstance(i, int)],
        floating=dict(floating) if isinstance(floating, Mapping) else None,
    )
