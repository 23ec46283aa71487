"""DemandSchedule: graph order among ready nodes, lazy links planned only on demand, shared nodes once."""

from __future__ import annotations

import pytest

from latentloom.engine.demand import DemandSchedule
from latentloom.engine.graph import Graph, GraphNode, Link


def graph(links: dict[str, dict[str, str]]) -> Graph:
    """Nodes in the given (topological) order; ``links`` maps node -> input name -> source node."""
    nodes = [
        GraphNode(id=n, class_type="T", literals={}, links={k: Link(s, 0) for k, s in ins.items()}, position=i)
        for i, (n, ins) in enumerate(links.items())
    ]
    return Graph.build(nodes, outputs=(list(links)[-1],), prompt={})


def drain(schedule: DemandSchedule) -> list[str]:
    order = []
    while (node_id := schedule.next()) is not None:
        order.append(node_id)
        schedule.finish(node_id)
    return order


def test_without_lazy_links_nodes_come_in_graph_order():
    g = graph({"a": {}, "b": {}, "c": {"x": "b", "y": "a"}, "d": {"x": "c"}})
    schedule = DemandSchedule(g, lazy={}, served=set())
    assert sorted(schedule.require(["d"])) == ["a", "b", "c", "d"]
    assert drain(schedule) == ["a", "b", "c", "d"]


def test_lazy_sources_are_planned_only_when_asked_for():
    g = graph({"a": {}, "b": {}, "s": {"on_a": "a", "on_b": "b"}})
    schedule = DemandSchedule(g, lazy={"s": {"on_a", "on_b"}}, served=set())
    assert schedule.require(["s"]) == ["s"]
    assert schedule.next() == "s"
    assert schedule.wait("s", ["b"]) == ["b"]
    assert drain(schedule) == ["b", "s"]


def test_sources_asked_for_together_with_what_feeds_them_are_planned_once():
    g = graph({"b": {}, "a": {"x": "b"}, "s": {"on_a": "a", "on_b": "b"}})
    schedule = DemandSchedule(g, lazy={"s": {"on_a", "on_b"}}, served=set())
    schedule.require(["s"])
    assert schedule.next() == "s"
    assert sorted(schedule.wait("s", ["a", "b"])) == ["a", "b"]
    assert drain(schedule) == ["b", "a", "s"]


def test_served_nodes_need_nothing_behind_them():
    g = graph({"a": {}, "b": {"x": "a"}, "c": {"x": "b"}})
    schedule = DemandSchedule(g, lazy={}, served={"b"})
    assert sorted(schedule.require(["c"])) == ["b", "c"]
    assert drain(schedule) == ["b", "c"]


def test_waiting_only_for_finished_sources_is_refused():
    g = graph({"a": {}, "s": {"on_a": "a"}})
    schedule = DemandSchedule(g, lazy={"s": {"on_a"}}, served=set())
    schedule.require(["a", "s"])
    assert drain(schedule) == ["a", "s"]
    with pytest.raises(RuntimeError, match="have all finished"):
        schedule.wait("s", ["a"])
