"""Lazy inputs: what feeds them runs only when check_lazy_status asks for it (ComfyUI's semantics)."""

from __future__ import annotations

from latentloom.engine import OutputCache

from .harness import Harness


def switch_between_adds(p, *, select: bool):
    """Const 1 + Const 2 (true branch) and Const 10 + Const 20 (false branch) -> Switch -> Show."""
    on_true = p.add("Add", a=p.add("Const", value=1).out(), b=p.add("Const", value=2).out())
    on_false = p.add("Add", a=p.add("Const", value=10).out(), b=p.add("Const", value=20).out())
    chosen = p.add("Switch", select=select, on_true=on_true.out(), on_false=on_false.out())
    show = p.add("Show", value=chosen.out())
    return {"on_true": on_true, "on_false": on_false, "switch": chosen, "show": show}


def executing_nodes(harness: Harness) -> list[str]:
    return [data["node"] for data in harness.of_type("executing") if data["node"] is not None]


def test_switch_runs_only_the_chosen_branch(harness, p):
    nodes = switch_between_adds(p, select=False)
    outcome = harness.run(p.build())
    assert outcome.status == "success"
    assert outcome.ui_outputs == {nodes["show"].id: {"text": ["30"]}}
    assert [(c["a"], c["b"]) for c in harness.nodes.add.calls] == [(10, 20)]
    assert [c["value"] for c in harness.nodes.const.calls] == [10, 20]
    assert harness.nodes.switch.calls == [{"select": False, "on_true": None, "on_false": 30}]


def test_only_nodes_that_ran_report_executing(harness, p):
    nodes = switch_between_adds(p, select=True)
    outcome = harness.run(p.build())
    ran = ["1", "2", "3", nodes["switch"].id, nodes["show"].id]
    assert outcome.executed == ran
    assert executing_nodes(harness) == ran  # the switch once, although it was asked twice
    assert len(harness.nodes.switch.lazy_calls) == 2
    assert set(outcome.timings) == set(ran)


def test_check_lazy_status_sees_widgets_and_none_for_unevaluated_inputs(harness, p):
    switch_between_adds(p, select=True)
    harness.run(p.build())
    assert harness.nodes.switch.lazy_calls == [
        {"select": True, "on_true": None, "on_false": None},
        {"select": True, "on_true": 3, "on_false": None},
    ]


def test_node_needed_by_an_eager_and_a_lazy_consumer_runs_once(p):
    harness = Harness(cache=OutputCache(enabled=False))  # the result must be kept, not fetched again
    shared = p.add("Const", value=7)
    p.add("Show", value=shared.out())
    other = p.add("Const", value=8)
    chosen = p.add("Switch", select=True, on_true=shared.out(), on_false=other.out())
    p.add("Show", value=chosen.out())
    outcome = harness.run(p.build())
    assert [c["value"] for c in harness.nodes.const.calls] == [7]
    assert harness.nodes.switch.calls == [{"select": True, "on_true": 7, "on_false": None}]
    assert outcome.ui_outputs == {"2": {"text": ["7"]}, "5": {"text": ["7"]}}


def test_node_asked_for_by_two_lazy_consumers_runs_once(p):
    harness = Harness(cache=OutputCache(enabled=False))
    shared = p.add("Add", a=p.add("Const", value=2).out(), b=p.add("Const", value=3).out())
    unused = p.add("Const", value=99)
    first = p.add("Switch", select=True, on_true=shared.out(), on_false=unused.out())
    second = p.add("Switch", select=False, on_true=unused.out(), on_false=shared.out())
    p.add("Show", value=p.add("Add", a=first.out(), b=second.out()).out())
    outcome = harness.run(p.build())
    assert [c["value"] for c in harness.nodes.const.calls] == [2, 3]
    assert [(c["a"], c["b"]) for c in harness.nodes.add.calls] == [(2, 3), (5, 5)]
    assert outcome.ui_outputs == {"8": {"text": ["10"]}}


