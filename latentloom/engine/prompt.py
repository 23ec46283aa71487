"""Parse and validate an API prompt into an immutable Graph.

The API prompt is ComfyUI's: ``{node_id: {"class_type": str, "inputs": {name: literal | [source_id, index]}}}``.
Unknown keys ("_meta", ...) and inputs that the schema does not declare are ignored, as ComfyUI does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from latentloom.api.registry import NodeRegistry
from latentloom.engine.describe import short_repr
from latentloom.engine.errors import GraphValidationError, Problem
from latentloom.engine.graph import Graph, GraphNode
from latentloom.engine.schedule import find_cycles, topological_order
from latentloom.engine.validate import PromptNode, check_node, parse_link

__all__ = ["Graph", "validate_prompt"]


def validate_prompt(
    prompt: object, registry: NodeRegistry, *, outputs: Sequence[str] | None = None
) -> Graph:
    """Check a submitted prompt and return the validated Graph of what the requested outputs need.

    ``outputs`` names the nodes to run (partial execution); None runs every output node. Raises
    GraphValidationError listing every problem: the shape of every node is always checked, the inputs
    only of the nodes that the requested outputs need.
    """
    if not isinstance(prompt, Mapping):
        message = f"the prompt must be an object of node id -> node, got {type(prompt).__name__}"
        raise GraphValidationError([Problem(None, None, None, "invalid_prompt", message)])
    problems: list[Problem] = []
    nodes = _parse_nodes(prompt, registry, problems)
    targets = _targets(nodes, outputs, problems, submitted=prompt)
    dependencies = _needed(targets, nodes)
    checks = {node_id: check_node(nodes[node_id], nodes=nodes) for node_id in dependencies}
    for check in checks.values():
        problems.extend(check.problems)
    ordered, blocked = _order(dependencies, nodes, problems)
    if problems:
        dependents = _dependent_outputs(problems, targets, dependencies, ordered=ordered, blocked=blocked)
        raise GraphValidationError(problems, dependent_outputs=dependents)
    graph_nodes = [
        GraphNode(
            id=node_id,
            class_type=nodes[node_id].class_type,
            literals=checks[node_id].literals,
            links=checks[node_id].links,
            position=nodes[node_id].position,
        )
        for node_id in ordered
    ]
    return Graph.build(graph_nodes, outputs=tuple(targets), prompt=prompt)


def _parse_nodes(
    prompt: Mapping[Any, Any], registry: NodeRegistry, problems: list[Problem]
) -> dict[str, PromptNode]:
    """Every well-shaped node entry whose class is known; the others become problems."""
    nodes: dict[str, PromptNode] = {}
    for position, (node_id, entry) in enumerate(prompt.items()):
        if not isinstance(node_id, str):
            message = f"node ids must be strings, got {short_repr(node_id)}"
            problems.append(Problem(None, None, None, "invalid_prompt", message))
            continue
        node = _parse_node(node_id, entry, position=position, registry=registry, problems=problems)
        if node is not None:
            nodes[node_id] = node
    return nodes


def _parse_node(
    node_id: str, entry: Any, *, position: int, registry: NodeRegistry, problems: list[Problem]
) -> PromptNode | None:
    if not isinstance(entry, Mapping):
        message = f"a node must be an object with class_type and inputs, got {type(entry).__name__}"
        problems.append(Problem(node_id, None, None, "invalid_prompt", message))
        return None
    class_type = entry.get("class_type")
    if class_type is None:
        message = "the node has no class_type; the workflow may be corrupted"
        problems.append(Problem(node_id, None, None, "missing_node_type", message))
        return None
    if not isinstance(class_type, str):
        message = f"class_type must be a string, got {short_repr(class_type)}"
        problems.append(Problem(node_id, None, None, "invalid_prompt", message))
        return None
    inputs = entry.get("inputs", {})
    if not isinstance(inputs, Mapping):
        message = f"inputs must be an object of input name -> value, got {type(inputs).__name__}"
        problems.append(Problem(node_id, class_type, None, "invalid_prompt", message))
        return None
    node_type = registry.get(class_type)
    if node_type is None:
        message = f"node type {class_type!r} not found; the custom node may not be installed"
        problems.append(Problem(node_id, class_type, None, "missing_node_type", message))
        return None
    return PromptNode(node_id, position, registry.canonical_name(class_type), node_type, inputs)


def _targets(
    nodes: Mapping[str, PromptNode],
    outputs: Sequence[str] | None,
    problems: list[Problem],
    *,
    submitted: Mapping[Any, Any],
) -> list[str]:
    """The nodes to run: the requested ones, or every output node."""
    if outputs is None:
        targets = [n.id for n in nodes.values() if n.node_type and n.node_type.schema.output_node]
        if not targets and not problems:
            problems.append(Problem(None, None, None, "prompt_no_outputs", "the prompt has no output node"))
        return targets
    if isinstance(outputs, str | bytes) or not isinstance(outputs, Sequence):
        message = f"outputs must be a list of node ids, got {type(outputs).__name__}"
        problems.append(Problem(None, None, None, "invalid_prompt", message))
        return []
    targets: list[str] = []
    for node_id in outputs:
        if not isinstance(node_id, str):
            message = f"output node ids must be strings, got {short_repr(node_id)}"
            problems.append(Problem(None, None, None, "invalid_prompt", message))
        elif node_id not in submitted:
            message = f"output node {node_id!r} is not in the prompt"
            problems.append(Problem(node_id, None, None, "unknown_output_node", message))
        elif node_id not in nodes:
            continue  # a malformed node or an unknown type: already reported
        elif node_id not in targets:
            targets.append(node_id)
    if not outputs:
        problems.append(Problem(None, None, None, "prompt_no_outputs", "no output node was requested"))
    return targets


def _sources(node: PromptNode, nodes: Mapping[str, PromptNode]) -> list[str]:
    """The distinct existing nodes this node reads from through its declared inputs."""
    assert node.node_type is not None
    sources: list[str] = []
    for spec in node.node_type.schema.inputs:
        link = parse_link(node.inputs.get(spec.name))
        if link is not None and link.source in nodes and link.source not in sources:
            sources.append(link.source)
    return sources


def _needed(targets: Sequence[str], nodes: Mapping[str, PromptNode]) -> dict[str, list[str]]:
    """The targets and all their ancestors, in prompt order, each with the nodes it reads from.

    An explicit stack rather than recursion, so that a long chain cannot exhaust Python's stack.
    """
    dependencies: dict[str, list[str]] = {}
    stack = list(targets)
    while stack:
        node_id = stack.pop()
        if node_id in dependencies:
            continue
        dependencies[node_id] = _sources(nodes[node_id], nodes)
        stack.extend(s for s in dependencies[node_id] if s not in dependencies)
    return {n: dependencies[n] for n in sorted(dependencies, key=lambda n: nodes[n].position)}


def _order(
    dependencies: Mapping[str, list[str]], nodes: Mapping[str, PromptNode], problems: list[Problem]
) -> tuple[list[str], list[str]]:
    """A topological order of the needed nodes, and those left over; each node on a cycle is a problem."""
    position = {node_id: nodes[node_id].position for node_id in dependencies}
    order, blocked = topological_order(dependencies, position=position)
    if blocked:
        for cycle in find_cycles(dependencies, among=blocked, position=position):
            message = f"dependency cycle: {_cycle_text(cycle)}"
            for node_id in cycle:
                problems.append(Problem(node_id, nodes[node_id].class_type, None, "dependency_cycle", message))
    return order, blocked


def _cycle_text(cycle: list[str], *, shown: int = 12) -> str:
    """``a -> b -> a``; a long cycle shows its ends and how many nodes it has."""
    if len(cycle) <= shown:
        return " -> ".join([*cycle, cycle[0]])
    head, tail = cycle[: shown // 2], cycle[-shown // 2 :]
    return " -> ".join([*head, "...", *tail, cycle[0]]) + f" ({len(cycle)} nodes)"


def _dependent_outputs(
    problems: Sequence[Problem],
    targets: Sequence[str],
    dependencies: Mapping[str, list[str]],
    *,
    ordered: Sequence[str],
    blocked: Sequence[str],
) -> dict[str, list[str]]:
    """For each node with a problem, the requested outputs that need it (ComfyUI's dependent_outputs).

    Each target owns one bit. The nodes that could not be ordered (cycles and what they feed, all
    downstream of the ordered ones) settle first by repetition; then one pass over the ordered nodes,
    consumers before sources, carries each node's bits to its sources.
    """
    masks = {target: 1 << bit for bit, target in enumerate(targets)}
    inside = set(blocked)
    pending = [node_id for node_id in blocked if node_id in masks]
    while pending:
        node_id = pending.pop()
        for source in dependencies[node_id]:
            merged = masks.get(source, 0) | masks[node_id]
            if merged != masks.get(source):
                masks[source] = merged
                if source in inside:
                    pending.append(source)
    for node_id in reversed(ordered):
        mask = masks.get(node_id, 0)
        if mask:
            for source in dependencies[node_id]:
                masks[source] = masks.get(source, 0) | mask
    dependents: dict[str, list[str]] = {}
    for problem in problems:
        if problem.node_id is not None and problem.node_id not in dependents:
            dependents[problem.node_id] = [targets[bit] for bit in _bits(masks.get(problem.node_id, 0))]
    return dependents


def _bits(mask: int) -> list[int]:
    return [bit for bit, digit in enumerate(reversed(f"{mask:b}")) if digit == "1"]
