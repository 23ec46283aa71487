"""ComfyUI UI-format import (0.4 and 1) and export back: positional values meet input names."""

from __future__ import annotations

import copy

import pytest
from workflow_fixtures import CORPUS, read_corpus

from latentloom.workflow import (
    NodeMode,
    comfy_ui_to_workflow,
    load_workflow,
    upgrade_comfy_graph,
    workflow_to_comfy_ui,
)

COMFY_FILES = sorted(p.name for p in (CORPUS / "comfyui").glob("*.json") if not p.name.startswith("api_"))


def test_widgets_values_are_matched_to_input_names_with_the_seed_control(schemas):
    workflow = comfy_ui_to_workflow(read_corpus("comfyui/txt2img.json"), schemas)
    sampler = workflow.node(3)
    assert sampler.type == "KSampler"
    assert sampler.widgets == {
        "seed": 156680208700286,
        "steps": 20,
        "cfg": 8,
        "sampler_name": "euler",
        "scheduler": "normal",
        "denoise": 1,
    }
    assert sampler.controls == {"seed": "randomize"}
    assert workflow.node(5).widgets == {"width": 512, "height": 512, "batch_size": 1}


def test_comfy_class_names_become_ours_through_the_aliases(registry):
    workflow = comfy_ui_to_workflow(read_corpus("comfyui/txt2img.json"), registry)
    assert workflow.node(4).type == "CheckpointLoader"
    assert workflow.node(5).type == "EmptyLatent"
    assert workflow.node(4).widgets == {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}


def test_a_registry_and_a_plain_schema_mapping_import_alike(registry, schemas):
    for name in COMFY_FILES:
        data = read_corpus(f"comfyui/{name}")
        assert comfy_ui_to_workflow(data, registry).to_json() == comfy_ui_to_workflow(data, schemas).to_json()


def test_titles_colours_flags_and_sizes_come_across(schemas):
    workflow = comfy_ui_to_workflow(read_corpus("comfyui/txt2img.json"), schemas)
    negative = workflow.node(7)
    assert (negative.title, negative.color, negative.bgcolor) == ("Negative", "#322", "#533")
    assert negative.size == (425.27801513671875, 180.6060791015625)
    assert workflow.node(3).title is None  # ComfyUI writes a title only when it was changed
    collapsed = comfy_ui_to_workflow(read_corpus("comfyui/custom_node.json"), schemas).node(6)
    assert collapsed.flags == {"collapsed": True}


def test_the_upload_button_value_is_kept_unnamed(schemas):
    image = comfy_ui_to_workflow(read_corpus("comfyui/img2img.json"), schemas).node(2)
    assert image.widgets == {"image": "example.png"}
    assert image.unnamed_widgets == ["image"]


def test_muted_and_bypassed_modes_map_to_words(schemas):
    workflow = comfy_ui_to_workflow(read_corpus("comfyui/lora.json"), schemas)
    assert workflow.node(3).mode is NodeMode.BYPASSED
    assert workflow.node(10).mode is NodeMode.MUTED
    assert workflow.node(2).mode is NodeMode.NORMAL


def test_links_target_inputs_by_name(schemas):
    workflow = comfy_ui_to_workflow(read_corpus("comfyui/txt2img.json"), schemas)
    ends = {x.id: (x.from_node, x.from_slot, x.to_node, x.to_input, x.type) for x in workflow.links}
    assert ends[2] == (5, 0, 3, "latent_image", "LATENT")
    assert ends[8] == (4, 2, 8, "vae", "VAE")


def test_groups_reroute_nodes_native_reroutes_primitive_and_note(schemas):
    workflow = comfy_ui_to_workflow(read_corpus("comfyui/groups_reroutes_primitive.json"), schemas)
    assert [g.title for g in workflow.groups] == ["Model and prompts", "Sample and save"]
    assert workflow.groups[1].bounding == (860, 60, 980, 420) and workflow.groups[1].extra["locked"] is True
    assert workflow.node(2).type == "Reroute" and workflow.node(2).outputs[0].type == "VAE"
    primitive = workflow.node(6)
    assert (primitive.widgets, primitive.controls) == ({"value": 1234567890}, {"value": "fixed"})
    assert primitive.outputs[0].widget == "seed"
    assert workflow.node(7).input_socket("seed").widget == "seed"  # a widget converted to a socket
    assert workflow.node(11).widgets["text"].startswith("The seed is shared")
    assert [(r.id, r.pos, r.link_ids) for r in workflow.reroutes] == [(1, (850, 330), [7])]
    assert next(x for x in workflow.links if x.id == 7).reroute == 1
    assert "reroutes" not in workflow.extra and "linkExtensions" not in workflow.extra


