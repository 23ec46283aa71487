"""The one conversion workflow -> API prompt, used by the server, the canvas and ``latentloom run``.

It follows what ComfyUI's editor sends, so a workflow runs the same in both tools:
- muted nodes and editor-only nodes (Reroute, PrimitiveNode, notes) are not in the prompt;
- a link through a Reroute goes to what feeds the Reroute;
- a bypassed node hands each output the input of the same type (same slot first, then the first
  input of exactly that type, then the first compatible one);
- a PrimitiveNode's value becomes the literal of every widget input it feeds;
- a link that resolves to nothing (from a muted node, a bypass with no matching input) is left out,
  and the widget value under it, if any, is sent instead.
Nodes come out sorted by id and inputs in schema order, so equal workflows give equal prompts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from latentloom.api import types as T
from latentloom.api.schema import NodeSchema
from latentloom.workflow.model import Link, NodeId, NodeMode, Socket, Workflow, WorkflowNode
from latentloom.workflow.node_types import (
    PRIMITIVE,
    REROUTE,
    VIRTUAL_TYPES,
    NodeTypes,
    NodeTypeSource,
    node_types,
)
from latentloom.workflow.sockets import node_sockets
from latentloom.workflow.widgets import schema_default

ClassNames = Literal["ours", "comfyui"]


@dataclass(frozen=True)
class ConversionProblem:
    """Something in the workflow that the prompt could not carry; the prompt is still made."""

    node_id: NodeId | None
    node_type: str | None
    message: str
    input_name: str | None = None

    def __str__(self) -> str:
        where = f"node {self.node_id} ({self.node_type})" if self.node_id is not None else "workflow"
        if self.input_name is not None:
            where += f", input '{self.input_name}'"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class _Source:
    node_id: NodeId
    slot: int


@dataclass(frozen=True)
class _Value:
    value: Any


def id_sort_key(node_id: NodeId) -> tuple[int, int, str]:
    """Integer ids first in numeric order, then string ids ("5:2") in text order."""
    return (0, node_id, "") if isinstance(node_id, int) else (1, 0, node_id)


def prompt_value(value: Any) -> Any:
    # A list literal would read as a link [node, slot]; ComfyUI wraps it and the server unwraps it.
    return {"__value__": value} if isinstance(value, list) else value


def workflow_to_prompt(
    workflow: Workflow,
    registry: NodeTypeSource,
    *,
    class_names: ClassNames = "ours",
) -> tuple[dict[str, dict[str, Any]], list[ConversionProblem]]:
    """The API prompt ``{id: {"inputs", "class_type", "_meta"}}`` and the problems met on the way.

    ``class_names="comfyui"`` writes ComfyUI's class names (our registry accepts them too).
    """
    types = node_types(registry)
    problems: list[ConversionProblem] = []
    sources = _Sources(workflow, types, problems)
    prompt: dict[str, dict[str, Any]] = {}
    for node in sorted(workflow.nodes, key=lambda n: id_sort_key(n.id)):
        if node.type in VIRTUAL_TYPES or node.mode is not NodeMode.NORMAL:
            continue
        schema = types.schema(node.type)
        if schema is None:
            message = "node type is missing from this installation"
            problems.append(ConversionProblem(node.id, node.type, message))
        class_type = types.comfy_name(node.type) if class_names == "comfyui" else types.canonical(node.type)
        title = node.title or (schema.display_name if schema and schema.display_name else node.type)
        prompt[str(node.id)] = {
            "inputs": _node_inputs(node, schema, sources, problems),
            "class_type": class_type,
            "_meta": {"title": title},
        }
    return prompt, problems


def workflow_to_comfy_api(
    workflow: Workflow, registry: NodeTypeSource
) -> tuple[dict[str, dict[str, Any]], list[ConversionProblem]]:
    """The API prompt with ComfyUI's class names, to queue on a ComfyUI server."""
    return workflow_to_prompt(workflow, registry, class_names="comfyui")


def _input_names(node: WorkflowNode, schema: NodeSchema | None, incoming: Mapping[str, Link]) -> list[str]:
    names = [i.name for i in schema.inputs] if schema is not None else []
    for name in [*node.widgets, *incoming]:
        if name not in names:
            names.append(name)
    return names


