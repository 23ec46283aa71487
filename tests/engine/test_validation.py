"""validate_prompt: every problem kind, all reported at once, and robustness against hostile prompts."""

from __future__ import annotations

import math

import pytest

from latentloom.engine import GraphValidationError, Problem, validate_prompt

from .builder import PromptBuilder, txt2img
from .fakes import Nodes


@pytest.fixture
def registry():
    return Nodes().registry


def problems_of(prompt, registry, **kwargs) -> list[Problem]:
    with pytest.raises(GraphValidationError) as caught:
        validate_prompt(prompt, registry, **kwargs)
    return caught.value.problems


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


# ---- a valid prompt -------------------------------------------------------------------------------


def test_valid_prompt_gives_ordered_graph_with_coerced_literals(registry, p):
    txt2img(p)
    p.set(p.add("Const", value="7"), value="7")  # strings of numbers are coerced (unused node here)
    prompt = p.build()
    prompt["3"]["inputs"]["cfg"] = 8  # an int for a FLOAT widget
    graph = validate_prompt(prompt, registry)
    assert graph.order == ("1", "2", "3", "4")  # Const is not needed by any output
    assert graph.outputs == ("4",)
    assert graph.nodes["3"].literals["cfg"] == 8.0 and isinstance(graph.nodes["3"].literals["cfg"], float)
    assert graph.nodes["3"].links["model"].source == "1" and graph.nodes["3"].links["positive"].source == "2"
    assert graph.prompt is prompt


def test_graph_is_immutable(registry, p):
    txt2img(p)
    graph = validate_prompt(p.build(), registry)
    with pytest.raises(TypeError):
        graph.nodes["9"] = graph.nodes["1"]  # type: ignore[index]
    with pytest.raises(TypeError):
        graph.nodes["3"].literals["seed"] = 5  # type: ignore[index]
    with pytest.raises(AttributeError):
        graph.nodes["3"].class_type = "Other"  # type: ignore[misc]


def test_alias_resolves_to_canonical_class(registry, p):
    p.add("Show", value=p.add("CheckpointLoaderSimple", ckpt_name="a.ckpt").out())
    graph = validate_prompt(p.build(), registry)
    assert graph.nodes["1"].class_type == "Loader"


def test_unknown_keys_and_undeclared_inputs_are_ignored(registry, p):
    value = p.add("Const", value=1)
    p.add("Show", value=value.out())
    prompt = p.build()
    prompt["1"]["inputs"]["not_an_input"] = ["99", 0]
    prompt["1"]["is_changed"] = ["x"]
    graph = validate_prompt(prompt, registry)
    assert dict(graph.nodes["1"].literals) == {"value": 1}


def test_order_is_topological_and_otherwise_follows_the_prompt(registry, p):
    show = p.add("Show", node_id="a", value=["c", 0])
    p.add("Add", node_id="b", a=["d", 0], b=["e", 0])
    p.add("Add", node_id="c", a=["b", 0], b=["e", 0])
    p.add("Const", node_id="d", value=1)
    p.add("Const", node_id="e", value=2)
    graph = validate_prompt(p.build(), registry)
    assert graph.order == ("d", "e", "b", "c", show.id)


# ---- prompt-level problems ------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [None, [], "text", 3, [["1", {}]]])
def test_prompt_that_is_not_an_object(registry, prompt):
    problem = only(problems_of(prompt, registry))
    assert problem.kind == "invalid_prompt" and problem.node_id is None


def test_no_output_node(registry, p):
    p.add("Const", value=1)
    assert only(problems_of(p.build(), registry)).kind == "prompt_no_outputs"


def test_empty_prompt_has_no_outputs(registry):
    assert only(problems_of({}, registry)).kind == "prompt_no_outputs"


