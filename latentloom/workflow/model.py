"""The workflow graph as the editor saves it: nodes with widget values by input name, links, groups.

``Workflow.to_json`` writes our file format (docs/workflow-format.md, workflow.schema.json) in its
canonical form: fixed key order, optional fields left out when empty. ``Workflow.from_json`` reads it
back after migrating older format versions, so load then save gives the same file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from latentloom.workflow import reader as R
from latentloom.workflow.migrations import FORMAT_NAME, FORMAT_VERSION, migrate

NodeId = int | str


class NodeMode(StrEnum):
    NORMAL = "normal"
    MUTED = "muted"  # never runs; links from it are left out of the prompt
    BYPASSED = "bypassed"  # does not run; each output passes on an input of the same type


@dataclass
class Socket:
    """An input or output slot as drawn on the node.

    ``widget`` on an input names the widget that this socket replaces (a widget converted to a
    socket); on a PrimitiveNode's output it names the widget that the primitive feeds.
    """

    name: str
    type: str
    widget: str | None = None
    label: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.widget is not None:
            data["widget"] = self.widget
        if self.label is not None:
            data["label"] = self.label
        return data

    @classmethod
    def from_json(cls, data: Any, *, where: str) -> Socket:
        obj = R.mapping(data, where=where)
        return cls(
            name=R.string(obj.get("name"), where=f"{where}.name"),
            type=R.string(obj.get("type"), where=f"{where}.type"),
            widget=R.optional_string(obj.get("widget"), where=f"{where}.widget"),
            label=R.optional_string(obj.get("label"), where=f"{where}.label"),
        )


@dataclass
class WorkflowNode:
    id: NodeId
    type: str
    pos: tuple[float, float] = (0, 0)
    size: tuple[float, float] | None = None
    type_version: int = 1
    title: str | None = None  # None: the node type's display name
    color: str | None = None
    bgcolor: str | None = None
    mode: NodeMode = NodeMode.NORMAL
    flags: dict[str, Any] = field(default_factory=dict)  # e.g. {"collapsed": true, "pinned": true}
    inputs: list[Socket] = field(default_factory=list)  # link sockets, converted widgets included
    outputs: list[Socket] = field(default_factory=list)
    widgets: dict[str, Any] = field(default_factory=dict)  # widget values by input name
    # Control-after-generate of an INT widget ("fixed", "increment", "decrement", "randomize").
    controls: dict[str, Any] = field(default_factory=dict)
    # Widget values whose input names are unknown: every value of a node type we do not have (kept
    # for when it is installed), or trailing values no input names (ComfyUI's image upload button).
    unnamed_widgets: list[Any] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # other fields of an imported node, kept verbatim

    def input_socket(self, name: str) -> Socket | None:
        return next((s for s in self.inputs if s.name == name), None)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type, "type_version": self.type_version}
        data["pos"] = list(self.pos)
        if self.size is not None:
            data["size"] = list(self.size)
        for key in ("title", "color", "bgcolor"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        data["mode"] = self.mode.value
        optional = {
            "flags": self.flags,
            "inputs": [s.to_json() for s in self.inputs],
            "outputs": [s.to_json() for s in self.outputs],
            "widgets": self.widgets,
            "controls": self.controls,
            "unnamed_widgets": self.unnamed_widgets,
            "properties": self.properties,
            "extra": self.extra,
        }
        data.update({key: value for key, value in optional.items() if value})
        return data

    @classmethod
    def from_json(cls, data: Any, *, index: int) -> WorkflowNode:
        obj = R.mapping(data, where=f"nodes[{index}]")
        where = f"node {obj.get('id', f'#{index}')!r}"
        size = obj.get("size")
        return cls(
            id=R.node_id(obj.get("id"), where=f"{where}.id"),
            type=R.string(obj.get("type"), where=f"{where}.type"),
            type_version=R.integer(obj.get("type_version", 1), where=f"{where}.type_version"),
            pos=R.pair(obj.get("pos"), where=f"{where}.pos"),
            size=None if size is None else R.pair(size, where=f"{where}.size"),
            title=R.optional_string(obj.get("title"), where=f"{where}.title"),
            color=R.optional_string(obj.get("color"), where=f"{where}.color"),
            bgcolor=R.optional_string(obj.get("bgcolor"), where=f"{where}.bgcolor"),
            mode=R.choice(obj.get("mode", "normal"), NodeMode, where=f"{where}.mode"),
            flags=dict(R.mapping(obj.get("flags", {}), where=f"{where}.flags")),
            inputs=_sockets(obj.get("inputs", []), where=f"{where}.inputs"),
            outputs=_sockets(obj.get("outputs", []), where=f"{where}.outputs"),
            widgets=dict(R.mapping(obj.get("widgets", {}), where=f"{where}.widgets")),
            controls=dict(R.mapping(obj.get("controls", {}), where=f"{where}.controls")),
            unnamed_widgets=list(R.sequence(obj.get("unnamed_widgets", []), where=f"{where}.unnamed")),
            properties=dict(R.mapping(obj.get("properties", {}), where=f"{where}.properties")),
            extra=dict(R.mapping(obj.get("extra", {}), where=f"{where}.extra")),
        )


def _sockets(data: Any, *, where: str) -> list[Socket]:
    items = R.sequence(data, where=where)
    return [Socket.from_json(item, where=f"{where}[{i}]") for i, item in enumerate(items)]


@dataclass
class Link:
    """A wire from an output slot (by index) to an input (by name)."""

    id: int
    from_node: NodeId
    from_slot: int
    to_node: NodeId
    to_input: str
    type: str = "*"
    reroute: int | None = None  # the last native reroute the wire passes (ComfyUI's parentId)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "from": [self.from_node, self.from_slot],
            "to": [self.to_node, self.to_input],
            "type": self.type,
        }
        if self.reroute is not None:
            data["reroute"] = self.reroute
        return data

    @classmethod
    def from_json(cls, data: Any, *, index: int) -> Link:
        where = f"links[{index}]"
        obj = R.mapping(data, where=where)
        source = R.sequence(obj.get("from"), where=f"{where}.from", length=2)
        target = R.sequence(obj.get("to"), where=f"{where}.to", length=2)
        reroute = obj.get("reroute")
        return cls(
            id=R.integer(obj.get("id"), where=f"{where}.id"),
            from_node=R.node_id(source[0], where=f"{where}.from[0]"),
            from_slot=R.integer(source[1], where=f"{where}.from[1]"),
            to_node=R.node_id(target[0], where=f"{where}.to[0]"),
            to_input=R.string(target[1], where=f"{where}.to[1]"),
            type=R.string(obj.get("type", "*"), where=f"{where}.type"),
            reroute=None if reroute is None else R.integer(reroute, where=f"{where}.reroute"),
        )


@dataclass
class Group:
    """A titled box behind nodes; ``bounding`` is [x, y, width, height]."""

    title: str
    bounding: tuple[float, float, float, float]
    id: int | None = None
    color: str | None = None
    font_size: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"locked": true, "flags": {}}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {} if self.id is None else {"id": self.id}
        data |= {"title": self.title, "bounding": list(self.bounding)}
        if self.color is not None:
            data["color"] = self.color
        if self.font_size is not None:
            data["font_size"] = self.font_size
        if self.extra:
            data["extra"] = self.extra
        return data

    @classmethod
    def from_json(cls, data: Any, *, index: int) -> Group:
        where = f"groups[{index}]"
        obj = R.mapping(data, where=where)
        group_id, font_size = obj.get("id"), obj.get("font_size")
        return cls(
            id=None if group_id is None else R.integer(group_id, where=f"{where}.id"),
            title=R.string(obj.get("title", ""), where=f"{where}.title"),
            bounding=R.numbers(obj.get("bounding"), where=f"{where}.bounding", length=4),
            color=R.optional_string(obj.get("color"), where=f"{where}.color"),
            font_size=None if font_size is None else R.number(font_size, where=f"{where}.font_size"),
            extra=dict(R.mapping(obj.get("extra", {}), where=f"{where}.extra")),
        )


@dataclass
class Reroute:
    """A waypoint on wires (ComfyUI's native reroute); it changes nothing about what runs."""

    id: int
    pos: tuple[float, float]
    parent: int | None = None
    link_ids: list[int] = field(default_factory=list)
    floating: dict[str, Any] | None = None  # a reroute left with no link: {"slotType": "input"|"output"}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "pos": list(self.pos)}
        if self.parent is not None:
            data["parent"] = self.parent
        if self.link_ids:
            data["link_ids"] = list(self.link_ids)
        if self.floating is not None:
            data["floating"] = self.floating
        return data

    @classmethod
    def from_json(cls, data: Any, *, index: int) -> Reroute:
        where = f"reroutes[{index}]"
        obj = R.mapping(data, where=where)
        parent, floating = obj.get("parent"), obj.get("floating")
        return cls(
            id=R.integer(obj.get("id"), where=f"{where}.id"),
            pos=R.pair(obj.get("pos"), where=f"{where}.pos"),
            parent=None if parent is None else R.integer(parent, where=f"{where}.parent"),
            link_ids=R.integers(obj.get("link_ids", []), where=f"{where}.link_ids"),
            floating=None if floating is None else dict(R.mapping(floating, where=f"{where}.floating")),
        )


@dataclass
class Workflow:
    nodes: list[WorkflowNode] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    reroutes: list[Reroute] = field(default_factory=list)
    id: str | None = None
    app_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # view state (ds), other tools' data
    # What loading noticed (links to absent nodes, widget values that did not fit); never saved.
    problems: list[str] = field(default_factory=list, compare=False)

    def node(self, node_id: NodeId) -> WorkflowNode | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def links_into(self, node_id: NodeId) -> list[Link]:
        return [link for link in self.links if link.to_node == node_id]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": FORMAT_NAME, "version": FORMAT_VERSION}
        data["app_version"] = self.app_version
        if self.id is not None:
            data["id"] = self.id
        data["nodes"] = [n.to_json() for n in self.nodes]
        data["links"] = [link.to_json() for link in self.links]
        data["groups"] = [g.to_json() for g in self.groups]
        if self.reroutes:
            data["reroutes"] = [r.to_json() for r in self.reroutes]
        if self.extra:
            data["extra"] = self.extra
        return copy.deepcopy(data)  # the caller may change it without changing this workflow

    @classmethod
    def from_json(cls, data: Any) -> Workflow:
        """Read our format (any supported version); raises WorkflowFormatError naming what is wrong."""
        obj = copy.deepcopy(migrate(R.mapping(data, where="workflow")))
        workflow = cls(
            nodes=_items(obj, "nodes", WorkflowNode.from_json),
            links=_items(obj, "links", Link.from_json),
            groups=_items(obj, "groups", Group.from_json),
            reroutes=_items(obj, "reroutes", Reroute.from_json),
            id=R.optional_string(obj.get("id"), where="workflow.id"),
            app_version=R.string(obj.get("app_version", ""), where="workflow.app_version"),
            extra=dict(R.mapping(obj.get("extra", {}), where="workflow.extra")),
        )
        R.check_unique_ids(workflow.nodes, what="node")
        R.check_unique_ids(workflow.links, what="link")
        workflow.problems.extend(dangling_link_problems(workflow))
        return workflow


def _items(obj: Any, key: str, read: Any) -> list[Any]:
    return [read(item, index=i) for i, item in enumerate(R.sequence(obj.get(key, []), where=key))]


def dangling_link_problems(workflow: Workflow) -> list[str]:
    """Links whose ends are not there: kept (nothing is thrown away) and reported."""
    ids = {n.id for n in workflow.nodes}
    problems = []
    for link in workflow.links:
        for end in (link.from_node, link.to_node):
            if end not in ids:
                problems.append(f"link {link.id} refers to node {end!r}, which is not in the workflow")
    return problems