def _node_inputs(
    node: WorkflowNode, schema: NodeSchema | None, sources: _Sources, problems: list[ConversionProblem]
) -> dict[str, Any]:
    incoming = sources.incoming(node)
    inputs: dict[str, Any] = {}
    for name in _input_names(node, schema, incoming):
        if name in incoming:
            resolved = sources.resolve(incoming[name], want_type=_want_type(node, schema, incoming[name]))
            if isinstance(resolved, _Source):
                inputs[name] = [str(resolved.node_id), resolved.slot]
                continue
            if isinstance(resolved, _Value):
                inputs[name] = prompt_value(resolved.value)
                continue
            problems.append(ConversionProblem(node.id, node.type, resolved, name))
        schema_input = schema.input(name) if schema is not None else None
        if name not in node.widgets:
            # An input the file has no value for (the node type gained it since): its default, as the
            # canvas shows it when it opens the file.
            default = schema_default(schema_input) if name not in incoming else None
            if default is not None and schema_input.accepts_literal:
                inputs[name] = prompt_value(default)
            continue
        if schema is not None and (schema_input is None or not schema_input.accepts_literal):
            message = "a stored value for an input this node type does not take; left out"
            problems.append(ConversionProblem(node.id, node.type, message, name))
            continue
        inputs[name] = prompt_value(node.widgets[name])
    return inputs


def _want_type(node: WorkflowNode, schema: NodeSchema | None, link: Link) -> str:
    socket = node.input_socket(link.to_input)
    if socket is not None:
        return socket.type
    schema_input = schema.input(link.to_input) if schema is not None else None
    return schema_input.type if schema_input is not None else link.type


class _Sources:
    """Follows a link back through reroutes and bypassed nodes to the output that feeds it."""

    def __init__(self, workflow: Workflow, types: NodeTypes, problems: list[ConversionProblem]) -> None:
        self._nodes = {node.id: node for node in workflow.nodes}
        self._types = types
        self._into: dict[tuple[NodeId, str], Link] = {}
        for link in workflow.links:
            key = (link.to_node, link.to_input)
            if key not in self._into:
                self._into[key] = link
                continue
            target_type = self._nodes[link.to_node].type if link.to_node in self._nodes else None
            message = f"two links (ids {self._into[key].id}, {link.id}) feed this input; the first is used"
            problems.append(ConversionProblem(link.to_node, target_type, message, link.to_input))

    def incoming(self, node: WorkflowNode) -> dict[str, Link]:
        return {name: link for (node_id, name), link in self._into.items() if node_id == node.id}

    def resolve(self, link: Link, *, want_type: str) -> _Source | _Value | str:
        """Where the link's value comes from, or why it comes from nowhere."""
        seen: set[tuple[NodeId, int]] = set()
        current = link
        while True:
            origin = self._nodes.get(current.from_node)
            if origin is None:
                return f"linked from node {current.from_node!r}, which is not in the workflow"
            if (origin.id, current.from_slot) in seen:
                return "its link goes round a loop of reroutes or bypassed nodes"
            seen.add((origin.id, current.from_slot))
            if origin.mode is not NodeMode.BYPASSED and origin.type != REROUTE:
                return _end(origin, current.from_slot)
            passed = self._passed_input(origin, current.from_slot, want_type)
            following = None if passed is None else self._into.get((origin.id, passed.name))
            if following is None:
                how = "bypassed" if origin.mode is NodeMode.BYPASSED else "reroute"
                return f"{how} node {origin.id} passes nothing of type {want_type} on; left out"
            current = following

    def _passed_input(self, node: WorkflowNode, slot: int, want_type: str) -> Socket | None:
        """The input a bypassed node (or a reroute) hands to output ``slot`` (ComfyUI's rule)."""
        inputs, outputs = node_sockets(node, self._types.schema(node.type))
        if node.type == REROUTE or want_type in (T.ANY, ""):
            return inputs[slot] if slot < len(inputs) else (inputs[0] if inputs else None)
        output_type = outputs[slot].type if slot < len(outputs) else T.ANY
        if slot < len(inputs) and _fits(inputs[slot].type, output_type, want_type):
            return inputs[slot]
        exact = next((s for s in inputs if s.type == want_type), None)
        return exact or next((s for s in inputs if _fits(s.type, output_type, want_type)), None)


def _end(origin: WorkflowNode, slot: int) -> _Source | _Value | str:
    """The value at the end of a chain: a node's output, a primitive's value, or a reason for none."""
    if origin.type == PRIMITIVE:
        if "value" in origin.widgets:
            return _Value(origin.widgets["value"])
        return f"primitive node {origin.id} holds no value"
    if origin.type in VIRTUAL_TYPES:
        return f"linked from {origin.type} node {origin.id}, which has no outputs"
    if origin.mode is NodeMode.MUTED:
        return f"linked from muted node {origin.id} ({origin.type}); left out"
    return _Source(origin.id, slot)


def _fits(input_type: str, output_type: str, want_type: str) -> bool:
    return T.types_compatible(input_type, output_type) and T.types_compatible(input_type, want_type)