def test_malformed_node_entries_are_all_reported(registry, p):
    p.add("Show", value=p.add("Const", value=1).out())
    prompt = p.build()
    prompt["x"] = "not a node"
    prompt["y"] = {"inputs": {}}
    prompt["z"] = {"class_type": 5, "inputs": {}}
    prompt["w"] = {"class_type": "Const", "inputs": [1]}
    prompt[7] = {"class_type": "Const", "inputs": {"value": 1}}
    problems = problems_of(prompt, registry)
    assert [(p.node_id, p.kind) for p in problems] == [
        ("x", "invalid_prompt"),
        ("y", "missing_node_type"),
        ("z", "invalid_prompt"),
        ("w", "invalid_prompt"),
        (None, "invalid_prompt"),
    ]
    assert "7" in problems[-1].message


def test_unknown_node_type_is_reported_even_when_not_needed(registry, p):
    p.add("Show", value=p.add("Const", value=1).out())
    p.add("NoSuchNode", value=1)
    problem = only(problems_of(p.build(), registry))
    assert (problem.node_id, problem.class_type, problem.kind) == ("3", "NoSuchNode", "missing_node_type")


# ---- input problems -------------------------------------------------------------------------------


def test_required_input_missing(registry, p):
    p.add("Show", value=p.add("Add", a=p.add("Const", value=1).out()).out())
    problem = only(problems_of(p.build(), registry))
    assert (problem.node_id, problem.class_type, problem.input_name, problem.kind) == (
        "2",
        "Add",
        "b",
        "required_input_missing",
    )


def test_missing_optional_input_is_fine(registry, p):
    one = p.add("Const", value=1)
    p.add("Show", value=p.add("Add", a=one.out(), b=one.out()).out())
    assert "c" not in validate_prompt(p.build(), registry).nodes["2"].links


@pytest.mark.parametrize("link", [["1"], ["1", 0, 0], ["1", "0"], [None, 0], ["1", True], ["1", 0.0]])
def test_malformed_link(registry, p, link):
    p.add("Const", value=1)
    p.add("Show", value=link)
    problem = only(problems_of(p.build(), registry))
    assert (problem.node_id, problem.input_name, problem.kind) == ("2", "value", "bad_linked_input")


def test_integer_source_id_names_the_same_node(registry, p):
    p.add("Const", value=1)
    p.add("Show", value=[1, 0])
    assert validate_prompt(p.build(), registry).nodes["2"].links["value"].source == "1"


def test_link_to_missing_node(registry, p):
    p.add("Show", value=["42", 0])
    problem = only(problems_of(p.build(), registry))
    assert (problem.input_name, problem.kind) == ("value", "link_to_missing_node")
    assert "'42'" in problem.message


@pytest.mark.parametrize("index", [2, -1])
def test_link_to_missing_output(registry, p, index):
    p.add("Show", value=p.add("Loader", ckpt_name="a.ckpt").out(index))
    problem = only(problems_of(p.build(), registry))
    assert (problem.node_id, problem.kind) == ("2", "link_to_missing_output")
    assert "2 output(s)" in problem.message


def test_type_mismatch_across_a_link(registry, p):
    loader = p.add("Loader", ckpt_name="a.ckpt")
    enc = p.add("Encode", clip=loader.out(0), text="x")  # MODEL into CLIP
    p.add("Show", value=enc.out())
    problem = only(problems_of(p.build(), registry))
    assert (problem.node_id, problem.input_name, problem.kind) == ("2", "clip", "return_type_mismatch")
    assert "MODEL" in problem.message and "CLIP" in problem.message


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (-1001, "value_smaller_than_min"),
        (1001, "value_bigger_than_max"),
        ("1001", "value_bigger_than_max"),
        (1.5, "invalid_input_type"),
        ("seven", "invalid_input_type"),
        (True, "invalid_input_type"),
        ({"a": 1}, "invalid_input_type"),
        (math.nan, "invalid_input_type"),
        (math.inf, "invalid_input_type"),
    ],
)
def test_int_literal_problems(registry, p, value, kind):
    p.add("Show", value=p.add("Const", value=value).out())
    problem = only(problems_of(p.build(), registry))
    assert (problem.node_id, problem.class_type, problem.input_name, problem.kind) == ("1", "Const", "value", kind)


def test_float_literal_out_of_range_and_not_finite(registry, p):
    refs = txt2img(p)
    p.set(refs["sampler"], cfg=31.5)
    assert only(problems_of(p.build(), registry)).kind == "value_bigger_than_max"
    p.set(refs["sampler"], cfg=float("-inf"))
    assert only(problems_of(p.build(), registry)).kind == "invalid_input_type"


