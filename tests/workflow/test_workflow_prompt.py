"""The one conversion workflow -> API prompt, checked against prompts written by hand from ComfyUI's
rules (corpus/expected/*.prompt.json): muted and editor-only nodes left out, reroutes followed,
bypassed nodes passing an input of the same type, primitives becoming literals."""

from __future__ import annotations

import json
import random

import pytest
from workflow_fixtures import read_corpus

from latentloom.workflow import (
    Link,
    NodeMode,
    Socket,
    Workflow,
    WorkflowNode,
    load_workflow,
    workflow_to_comfy_api,
    workflow_to_prompt,
)

CASES = [
    ("comfyui/txt2img.json", "txt2img"),
    ("comfyui/img2img.json", "img2img"),
    ("comfyui/inpainting.json", "inpainting"),
    ("comfyui/lora.json", "lora"),
    ("comfyui/hires_fix.json", "hires_fix"),
    ("comfyui/groups_reroutes_primitive.json", "groups_reroutes_primitive"),
    ("comfyui/custom_node.json", "custom_node"),
    ("latentloom/portrait.json", "portrait"),
]


@pytest.mark.parametrize(("source", "expected"), CASES, ids=[c[1] for c in CASES])
def test_the_prompt_is_the_one_comfyui_would_send(source, expected, registry):
    prompt, _ = workflow_to_prompt(load_workflow(read_corpus(source), registry), registry)
    assert prompt == read_corpus(f"expected/{expected}.prompt.json")


def test_a_complete_workflow_converts_without_problems(schemas):
    for source in ("comfyui/txt2img.json", "comfyui/lora.json", "comfyui/groups_reroutes_primitive.json"):
        assert workflow_to_prompt(load_workflow(read_corpus(source), schemas), schemas)[1] == []


def test_missing_node_types_are_sent_under_their_names_and_reported(schemas):
    _, problems = workflow_to_prompt(load_workflow(read_corpus("comfyui/custom_node.json"), schemas), schemas)
    assert [str(p) for p in problems] == [
        "node 10 (StringFunction|pysssss): node type is missing from this installation",
        "node 11 (ShowText|pysssss): node type is missing from this installation",
        "node 12 (ShowText|pysssss): node type is missing from this installation",
    ]


def test_equal_workflows_give_byte_equal_prompts_whatever_the_node_order(schemas):
    data = read_corpus("comfyui/hires_fix.json")
    first = json.dumps(workflow_to_prompt(load_workflow(data, schemas), schemas)[0])
    shuffled = dict(data, nodes=random.Random(7).sample(data["nodes"], len(data["nodes"])))
    assert json.dumps(workflow_to_prompt(load_workflow(shuffled, schemas), schemas)[0]) == first
    assert list(json.loads(first)) == ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
    assert list(json.loads(first)["7"]["inputs"]) == [
        "model", "seed", "steps", "cfg", "sampler_name", "scheduler",
        "positive", "negative", "latent_image", "denoise",
    ]


def test_the_comfyui_export_uses_comfyui_class_names(schemas):
    prompt, _ = workflow_to_comfy_api(load_workflow(read_corpus("comfyui/txt2img.json"), schemas), schemas)
    expected = read_corpus("expected/txt2img.prompt.json")
    expected["4"]["class_type"] = "CheckpointLoaderSimple"
    expected["5"]["class_type"] = "EmptyLatentImage"
    assert prompt == expected


def test_a_primitive_value_overrides_the_widget_it_feeds(schemas):
    workflow = load_workflow(read_corpus("comfyui/groups_reroutes_primitive.json"), schemas)
    workflow.node(6).widgets["value"] = 5
    prompt, _ = workflow_to_prompt(workflow, schemas)
    assert prompt["7"]["inputs"]["seed"] == 5
    assert workflow.node(7).widgets["seed"] == 1234567890


def test_inputs_fed_by_a_muted_node_are_left_out_and_reported(schemas):
    workflow = load_workflow(read_corpus("comfyui/txt2img.json"), schemas)
    workflow.node(5).mode = NodeMode.MUTED
    prompt, problems = workflow_to_prompt(workflow, schemas)
    assert "5" not in prompt and "latent_image" not in prompt["3"]["inputs"]
    assert [str(p) for p in problems] == [
        "node 3 (KSampler), input 'latent_image': linked from muted node 5 (EmptyLatent); left out"
    ]


def test_an_unresolved_link_on_a_widget_falls_back_to_the_widget_value(schemas):
    workflow = load_workflow(read_corpus("comfyui/custom_node.json"), schemas)
    workflow.node(10).mode = NodeMode.MUTED
    prompt, _ = workflow_to_prompt(workflow, schemas)
    assert prompt["6"]["inputs"]["text"] == "a portrait of an old sailor, dramatic lighting, film grain"