def test_version_1_files_with_link_objects_and_widget_sockets_import(schemas):
    workflow = comfy_ui_to_workflow(read_corpus("comfyui/inpainting.json"), schemas)
    assert workflow.id == "3f6b0c1e-8d0a-4d3b-9a51-0d1c2b3a4e5f"
    encode = workflow.node(5)
    assert encode.widgets == {"grow_mask_by": 6}
    assert [s.name for s in encode.inputs] == ["pixels", "vae", "mask", "grow_mask_by"]
    mask_link = next(x for x in workflow.links if x.id == 7)
    assert (mask_link.from_node, mask_link.from_slot, mask_link.to_input) == (2, 1, "mask")
    assert workflow.extra["comfyui"] == {"revision": 0}


def test_upgrading_0_4_moves_links_reroutes_and_last_ids_to_the_version_1_shape():
    old = read_corpus("comfyui/groups_reroutes_primitive.json")
    new = upgrade_comfy_graph(old)
    assert new["version"] == 1
    assert new["links"][6] == {
        "id": 7,
        "origin_id": 4,
        "origin_slot": 0,
        "target_id": 7,
        "target_slot": 2,
        "type": "CONDITIONING",
        "parentId": 1,
    }
    assert new["reroutes"] == [{"id": 1, "pos": [850, 330], "linkIds": [7]}]
    assert new["state"] == {"lastGroupId": 2, "lastNodeId": 11, "lastLinkId": 12, "lastRerouteId": 1}
    assert "last_node_id" not in new and "linkExtensions" not in new["extra"]
    assert old["links"][6] == [7, 4, 0, 7, 2, "CONDITIONING"]  # the input is not modified


def test_a_version_1_graph_is_left_as_it_is_by_the_upgrade():
    data = read_corpus("comfyui/inpainting.json")
    assert upgrade_comfy_graph(data) == data


@pytest.mark.parametrize("name", COMFY_FILES)
def test_export_gives_back_the_values_links_and_modes_that_were_read(name, schemas):
    original = upgrade_comfy_graph(read_corpus(f"comfyui/{name}"))
    workflow = load_workflow(read_corpus(f"comfyui/{name}"), schemas)
    exported = upgrade_comfy_graph(workflow_to_comfy_ui(workflow, schemas))
    assert _nodes_by_id(exported) == _nodes_by_id(original)
    assert _links(exported) == _links(original)
    assert _group_titles(exported) == _group_titles(original)
    assert exported.get("reroutes", []) == original.get("reroutes", [])


def _nodes_by_id(graph: dict) -> dict:
    kept = ("type", "pos", "mode", "widgets_values", "title", "color", "bgcolor", "properties", "flags")
    return {
        node["id"]: {key: node[key] for key in kept if key in node and node[key] not in ([], None)}
        | {"inputs": [(s["name"], s.get("link")) for s in node.get("inputs", [])]}
        for node in graph["nodes"]
    }


def _links(graph: dict) -> list:
    fields = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type", "parentId")
    return sorted(tuple(x.get(f) for f in fields) for x in graph["links"])


def _group_titles(graph: dict) -> list:
    return [g["title"] for g in graph.get("groups", [])]


def test_export_has_every_field_comfyui_requires(schemas):
    # The required fields of ComfyUI's zod schema (zComfyWorkflow, zComfyNode) for version 0.4.
    exported = workflow_to_comfy_ui(load_workflow(read_corpus("comfyui/lora.json"), schemas), schemas)
    assert {"last_node_id", "last_link_id", "nodes", "links", "version"} <= set(exported)
    assert (exported["last_node_id"], exported["last_link_id"], exported["version"]) == (10, 14, 0.4)
    for node in exported["nodes"]:
        assert {"id", "type", "pos", "size", "flags", "order", "mode", "properties"} <= set(node)
    assert all(len(link) == 6 for link in exported["links"])
    orders = {node["id"]: node["order"] for node in exported["nodes"]}
    assert all(orders[origin] < orders[target] for _, origin, _, target, _, _ in exported["links"])


def test_export_uses_comfyui_class_names_and_keeps_our_metadata(schemas):
    workflow = load_workflow(CORPUS / "latentloom" / "portrait.json", schemas)
    exported = workflow_to_comfy_ui(workflow, schemas)
    types = {node["id"]: node["type"] for node in exported["nodes"]}
    assert (types[1], types[5], types[6]) == ("CheckpointLoaderSimple", "EmptyLatentImage", "KSampler")
    assert exported["extra"]["latentloom"] == {"format_version": 1, "app_version": "0.1.0"}
    sampler = next(n for n in exported["nodes"] if n["id"] == 6)
    assert sampler["widgets_values"] == [90210, "randomize", 24, 6.0, "dpmpp_2m", "karras", 1.0]
    styler = next(n for n in exported["nodes"] if n["id"] == 10)
    assert styler["properties"]["latentloom_type_version"] == 2


