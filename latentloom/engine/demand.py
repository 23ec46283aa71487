"""On-demand scheduling: which node runs next when some inputs are evaluated only if their node asks.

Planning starts at the requested outputs and follows links backwards, skipping lazy links: what feeds a
lazy input is planned only when its consumer asks for it (``wait``). A node served from the cache needs
nothing behind it. Among the planned nodes whose planned sources are all finished, the one first in the
graph's topological order goes next, so a graph without lazy inputs runs exactly in the graph's order,
and a node that several consumers need (eager or lazy) is planned, and runs, once.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping

from latentloom.engine.graph import Graph


class DemandSchedule:
    """The planned nodes of one prompt run and the order they become ready in; used once."""

    def __init__(self, graph: Graph, *, lazy: Mapping[str, Collection[str]], served: Collection[str]) -> None:
        self._graph = graph
        self._lazy = lazy  # node id -> names of its linked lazy inputs
        self._served = served  # nodes whose result is known without running them (cache hits)
        self._rank = {node_id: index for index, node_id in enumerate(graph.nodes)}
        self._planned: set[str] = set()
        self._finished: set[str] = set()
        self._waiting: dict[str, set[str]] = {}  # planned node -> unfinished sources it waits for
        self._consumers: dict[str, set[str]] = {}  # source -> planned nodes waiting for it
        self._ready: list[tuple[int, str]] = []

    def require(self, node_ids: Iterable[str]) -> list[str]:
        """Plan these nodes and the eager sources behind them; returns the nodes planned just now."""
        added: list[str] = []
        stack = [n for n in node_ids if n not in self._planned]
        while stack:
            node_id = stack.pop()
            if node_id in self._planned:
                continue
            self._planned.add(node_id)
            added.append(node_id)
            sources = self.eager_sources(node_id)
            stack.extend(s for s in sources if s not in self._planned)
            self._waiting[node_id] = set()
            self._wait_on(node_id, sources)
        for node_id in added:
            if not self._waiting[node_id]:
                self._push(node_id)
        return added

    def wait(self, node_id: str, sources: Iterable[str]) -> list[str]:
        """Hold a visited node back until these sources (planned now if they were not) have finished.

        Returns the nodes planned just now. Asking only for finished sources is a bug in the caller: the
        node would be visited again with the same inputs forever.
        """
        sources = set(sources)
        added = self.require(sources)
        self._wait_on(node_id, sources)
        if not self._waiting[node_id]:
            raise RuntimeError(f"node {node_id} waits for {sorted(sources)}, which have all finished")
        return added

    def finish(self, node_id: str) -> None:
        """The node's result exists now: release the nodes that were waiting only for it."""
        self._finished.add(node_id)
        for consumer in self._consumers.pop(node_id, ()):
            waiting = self._waiting[consumer]
            waiting.discard(node_id)
            if not waiting:
                self._push(consumer)

    def next(self) -> str | None:
        """The ready node first in graph order, or None once every planned node has finished."""
        if self._ready:
            return heapq.heappop(self._ready)[1]
        stuck = sorted(self._planned - self._finished, key=self._rank.__getitem__)
        if stuck:
            raise RuntimeError(f"nodes {stuck} wait for sources that can never finish")
        return None

    def eager_sources(self, node_id: str) -> set[str]:
        """The distinct nodes feeding this node's eager inputs (none for a node served from the cache)."""
        if node_id in self._served:
            return set()
        lazy = self._lazy.get(node_id, ())
        return {link.source for name, link in self._graph.nodes[node_id].links.items() if name not in lazy}

    def _wait_on(self, node_id: str, sources: Iterable[str]) -> None:
        for source in sources:
            if source not in self._finished:
                self._waiting[node_id].add(source)
                self._consumers.setdefault(source, set()).add(node_id)

    def _push(self, node_id: str) -> None:
        heapq.heappush(self._ready, (self._rank[node_id], node_id))