def test_combo_value_not_in_list(registry, p):
    p.add("Show", value=p.add("Loader", ckpt_name="c.ckpt").out())
    problem = only(problems_of(p.build(), registry))
    assert (problem.input_name, problem.kind) == ("ckpt_name", "value_not_in_list")
    assert "a.ckpt" in problem.message


def test_literal_for_a_link_only_input(registry, p):
    p.add("Show", value=p.add("Add", a=1, b=2).out())
    problems = problems_of(p.build(), registry)
    assert [(q.input_name, q.kind) for q in problems] == [("a", "invalid_input_type"), ("b", "invalid_input_type")]
    assert "link" in problems[0].message


def test_custom_validation_failed(registry, p):
    p.add("Checked", low=5, high=1)
    problem = only(problems_of(p.build(), registry))
    assert (problem.node_id, problem.kind, problem.message) == ("1", "custom_validation_failed", "low 5 is above high 1")


def test_custom_validation_runs_only_when_the_literals_are_valid(registry, p):
    p.add("Checked", low="x", high=1)
    assert only(problems_of(p.build(), registry)).kind == "invalid_input_type"


def test_all_problems_are_reported_at_once(registry, p):
    loader = p.add("Loader", ckpt_name="zzz")
    enc = p.add("Encode", clip=loader.out(0), text="x")
    sample = p.add("Sampler", model=loader.out(0), positive=enc.out(), seed=-1, steps=0, cfg=1, sampler_name="x")
    p.add("Save", samples=sample.out())
    p.add("Checked", low=9, high=1)
    found = {(q.node_id, q.class_type, q.input_name, q.kind) for q in problems_of(p.build(), registry)}
    assert found == {
        ("1", "Loader", "ckpt_name", "value_not_in_list"),
        ("2", "Encode", "clip", "return_type_mismatch"),
        ("3", "Sampler", "seed", "value_smaller_than_min"),
        ("3", "Sampler", "steps", "value_smaller_than_min"),
        ("3", "Sampler", "sampler_name", "value_not_in_list"),
        ("4", "Save", "filename_prefix", "required_input_missing"),
        ("5", "Checked", None, "custom_validation_failed"),
    }


def test_error_message_names_node_class_and_input(registry, p):
    p.add("Show", value=p.add("Const", value=5000).out())
    with pytest.raises(GraphValidationError, match=r"node 1 \(Const\), input 'value': value 5000 is bigger"):
        validate_prompt(p.build(), registry)


def test_dependent_outputs_name_the_outputs_that_need_a_node(registry, p):
    bad = p.add("Const", value=5000)
    p.add("Show", value=bad.out())
    p.add("Show", value=p.add("Add", a=bad.out(), b=bad.out()).out())
    p.add("Show", value=p.add("Const", value=1).out())
    with pytest.raises(GraphValidationError) as caught:
        validate_prompt(p.build(), registry)
    assert caught.value.dependent_outputs == {"1": ["2", "4"]}


# ---- cycles ---------------------------------------------------------------------------------------


def test_cycle_names_its_nodes_in_order(registry, p):
    p.add("Add", node_id="10", a=["12", 0], b=["11", 0])
    p.add("Add", node_id="11", a=["10", 0], b=["13", 0])
    p.add("Add", node_id="12", a=["13", 0], b=["13", 0])
    p.add("Const", node_id="13", value=1)
    p.add("Show", node_id="14", value=["11", 0])
    problems = problems_of(p.build(), registry)
    assert {q.node_id for q in problems} == {"10", "11"}
    assert all(q.kind == "dependency_cycle" for q in problems)
    assert problems[0].message == "dependency cycle: 10 -> 11 -> 10"


def test_self_loop_is_a_cycle(registry, p):
    p.add("Add", node_id="1", a=["1", 0], b=["2", 0])
    p.add("Const", node_id="2", value=1)
    p.add("Show", value=["1", 0])
    problem = only(problems_of(p.build(), registry))
    assert (problem.node_id, problem.kind, problem.message) == ("1", "dependency_cycle", "dependency cycle: 1 -> 1")