def test_second_round_of_check_lazy_status_asks_for_more(harness, p):
    zero = p.add("Const", value=0)
    four = p.add("Const", value=4)
    pick = p.add("FirstNonZero", first=zero.out(), second=four.out())
    p.add("Show", value=pick.out())
    outcome = harness.run(p.build())
    # Not asked a third time: no connected lazy input is left without a value.
    assert harness.nodes.first_nonzero.lazy_calls == [{"first": None, "second": None}, {"first": 0, "second": None}]
    assert harness.nodes.first_nonzero.calls == [{"first": 0, "second": 4}]
    assert outcome.executed == ["1", "2", "3", "4"]
    assert outcome.ui_outputs == {"4": {"text": ["4"]}}


def test_a_first_round_answer_that_suffices_leaves_the_rest_unrun(harness, p):
    five = p.add("Const", value=5)
    never = p.add("Const", value=4)
    p.add("Show", value=p.add("FirstNonZero", first=five.out(), second=never.out()).out())
    outcome = harness.run(p.build())
    assert [c["value"] for c in harness.nodes.const.calls] == [5]
    assert harness.nodes.first_nonzero.calls == [{"first": 5, "second": None}]
    assert outcome.ui_outputs == {"4": {"text": ["5"]}}


def test_default_check_lazy_status_evaluates_every_lazy_input(harness, p):
    total = p.add("LazySum", a=p.add("Const", value=2).out(), b=p.add("Const", value=3).out())
    p.add("Show", value=total.out())
    outcome = harness.run(p.build())
    assert harness.nodes.lazy_sum.calls == [{"a": 2, "b": 3}]
    assert harness.nodes.lazy_sum.lazy_calls == [{"a": None, "b": None}]
    assert outcome.ui_outputs == {"4": {"text": ["5"]}}


def test_input_is_list_node_gets_lists_with_none_for_unevaluated_inputs(harness, p):
    first = p.add("Range", count=3)
    second = p.add("Range", count=5)
    pick = p.add("ListPick", index=1, first=first.out(0), second=second.out(0))
    p.add("Show", value=pick.out())
    outcome = harness.run(p.build())
    assert harness.nodes.list_pick.lazy_calls == [
        {"index": [1], "first": [None], "second": [None]},
        {"index": [1], "first": [None], "second": [0, 1, 2, 3, 4]},
    ]
    assert [c["count"] for c in harness.nodes.range.calls] == [5]
    assert outcome.ui_outputs == {"4": {"text": ["10"]}}


def test_per_item_node_is_asked_once_per_item_and_gets_what_any_item_asked_for(harness, p):
    firsts = p.add("Range", count=2)  # items 0 and 1: only item 0 needs ``second``
    pick = p.add("FirstNonZero", first=firsts.out(0), second=p.add("Const", value=4).out())
    p.add("Show", value=pick.out())
    outcome = harness.run(p.build())
    assert harness.nodes.first_nonzero.lazy_calls == [
        {"first": None, "second": None},
        {"first": 0, "second": None},
        {"first": 1, "second": None},
    ]
    assert harness.nodes.first_nonzero.calls == [{"first": 0, "second": 4}, {"first": 1, "second": 4}]
    assert outcome.ui_outputs == {"4": {"text": ["4", "1"]}}


def test_rerun_is_served_from_the_cache_and_other_branch_runs_on_demand(harness, p):
    nodes = switch_between_adds(p, select=True)
    harness.run(p.build())
    again = harness.run(p.build())
    assert again.executed == [] and again.ui_outputs == {nodes["show"].id: {"text": ["3"]}}
    p.set(nodes["switch"], select=False)
    flipped = harness.run(p.build())
    assert flipped.executed == ["4", "5", "6", nodes["switch"].id, nodes["show"].id]
    assert flipped.ui_outputs == {nodes["show"].id: {"text": ["30"]}}
    p.set(nodes["switch"], select=True)
    back = harness.run(p.build())
    assert back.executed == [] and back.ui_outputs == {nodes["show"].id: {"text": ["3"]}}


def test_unrequested_lazy_input_receives_a_cached_value(harness, p):
    p.add("Show", value=p.add("Const", value=8).out())
    harness.run(p.build())
    p.add("Show", value=p.add("Switch", select=True, on_true=p.add("Const", value=1).out(), on_false=["1", 0]).out())
    harness.run(p.build())
    assert harness.nodes.switch.lazy_calls[0] == {"select": True, "on_true": None, "on_false": 8}
    assert harness.nodes.switch.calls == [{"select": True, "on_true": 1, "on_false": 8}]


