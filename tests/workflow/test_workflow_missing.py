"""Missing node types never lose data: placeholders keep everything, saving writes it back unchanged,
and the report names each missing type with its node count."""

from __future__ import annotations

import pytest
from workflow_fixtures import CORPUS, read_corpus

from latentloom.api import ComboInput, NodeSchema, Output, StringInput
from latentloom.workflow import (
    MissingNodeTypes,
    NodeMode,
    comfy_ui_to_workflow,
    load_workflow,
    missing_node_types,
    missing_node_types_message,
    name_placeholder_widgets,
    require_node_types,
    workflow_to_comfy_ui,
)

STRING_FUNCTION = NodeSchema(
    type="StringFunction|pysssss",
    required=(
        ComboInput("action", choices=("append", "replace")),
        ComboInput("tidy_tags", choices=("yes", "no")),
        StringInput("text_a", multiline=True),
        StringInput("text_b", multiline=True),
    ),
    optional=(StringInput("text_c", multiline=True),),
    outputs=(Output("STRING"),),
)


def test_missing_types_are_counted_and_named_in_one_line(schemas):
    workflow = load_workflow(read_corpus("comfyui/custom_node.json"), schemas)
    counts = missing_node_types(workflow, schemas)
    assert counts == {"ShowText|pysssss": 2, "StringFunction|pysssss": 1}
    assert missing_node_types_message(counts) == (
        "missing node types: ShowText|pysssss (2 nodes), StringFunction|pysssss (1 node)"
    )
    assert missing_node_types_message({}) == ""


def test_editor_only_types_are_never_missing(schemas):
    workflow = load_workflow(read_corpus("comfyui/groups_reroutes_primitive.json"), schemas)
    assert missing_node_types(workflow, schemas) == {}


def test_a_placeholder_keeps_its_sockets_values_and_properties(schemas):
    workflow = load_workflow(read_corpus("comfyui/custom_node.json"), schemas)
    styler = workflow.node(10)
    assert styler.type == "StringFunction|pysssss"
    assert styler.widgets == {} and styler.unnamed_widgets == [
        "append", "yes", "a portrait of an old sailor", "dramatic lighting, film grain", "",
    ]
    assert [(s.name, s.type) for s in styler.outputs] == [("STRING", "STRING")]
    assert styler.properties["cnr_id"] == "comfyui-custom-scripts"
    show = workflow.node(11)
    assert [(s.name, s.type, s.widget) for s in show.inputs] == [("text", "STRING", "text")]


def test_placeholders_are_written_back_to_comfyui_unchanged(schemas):
    original = read_corpus("comfyui/custom_node.json")
    exported = workflow_to_comfy_ui(load_workflow(original, schemas), schemas)
    for node_id in (10, 11, 12):
        before = next(n for n in original["nodes"] if n["id"] == node_id)
        after = next(n for n in exported["nodes"] if n["id"] == node_id)
        for key in ("type", "widgets_values", "properties", "pos", "size", "mode"):
            assert after[key] == before[key], (node_id, key)
        assert [(s["name"], s["type"], s.get("link")) for s in after.get("inputs", [])] == [
            (s["name"], s["type"], s.get("link")) for s in before.get("inputs", [])
        ]
        assert [(s["name"], s["type"], s.get("links") or []) for s in after["outputs"]] == [
            (s["name"], s["type"], s.get("links") or []) for s in before["outputs"]
        ]


def test_a_run_is_refused_with_the_list_but_muted_missing_nodes_do_not_count(schemas):
    workflow = load_workflow(read_corpus("comfyui/custom_node.json"), schemas)
    with pytest.raises(MissingNodeTypes) as caught:
        require_node_types(workflow, schemas)
    assert str(caught.value) == (
        "missing node types: ShowText|pysssss (2 nodes), StringFunction|pysssss (1 node)"
    )
    for node_id in (10, 11):
        workflow.node(node_id).mode = NodeMode.MUTED
    workflow.node(12).mode = NodeMode.BYPASSED
    require_node_types(workflow, schemas)
    assert missing_node_types(workflow, schemas, running_only=True) == {}
    assert missing_node_types(workflow, schemas) == {"ShowText|pysssss": 2, "StringFunction|pysssss": 1}


def test_our_file_with_missing_types_loads_and_reports_both(schemas):
    workflow = load_workflow(CORPUS / "latentloom" / "portrait.json", schemas)
    assert missing_node_types_message(missing_node_types(workflow, schemas)) == (
        "missing node types: FaceRestore|facelib (1 node), PromptStyler (1 node)"
    )


def test_installing_the_type_later_names_the_kept_values(schemas):
    workflow = comfy_ui_to_workflow(read_corpus("comfyui/custom_node.json"), schemas)
    installed = schemas | {STRING_FUNCTION.type: STRING_FUNCTION}
    assert name_placeholder_widgets(workflow, installed) == []
    assert workflow.node(10).widgets == {
        "action": "append",
        "tidy_tags": "yes",
        "text_a": "a portrait of an old sailor",
        "text_b": "dramatic lighting, film grain",
        "text_c": "",
    }
    assert workflow.node(10).unnamed_widgets == []
    assert missing_node_types(workflow, installed) == {"ShowText|pysssss": 2}


def test_loading_our_file_with_the_type_installed_names_values_there_too(schemas):
    saved = load_workflow(read_corpus("comfyui/custom_node.json"), schemas).to_json()
    reloaded = load_workflow(saved, schemas | {STRING_FUNCTION.type: STRING_FUNCTION})
    assert reloaded.node(10).widgets["text_b"] == "dramatic lighting, film grain"
    assert load_workflow(saved, schemas).to_json() == saved  # still missing: nothing changes


def test_without_any_registry_every_node_is_a_lossless_placeholder():
    original = read_corpus("comfyui/txt2img.json")
    workflow = load_workflow(original)
    assert all(node.widgets == {} for node in workflow.nodes if node.type != "PrimitiveNode")
    assert workflow.node(3).unnamed_widgets == [156680208700286, "randomize", 20, 8, "euler", "normal", 1]
    exported = workflow_to_comfy_ui(workflow, None)
    assert [n["widgets_values"] for n in exported["nodes"] if "widgets_values" in n] == [
        n["widgets_values"] for n in original["nodes"] if "widgets_values" in n
    ]
