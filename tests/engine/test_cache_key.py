"""Cache keys: content, not position; what makes two keys equal and what sets them apart."""

from __future__ import annotations

import enum
import hashlib
from types import MappingProxyType

from latentloom.api import ALWAYS_RUN, HiddenInput, IntInput, NodeSchema, Output
from latentloom.engine.cache_key import NodeKey, canonical_text, node_key
from latentloom.engine.graph import GraphNode, Link

from .fakes import FakeNode


def node(node_id: str, *, literals=None, links=None, class_type: str = "Const") -> GraphNode:
    return GraphNode(
        id=node_id,
        class_type=class_type,
        literals=MappingProxyType(literals or {}),
        links=MappingProxyType(dict(sorted((links or {}).items()))),
        position=0,
    )


def fake(*, fingerprint=None, hidden=()) -> FakeNode:
    schema = NodeSchema(type="Const", required=(IntInput("value"),), hidden=hidden, outputs=(Output("INT"),))
    return FakeNode(schema, lambda ctx, value: (value,), fingerprint=fingerprint)


def key(graph_node: GraphNode, node_type=None, *, ancestors=None, run_id="r1") -> NodeKey:
    return node_key(graph_node, node_type or fake(), ancestors=ancestors or {}, run_id=run_id)


def test_key_is_a_16_byte_digest_of_type_fingerprint_and_literals():
    k = key(node("1", literals={"value": 3}))
    expected = hashlib.blake2b(b"'Const'|None|{'value':3}", digest_size=16).digest()
    assert k == NodeKey(expected, volatile=False)


def test_same_content_under_different_ids_gives_the_same_key():
    assert key(node("1", literals={"value": 3})) == key(node("77", literals={"value": 3}), run_id="r2")


def test_literal_value_type_and_class_all_matter():
    base = key(node("1", literals={"value": 1}))
    assert key(node("1", literals={"value": 2})) != base
    assert key(node("1", literals={"value": 1.0})) != base
    assert key(node("1", literals={"value": True})) != base
    assert key(node("1", literals={"value": "1"})) != base
    assert key(node("1", literals={"value": 1}, class_type="Other")) != base


def test_fingerprint_changes_the_key():
    graph_node = node("1", literals={"value": 1})
    assert key(graph_node, fake(fingerprint=lambda **_: "mtime 1")) != key(
        graph_node, fake(fingerprint=lambda **_: "mtime 2")
    )


def test_fingerprint_receives_the_literals():
    seen = []
    key(node("1", literals={"value": 9}), fake(fingerprint=lambda **kw: seen.append(kw)))
    assert seen == [{"value": 9}]


def test_always_run_is_volatile_and_never_repeats():
    always = fake(fingerprint=lambda **_: ALWAYS_RUN)
    first = key(node("1"), always, run_id="r1")
    assert first.volatile
    assert key(node("1"), always, run_id="r2") != first
    assert key(node("2"), always, run_id="r1") != first


def test_ancestor_keys_flow_downstream():
    source_a = key(node("a", literals={"value": 1}))
    source_b = key(node("a", literals={"value": 2}))
    consumer = node("c", links={"x": Link("a", 0)})
    assert key(consumer, ancestors={"a": source_a}) != key(consumer, ancestors={"a": source_b})


def test_input_name_and_output_index_of_links_matter():
    source = key(node("a"))
    by_x = key(node("c", links={"x": Link("a", 0)}), ancestors={"a": source})
    by_y = key(node("c", links={"y": Link("a", 0)}), ancestors={"a": source})
    by_x1 = key(node("c", links={"x": Link("a", 1)}), ancestors={"a": source})
    assert len({by_x, by_y, by_x1}) == 3


def test_volatility_is_inherited():
    volatile_source = key(node("a"), fake(fingerprint=lambda **_: ALWAYS_RUN))
    assert key(node("c", links={"x": Link("a", 0)}), ancestors={"a": volatile_source}).volatile


def test_unique_id_input_puts_the_node_id_in_the_key():
    with_id = fake(hidden=(HiddenInput("uid", "UNIQUE_ID"),))
    assert key(node("1"), with_id) != key(node("2"), with_id)


def test_lone_surrogates_in_strings_do_not_break_keys():
    assert key(node("1", literals={"value": "\ud800"})) != key(node("1", literals={"value": "x"}))


def test_canonical_text_ignores_dict_order_but_not_list_order():
    assert canonical_text({"a": 1, "b": [1, 2]}) == canonical_text({"b": [1, 2], "a": 1})
    assert canonical_text([1, 2]) != canonical_text([2, 1])
    assert canonical_text({1, 2, 3}) == canonical_text({3, 2, 1})


def test_canonical_text_of_objects_with_a_stable_repr():
    class Color(enum.Enum):
        RED = 1

    assert canonical_text(Color.RED) == canonical_text(Color.RED)
    assert "Color.RED" in canonical_text(Color.RED)


def test_objects_showing_only_an_address_make_the_node_always_run():
    class Opaque:
        pass

    assert canonical_text(Opaque()) is None
    assert key(node("1"), fake(fingerprint=lambda **_: Opaque())).volatile


def test_overly_deep_fingerprint_makes_the_node_always_run():
    deep: list = []
    for _ in range(100):
        deep = [deep]
    assert canonical_text(deep) is None
