"""A deterministic topological order of a workflow's nodes (sources first)."""

from __future__ import annotations

from collections import defaultdict

from latentloom.workflow.model import NodeId, Workflow


def execution_order(workflow: Workflow) -> list[NodeId]:
    """Node ids so that every link goes forward; ties keep the file's node order, and nodes caught
    in a cycle (which no run accepts) come last in file order rather than being dropped."""
    position = {node.id: index for index, node in enumerate(workflow.nodes)}
    waiting = {node.id: 0 for node in workflow.nodes}
    after: dict[NodeId, list[NodeId]] = defaultdict(list)
    for link in workflow.links:
        if link.from_node in waiting and link.to_node in waiting and link.from_node != link.to_node:
            waiting[link.to_node] += 1
            after[link.from_node].append(link.to_node)
    ready = sorted((n for n, count in waiting.items() if count == 0), key=position.__getitem__)
    order: list[NodeId] = []
    while ready:
        current = ready.pop(0)
        order.append(current)
        for target in after[current]:
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
        ready.sort(key=position.__getitem__)
    placed = set(order)
    return order + [node.id for node in workflow.nodes if node.id not in placed]
