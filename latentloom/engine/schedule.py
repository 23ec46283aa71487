"""Topological order and cycle finding, both iterative so that huge or deep graphs cannot overflow the stack."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def topological_order(
    dependencies: Mapping[str, Sequence[str]], *, position: Mapping[str, int]
) -> tuple[list[str], list[str]]:
    """Dissolve the graph: repeatedly take the ready node (all its sources done) that came first in the prompt.

    ``dependencies`` maps every node to the distinct nodes it reads from. Returns the order and the nodes
    that could not be ordered (those on a cycle or downstream of one), both in prompt order.
    """
    waiting_on = {node: len(sources) for node, sources in dependencies.items()}
    consumers: dict[str, list[str]] = {node: [] for node in dependencies}
    for node, sources in dependencies.items():
        for source in sources:
            consumers[source].append(node)
    ready = [(position[node], node) for node, count in waiting_on.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for consumer in consumers[node]:
            waiting_on[consumer] -= 1
            if waiting_on[consumer] == 0:
                heapq.heappush(ready, (position[consumer], consumer))
    blocked = sorted((n for n, count in waiting_on.items() if count > 0), key=position.__getitem__)
    return order, blocked


def find_cycles(
    dependencies: Mapping[str, Sequence[str]], *, among: Sequence[str], position: Mapping[str, int]
) -> list[list[str]]:
    """The dependency cycles among ``among``: one per strongly connected component that holds a cycle.

    Each cycle is given in data-flow order (each node feeds the next; the last feeds the first),
    starting at its node that comes first in the prompt.
    """
    members = set(among)
    successors = {node: [s for s in dependencies[node] if s in members] for node in among}
    cycles = []
    for component in _strongly_connected(among, successors):
        if len(component) > 1 or component[0] in successors[component[0]]:
            cycles.append(_cycle_path(component, successors, position=position))
    cycles.sort(key=lambda cycle: min(position[n] for n in cycle))
    return cycles


def _cycle_path(component: list[str], successors: Mapping[str, list[str]], *, position) -> list[str]:
    """Walk from the earliest node along dependencies inside the component until a node repeats."""
    inside = set(component)
    node = min(component, key=position.__getitem__)
    path: list[str] = []
    seen: dict[str, int] = {}
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min((s for s in successors[node] if s in inside), key=position.__getitem__)
    cycle = path[seen[node] :]
    cycle.reverse()  # walked consumer -> source; report source -> consumer
    start = cycle.index(min(cycle, key=position.__getitem__))
    return cycle[start:] + cycle[:start]


def _strongly_connected(nodes: Sequence[str], successors: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm with an explicit work stack instead of recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for root in nodes:
        if root in index:
            continue
        visit(root)
        work = [(root, iter(successors[root]))]
        while work:
            node, pending = work[-1]
            descended = False
            for successor in pending:
                if successor not in index:
                    visit(successor)
                    work.append((successor, iter(successors[successor])))
                    descended = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if descended:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components
