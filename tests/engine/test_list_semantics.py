"""ComfyUI's list semantics: list outputs fan out, shorter lists repeat their last item, input_is_list."""

from __future__ import annotations

from latentloom.api import NodeResult


def test_list_output_fans_out_downstream_nodes(harness, p):
    items = p.add("Range", count=3)
    ten = p.add("Const", value=10)
    total = p.add("Add", a=items.out(0), b=ten.out())
    p.add("Show", value=total.out())
    outcome = harness.run(p.build())
    assert [call["a"] for call in harness.nodes.add.calls] == [0, 1, 2]
    assert harness.nodes.show.count == 3
    assert outcome.ui_outputs == {"4": {"text": ["10", "11", "12"]}}


def test_non_list_output_of_a_list_node_is_one_item(harness, p):
    items = p.add("Range", count=3)
    p.add("Show", value=items.out(1))
    assert harness.run(p.build()).ui_outputs == {"2": {"text": ["3"]}}


def test_shorter_list_repeats_its_last_item(harness, p):
    three = p.add("Range", count=3)
    two = p.add("Range", count=2)
    p.add("Show", value=p.add("Add", a=three.out(0), b=two.out(0)).out())
    outcome = harness.run(p.build())
    assert [(c["a"], c["b"]) for c in harness.nodes.add.calls] == [(0, 0), (1, 1), (2, 1)]
    assert outcome.ui_outputs["4"] == {"text": ["0", "2", "3"]}


def test_input_is_list_node_receives_whole_lists_and_runs_once(harness, p):
    items = p.add("Range", count=4)
    p.add("Show", value=p.add("Collect", values=items.out(0), offset=10).out())
    outcome = harness.run(p.build())
    assert harness.nodes.collect.calls == [{"values": [0, 1, 2, 3], "offset": [10]}]
    assert outcome.ui_outputs["3"] == {"text": ["16"]}


def test_input_is_list_node_gets_single_values_as_one_item_lists(harness, p):
    p.add("Show", value=p.add("Collect", values=p.add("Const", value=5).out(), offset=1).out())
    harness.run(p.build())
    assert harness.nodes.collect.calls == [{"values": [5], "offset": [1]}]


def test_empty_list_runs_downstream_nodes_zero_times(harness, p):
    items = p.add("Range", count=0)
    p.add("Show", value=p.add("Add", a=items.out(0), b=items.out(1)).out())
    outcome = harness.run(p.build())
    assert outcome.status == "success"
    assert harness.nodes.add.count == 0 and harness.nodes.show.count == 0
    assert outcome.ui_outputs == {}


def test_lists_are_cached_like_any_result(harness, p):
    items = p.add("Range", count=3)
    p.add("Show", value=p.add("Add", a=items.out(0), b=items.out(1)).out())
    first = harness.run(p.build())
    second = harness.run(p.build())
    assert second.executed == [] and second.ui_outputs == first.ui_outputs == {"3": {"text": ["3", "4", "5"]}}


def test_list_output_that_is_not_a_list_is_a_node_error(harness, p):
    harness.nodes.range.fn = lambda ctx, count: (count, count)
    p.add("Show", value=p.add("Range", count=2).out())
    outcome = harness.run(p.build())
    assert outcome.status == "error" and outcome.error["node_id"] == "1"
    assert "list output" in outcome.error["exception_message"]


def test_interrupt_is_checked_between_list_items(harness, p):
    items = p.add("Range", count=5)
    p.add("Show", value=items.out(0))

    def show_then_interrupt_at_the_second_item(ctx, value):
        if harness.nodes.show.count == 2:
            harness.interrupt.set()
        return NodeResult(ui={"text": [repr(value)]})

    harness.nodes.show.fn = show_then_interrupt_at_the_second_item
    outcome = harness.run(p.build())
    assert outcome.status == "interrupted" and outcome.error["node_id"] == "2"
    assert harness.nodes.show.count == 2
    assert outcome.ui_outputs == {}
