"""API prompts open in the editor: nodes, literal widgets and links come across, and converting back
gives the prompt that was read."""

from __future__ import annotations

import pytest
from workflow_fixtures import read_corpus

from latentloom.workflow import (
    WorkflowFormatError,
    api_prompt_to_workflow,
    load_workflow,
    workflow_to_comfy_api,
    workflow_to_prompt,
)


def test_a_comfyui_api_prompt_round_trips_through_a_workflow(schemas):
    prompt = read_corpus("comfyui/api_txt2img.json")
    workflow = load_workflow(prompt, schemas)
    assert workflow_to_comfy_api(workflow, schemas) == (prompt, [])


def test_prompt_nodes_take_our_names_widgets_titles_and_typed_links(schemas):
    workflow = api_prompt_to_workflow(read_corpus("comfyui/api_txt2img.json"), schemas)
    assert [n.id for n in workflow.nodes] == [3, 4, 5, 6, 7, 8, 9]
    assert workflow.node(4).type == "CheckpointLoader" and workflow.node(4).title == "Load Checkpoint"
    assert workflow.node(5).widgets == {"width": 512, "height": 512, "batch_size": 1}
    vae = next(x for x in workflow.links if x.to_node == 8 and x.to_input == "vae")
    assert (vae.from_node, vae.from_slot, vae.type) == (4, 2, "VAE")
    assert [s.name for s in workflow.node(3).inputs] == ["model", "positive", "negative", "latent_image"]
    assert [s.type for s in workflow.node(4).outputs] == ["MODEL", "CLIP", "VAE"]


def test_prompt_nodes_are_laid_out_in_columns_by_distance_from_the_sources(schemas):
    workflow = api_prompt_to_workflow(read_corpus("comfyui/api_txt2img.json"), schemas)
    x = {node.id: node.pos[0] for node in workflow.nodes}
    assert x[4] == x[5] == 0
    assert x[6] == x[7] > x[4]
    assert x[4] < x[6] < x[3] < x[8] < x[9]
    positions = [node.pos for node in workflow.nodes]
    assert len(set(positions)) == len(positions)


def test_a_linked_widget_becomes_a_converted_socket(schemas):
    latent_inputs = {"width": ["2", 0], "height": 768, "batch_size": 1}
    prompt = {
        "1": {"class_type": "EmptyLatentImage", "inputs": latent_inputs},
        "2": {"class_type": "SeedSource", "inputs": {}},
    }
    workflow = api_prompt_to_workflow(prompt, schemas)
    assert [(s.name, s.type, s.widget) for s in workflow.node(1).inputs] == [("width", "INT", "width")]
    assert [s.type for s in workflow.node(2).outputs] == ["*"]  # a missing type: sockets from its links
    assert workflow_to_prompt(workflow, schemas)[0]["1"]["inputs"] == latent_inputs


def test_wrapped_list_literals_are_unwrapped_and_wrapped_again():
    prompt = {"1": {"class_type": "Custom", "inputs": {"points": {"__value__": [[0, 1], [2, 3]]}}}}
    workflow = api_prompt_to_workflow(prompt, None)
    assert workflow.node(1).widgets == {"points": [[0, 1], [2, 3]]}
    assert workflow_to_prompt(workflow, None)[0]["1"]["inputs"] == {"points": {"__value__": [[0, 1], [2, 3]]}}


def test_a_post_prompt_body_is_accepted_as_well(schemas):
    body = {"prompt": read_corpus("comfyui/api_txt2img.json"), "client_id": "abc"}
    assert len(load_workflow(body, schemas).nodes) == 7


def test_a_link_to_a_node_not_in_the_prompt_is_reported(schemas):
    prompt = {"1": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0]}}}
    workflow = api_prompt_to_workflow(prompt, schemas)
    assert workflow.links == []
    assert workflow.problems == [
        "node 1: input 'samples' is linked from node '7', which is not in the prompt; left out"
    ]


def test_something_that_is_not_a_prompt_is_refused():
    with pytest.raises(WorkflowFormatError, match="API prompt"):
        api_prompt_to_workflow({"1": {"inputs": {}}}, None)