def test_force_still_runs_only_what_is_asked_for(harness, p):
    switch_between_adds(p, select=True)
    harness.run(p.build())
    forced = harness.run(p.build(), force=True)
    assert forced.executed == ["1", "2", "3", "7", "8"]


def test_error_in_check_lazy_status_names_the_node(harness, p):
    def broken(**inputs):
        raise KeyError("select")

    harness.nodes.switch.lazy_status = broken
    nodes = switch_between_adds(p, select=True)
    outcome = harness.run(p.build())
    assert outcome.status == "error"
    assert outcome.error["node_id"] == nodes["switch"].id and outcome.error["node_type"] == "Switch"
    assert outcome.error["exception_message"] == "check_lazy_status: 'select'"
    assert outcome.error["exception_type"] == "KeyError"
    assert harness.nodes.const.count == 0 and harness.nodes.switch.count == 0


def test_asking_for_an_input_the_node_does_not_have_fails_the_node(harness, p):
    harness.nodes.switch.lazy_status = lambda **inputs: ["on_maybe"]
    nodes = switch_between_adds(p, select=True)
    outcome = harness.run(p.build())
    assert outcome.status == "error" and outcome.error["node_id"] == nodes["switch"].id
    assert "'on_maybe', but the node has no such input" in outcome.error["exception_message"]


def test_asking_for_an_unconnected_input_fails_the_node(harness, p):
    harness.nodes.first_nonzero.lazy_status = lambda **inputs: ["fallback"]
    p.add("Show", value=p.add("FirstNonZero", first=p.add("Const", value=1).out(), second=["1", 0]).out())
    outcome = harness.run(p.build())
    assert outcome.status == "error" and outcome.error["node_id"] == "2"
    assert "'fallback', but the node has no link to that input" in outcome.error["exception_message"]


def test_asking_for_inputs_that_have_values_is_ignored(harness, p):
    harness.nodes.switch.lazy_status = lambda select, on_true, on_false: ["select", "on_false"]
    nodes = switch_between_adds(p, select=False)
    outcome = harness.run(p.build())
    assert outcome.status == "success" and outcome.ui_outputs == {nodes["show"].id: {"text": ["30"]}}
    assert len(harness.nodes.switch.lazy_calls) == 2  # "on_false" had a value the second time: done


def test_check_lazy_status_must_return_a_list(harness, p):
    harness.nodes.switch.lazy_status = lambda **inputs: "on_true"
    switch_between_adds(p, select=True)
    outcome = harness.run(p.build())
    assert outcome.status == "error"
    assert "check_lazy_status: must return a list of input names" in outcome.error["exception_message"]


def test_interrupt_while_waiting_for_a_lazy_branch_names_the_node(harness, p):
    def interrupt_then_ask(select, on_true, on_false):
        harness.interrupt.set()
        return ["on_true"]

    harness.nodes.switch.lazy_status = interrupt_then_ask
    switch_between_adds(p, select=True)
    outcome = harness.run(p.build())
    assert outcome.status == "interrupted"
    assert outcome.executed == [] and harness.nodes.const.count == 0
    assert outcome.error["node_id"] == "1"  # stopped before the first node of the asked-for branch


def test_default_check_lazy_status_of_an_input_is_list_node_reads_none_lists(harness, p):
    harness.nodes.list_pick.lazy_status = None  # the NodeType default
    first = p.add("Range", count=2)
    second = p.add("Range", count=3)
    p.add("Show", value=p.add("ListPick", index=0, first=first.out(0), second=second.out(0)).out())
    outcome = harness.run(p.build())
    assert harness.nodes.list_pick.lazy_calls == [{"index": [0], "first": [None], "second": [None]}]
    assert harness.nodes.list_pick.calls == [{"index": [0], "first": [0, 1], "second": [0, 1, 2]}]
    assert outcome.ui_outputs == {"4": {"text": ["1"]}}