def test_two_separate_cycles_are_both_reported(registry, p):
    p.add("Add", node_id="a", a=["b", 0], b=["b", 0])
    p.add("Add", node_id="b", a=["a", 0], b=["a", 0])
    p.add("Add", node_id="c", a=["d", 0], b=["d", 0])
    p.add("Add", node_id="d", a=["c", 0], b=["c", 0])
    p.add("Show", value=["a", 0])
    p.add("Show", value=["c", 0])
    messages = sorted({q.message for q in problems_of(p.build(), registry)})
    assert messages == ["dependency cycle: a -> b -> a", "dependency cycle: c -> d -> c"]


# ---- partial execution ----------------------------------------------------------------------------


def test_explicit_outputs_keep_only_what_they_need(registry, p):
    first = p.add("Show", value=p.add("Const", value=1).out())
    p.add("Show", value=p.add("Const", value=5000).out())  # invalid, but not requested
    graph = validate_prompt(p.build(), registry, outputs=[first.id])
    assert graph.outputs == ("2",)
    assert graph.order == ("1", "2")


def test_explicit_output_may_be_any_node(registry, p):
    value = p.add("Const", value=1)
    p.add("Show", value=value.out())
    assert validate_prompt(p.build(), registry, outputs=["1"]).order == ("1",)


def test_unknown_explicit_output(registry, p):
    p.add("Show", value=p.add("Const", value=1).out())
    problem = only(problems_of(p.build(), registry, outputs=["2", "77"]))
    assert (problem.node_id, problem.kind) == ("77", "unknown_output_node")


def test_explicit_output_of_unknown_type_is_reported_once(registry, p):
    p.add("Fancy", value=1)
    problem = only(problems_of(p.build(), registry, outputs=["1"]))
    assert (problem.node_id, problem.kind) == ("1", "missing_node_type")


@pytest.mark.parametrize(("outputs", "kind"), [([], "prompt_no_outputs"), ("2", "invalid_prompt"), ([2], "invalid_prompt")])
def test_bad_explicit_outputs(registry, p, outputs, kind):
    p.add("Show", value=p.add("Const", value=1).out())
    assert only(problems_of(p.build(), registry, outputs=outputs)).kind == kind


# ---- hostile prompts ------------------------------------------------------------------------------


def test_very_long_chain_validates_without_recursion(registry):
    p = PromptBuilder()
    previous = p.add("Const", value=1)
    for _ in range(5_000):
        previous = p.add("Add", a=previous.out(), b=previous.out())
    p.add("Show", value=previous.out())
    graph = validate_prompt(p.prompt, registry)
    assert len(graph) == 5_002
    assert graph.order[0] == "1" and graph.order[-1] == "5002"


def test_very_long_cycle_is_found_without_recursion(registry):
    p = PromptBuilder()
    p.add("Add", node_id="0", a=["4999", 0], b=["4999", 0])
    for i in range(1, 5_000):
        p.add("Add", node_id=str(i), a=[str(i - 1), 0], b=[str(i - 1), 0])
    p.add("Show", value=["0", 0])
    problems = problems_of(p.prompt, registry)
    assert len(problems) == 5_000
    assert problems[0].message == (
        "dependency cycle: 0 -> 1 -> 2 -> 3 -> 4 -> 5 -> ... -> 4994 -> 4995 -> 4996 -> 4997 -> 4998 -> 4999 "
        "-> 0 (5000 nodes)"
    )


def test_deeply_nested_literal_is_refused_with_a_short_message(registry, p):
    nested: list = []
    for _ in range(50_000):
        nested = [nested, 0]
    p.add("Show", value=nested)
    problem = only(problems_of(p.prompt, registry))
    assert problem.kind == "bad_linked_input"
    assert len(problem.message) < 200


def test_huge_string_literal_message_stays_short(registry, p):
    p.add("Show", value=p.add("Loader", ckpt_name="x" * 1_000_000).out())
    assert len(only(problems_of(p.build(), registry)).message) < 2000
