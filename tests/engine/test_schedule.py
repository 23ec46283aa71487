"""Topological dissolve and cycle finding on plain dependency maps."""

from __future__ import annotations

import random

from latentloom.engine.schedule import find_cycles, topological_order


def positions(nodes) -> dict[str, int]:
    return {node: index for index, node in enumerate(nodes)}


def test_ready_nodes_run_in_prompt_order():
    dependencies = {"save": ["decode"], "decode": ["sample"], "sample": ["load", "enc"], "enc": ["load"], "load": []}
    order, blocked = topological_order(dependencies, position=positions(["load", "enc", "sample", "decode", "save"]))
    assert order == ["load", "enc", "sample", "decode", "save"] and blocked == []


def test_order_respects_every_dependency_of_a_random_dag():
    rng = random.Random(7)
    nodes = [str(i) for i in range(300)]
    dependencies = {n: sorted({nodes[j] for j in rng.sample(range(i), min(i, 3))}) for i, n in enumerate(nodes)}
    shuffled = nodes[:]
    rng.shuffle(shuffled)
    order, blocked = topological_order(dependencies, position=positions(shuffled))
    where = {node: index for index, node in enumerate(order)}
    assert blocked == [] and sorted(order) == sorted(nodes)
    assert all(where[source] < where[node] for node, sources in dependencies.items() for source in sources)


def test_nodes_on_or_after_a_cycle_are_blocked():
    dependencies = {"a": [], "b": ["a", "c"], "c": ["b"], "d": ["c"]}
    order, blocked = topological_order(dependencies, position=positions("abcd"))
    assert order == ["a"] and blocked == ["b", "c", "d"]
    assert find_cycles(dependencies, among=blocked, position=positions("abcd")) == [["b", "c"]]


def test_two_cycles_through_one_node_form_one_component():
    dependencies = {"a": ["b", "c"], "b": ["a"], "c": ["a"]}
    cycles = find_cycles(dependencies, among=["a", "b", "c"], position=positions("abc"))
    assert len(cycles) == 1
    cycle = cycles[0]
    assert cycle[0] == "a" and len(cycle) == 2 and cycle[1] in {"b", "c"}


def test_cycle_is_in_data_flow_order():
    # c reads b, b reads a, a reads c: data flows a -> b -> c -> a
    dependencies = {"a": ["c"], "b": ["a"], "c": ["b"]}
    assert find_cycles(dependencies, among=["a", "b", "c"], position=positions("abc")) == [["a", "b", "c"]]