def _bypass_graph(
    inputs: list[Socket], outputs: list[Socket], feeding: dict[str, int], *, slot: int
) -> Workflow:
    """Source node 1 (two MODEL outputs) -> bypassed node 2 (``inputs`` fed from the source slots in
    ``feeding``) -> node 3's 'model' input, from node 2's output ``slot``."""
    nodes = [
        WorkflowNode(id=1, type="Source", outputs=[Socket("A", "MODEL"), Socket("B", "MODEL")]),
        WorkflowNode(id=2, type="Filter", mode=NodeMode.BYPASSED, inputs=inputs, outputs=outputs),
        WorkflowNode(id=3, type="Sink", inputs=[Socket("model", "MODEL")]),
    ]
    links = [Link(i + 1, 1, source, 2, name, "MODEL") for i, (name, source) in enumerate(feeding.items())]
    links.append(Link(10, 2, slot, 3, "model", "MODEL"))
    return Workflow(nodes=nodes, links=links)


def test_bypass_prefers_the_input_in_the_same_slot():
    inputs = [Socket("a", "MODEL"), Socket("b", "MODEL")]
    outputs = [Socket("o0", "CLIP"), Socket("o1", "MODEL")]
    workflow = _bypass_graph(inputs, outputs, {"a": 0, "b": 1}, slot=1)
    assert workflow_to_prompt(workflow, None)[0]["3"]["inputs"] == {"model": ["1", 1]}


def test_bypass_then_takes_the_first_input_of_exactly_the_wanted_type_before_a_wildcard():
    inputs = [Socket("c", "CLIP"), Socket("any", "*"), Socket("m", "MODEL")]
    workflow = _bypass_graph(inputs, [Socket("out", "MODEL")], {"any": 0, "m": 1}, slot=0)
    assert workflow_to_prompt(workflow, None)[0]["3"]["inputs"] == {"model": ["1", 1]}


def test_bypass_falls_back_to_the_first_compatible_input():
    inputs = [Socket("c", "CLIP"), Socket("any", "*")]
    workflow = _bypass_graph(inputs, [Socket("out", "MODEL")], {"any": 0}, slot=0)
    assert workflow_to_prompt(workflow, None)[0]["3"]["inputs"] == {"model": ["1", 0]}


def test_bypass_without_a_matching_input_leaves_the_input_out():
    workflow = _bypass_graph([Socket("c", "CLIP")], [Socket("out", "MODEL")], {"c": 1}, slot=0)
    prompt, problems = workflow_to_prompt(workflow, None)
    assert prompt["3"]["inputs"] == {}
    assert "bypassed node 2 passes nothing of type MODEL on; left out" in str(problems[-1])


def test_a_list_literal_is_wrapped_so_it_does_not_read_as_a_link():
    workflow = Workflow(nodes=[WorkflowNode(id=1, type="Custom", widgets={"points": [3, 0], "name": "a"})])
    inputs = workflow_to_prompt(workflow, None)[0]["1"]["inputs"]
    assert inputs == {"points": {"__value__": [3, 0]}, "name": "a"}


def test_a_value_for_an_input_the_schema_lacks_is_left_out_and_reported(schemas):
    workflow = load_workflow(read_corpus("comfyui/txt2img.json"), schemas)
    workflow.node(3).widgets["eta"] = 0.5
    prompt, problems = workflow_to_prompt(workflow, schemas)
    assert "eta" not in prompt["3"]["inputs"]
    assert str(problems[0]) == (
        "node 3 (KSampler), input 'eta': a stored value for an input this node type does not take; left out"
    )


def test_a_loop_of_reroutes_is_reported_not_followed_forever():
    nodes = [
        WorkflowNode(id=1, type="Reroute", inputs=[Socket("", "*")], outputs=[Socket("", "*")]),
        WorkflowNode(id=2, type="Reroute", inputs=[Socket("", "*")], outputs=[Socket("", "*")]),
        WorkflowNode(id=3, type="Sink", inputs=[Socket("x", "*")]),
    ]
    links = [Link(1, 1, 0, 2, ""), Link(2, 2, 0, 1, ""), Link(3, 2, 0, 3, "x")]
    prompt, problems = workflow_to_prompt(Workflow(nodes=nodes, links=links), None)
    assert prompt == {"3": {"inputs": {}, "class_type": "Sink", "_meta": {"title": "Sink"}}}
    assert "loop" in str(problems[-1])



def test_an_input_the_file_has_no_value_for_takes_the_schema_default_as_on_the_canvas(schemas):
    # A node type that gained an input since the file was saved: the canvas shows the default, and the
    # prompt sends it, so the file runs the same from the command line as from the browser.
    stored = WorkflowNode(id=1, type="KSampler", widgets={"seed": 3, "steps": 4})
    prompt, problems = workflow_to_prompt(Workflow(nodes=[stored]), schemas)
    inputs = prompt["1"]["inputs"]
    assert inputs["seed"] == 3 and inputs["steps"] == 4
    ksampler = schemas.get("KSampler")
    assert inputs["cfg"] == ksampler.input("cfg").default and inputs["denoise"] == ksampler.input("denoise").default
    assert "model" not in inputs and "positive" not in inputs  # sockets have no default: validation names them
    assert problems == []