def test_our_workflow_survives_a_trip_through_the_comfy_format(schemas):
    workflow = load_workflow(CORPUS / "latentloom" / "portrait.json", schemas)
    back = comfy_ui_to_workflow(workflow_to_comfy_ui(workflow, schemas), schemas)
    assert back.to_json() == workflow.to_json()


def test_the_old_boolean_randomize_toggle_is_read_as_the_control_value(schemas):
    data = read_corpus("comfyui/txt2img.json")
    sampler = next(n for n in data["nodes"] if n["id"] == 3)
    sampler["widgets_values"] = [156680208700286, True, 20, 8, "euler", "normal", 1]
    node = comfy_ui_to_workflow(data, schemas).node(3)
    assert node.controls == {"seed": True} and node.widgets["steps"] == 20


def test_a_file_without_the_control_value_still_lines_up(schemas):
    data = read_corpus("comfyui/txt2img.json")
    next(n for n in data["nodes"] if n["id"] == 3)["widgets_values"] = [7, 20, 8, "euler", "normal", 1]
    node = comfy_ui_to_workflow(data, schemas).node(3)
    assert node.widgets == {
        "seed": 7, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal", "denoise": 1
    }
    assert node.controls == {}


def test_absent_widget_values_take_the_schema_defaults(schemas):
    data = read_corpus("comfyui/txt2img.json")
    save = next(n for n in data["nodes"] if n["id"] == 9)
    del save["widgets_values"]  # as in ComfyUI's own default graph
    workflow = comfy_ui_to_workflow(data, schemas)
    assert workflow.node(9).widgets == {"filename_prefix": "ComfyUI"}
    assert workflow.problems == []


def test_values_out_of_step_with_the_schema_are_kept_and_reported(schemas):
    data = read_corpus("comfyui/txt2img.json")
    next(n for n in data["nodes"] if n["id"] == 3)["widgets_values"] = [1, "fixed", "euler", 20]
    workflow = comfy_ui_to_workflow(data, schemas)
    assert workflow.node(3).widgets["steps"] == "euler"
    assert any("'steps' is not of type INT" in p for p in workflow.problems)
    assert any("no stored value for sampler_name, scheduler, denoise" in p for p in workflow.problems)


def test_legacy_vectors_and_dict_widget_values_are_read(schemas):
    data = read_corpus("comfyui/custom_node.json")
    styler = next(n for n in data["nodes"] if n["id"] == 10)
    styler["size"] = {"0": 400, "1": 300}
    styler["widgets_values"] = {"action": "append", "text_a": "x"}
    node = comfy_ui_to_workflow(data, schemas).node(10)
    assert node.size == (400, 300)
    assert node.widgets == {"action": "append", "text_a": "x"} and node.unnamed_widgets == []


def test_stale_and_broken_links_are_left_out_with_a_reason(schemas):
    data = copy.deepcopy(read_corpus("comfyui/txt2img.json"))
    data["links"].append([20, 4, 0, 3, 0, "MODEL"])  # the model input is connected by link 1
    data["links"].append([21, 99, 0, 3, 1, "CONDITIONING"])
    data["links"].append([22, 4, 0, 9, 5, "MODEL"])
    workflow = comfy_ui_to_workflow(data, schemas)
    assert sorted(x.id for x in workflow.links) == list(range(1, 10))
    assert len(workflow.problems) == 3
    assert "link 20 is not the one connected to node 3 input 0" in workflow.problems[0]
    assert "link 21 joins nodes 99 and 3; one is not in the file" in workflow.problems[1]
    assert "link 22 goes to input slot 5, which node 9 lacks" in workflow.problems[2]


def test_node_fields_without_a_place_are_kept_and_written_back(schemas):
    data = read_corpus("comfyui/img2img.json")
    data["nodes"][0]["showAdvanced"] = True
    data["models"] = [{"name": "d8.safetensors", "url": "https://example.com/d8", "directory": "checkpoints"}]
    workflow = comfy_ui_to_workflow(data, schemas)
    assert workflow.node(1).extra == {"showAdvanced": True}
    exported = workflow_to_comfy_ui(workflow, schemas)
    assert exported["nodes"][0]["showAdvanced"] is True
    assert exported["models"] == data["models"]
