"""Our file format: load then save gives the same file, the JSON Schema holds, bad files say why."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from workflow_fixtures import CORPUS

import latentloom.workflow as W
from latentloom.workflow import (
    FORMAT_NAME,
    FORMAT_VERSION,
    NodeMode,
    Workflow,
    WorkflowFormatError,
    dump_workflow,
    load_workflow,
    save_workflow,
)

SCHEMA = W.workflow_json_schema()
COMFY_FILES = sorted((CORPUS / "comfyui").glob("*.json"))
OUR_FILES = sorted((CORPUS / "latentloom").glob("*.json"))


def _validate(data: dict) -> None:
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_the_schema_itself_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", OUR_FILES, ids=lambda p: p.name)
def test_load_then_save_gives_the_same_bytes(path, schemas):
    text = path.read_text(encoding="utf-8")
    assert dump_workflow(load_workflow(Path(path), schemas)) == text


@pytest.mark.parametrize("path", OUR_FILES, ids=lambda p: p.name)
def test_load_then_save_without_any_registry_is_also_unchanged(path, tmp_path):
    # Nothing is known: every type is missing, yet nothing is lost.
    target = tmp_path / "saved.json"
    save_workflow(load_workflow(Path(path)), target)
    assert json.loads(target.read_text(encoding="utf-8")) == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", OUR_FILES, ids=lambda p: p.name)
def test_our_corpus_files_satisfy_the_json_schema(path):
    _validate(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", COMFY_FILES, ids=lambda p: p.name)
def test_every_imported_comfy_file_saves_as_schema_valid_json_that_reloads_equal(path, schemas):
    workflow = load_workflow(Path(path), schemas)
    saved = json.loads(dump_workflow(workflow))
    _validate(saved)
    assert load_workflow(saved, schemas).to_json() == saved


def test_the_schema_rejects_a_positional_widget_list_and_an_unknown_mode():
    data = json.loads((CORPUS / "latentloom" / "portrait.json").read_text(encoding="utf-8"))
    data["nodes"][0]["widgets"] = ["dreamshaper_8.safetensors"]
    with pytest.raises(jsonschema.ValidationError):
        _validate(data)
    data["nodes"][0]["widgets"] = {"ckpt_name": "x"}
    data["nodes"][0]["mode"] = "paused"
    with pytest.raises(jsonschema.ValidationError):
        _validate(data)


def test_saved_nodes_carry_type_version_mode_and_widgets_by_name(schemas):
    workflow = load_workflow(CORPUS / "latentloom" / "portrait.json", schemas)
    sampler = workflow.node(6)
    assert sampler.widgets["steps"] == 24 and sampler.controls == {"seed": "randomize"}
    assert workflow.node(10).type_version == 2
    assert workflow.node(2).mode is NodeMode.BYPASSED and workflow.node(9).mode is NodeMode.MUTED
    assert workflow.node(3).input_socket("text").widget == "text"
    assert workflow.links[8].reroute == 1 and workflow.reroutes[0].link_ids == [9]
    top = workflow.to_json()
    assert (top["format"], top["version"], top["app_version"]) == (FORMAT_NAME, FORMAT_VERSION, "0.1.0")


def test_to_json_returns_a_copy_the_caller_may_change(schemas):
    workflow = load_workflow(CORPUS / "latentloom" / "portrait.json", schemas)
    data = workflow.to_json()
    data["nodes"][5]["widgets"]["steps"] = 99
    assert workflow.node(6).widgets["steps"] == 24


def test_a_new_workflow_round_trips_through_json():
    node = W.WorkflowNode(id=1, type="EmptyLatent", widgets={"width": 640})
    workflow = Workflow(nodes=[node], app_version="0.1.0")
    assert Workflow.from_json(workflow.to_json()) == workflow


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["nodes"][0].update(mode="paused"), "node 1.mode: expected one of"),
        (lambda d: d["nodes"][0].update(pos=[1]), "node 1.pos: expected 2 items"),
        (lambda d: d["nodes"][1].update(id=1), "two nodes have the id 1"),
        (lambda d: d["links"][0].update(to=[2]), "links[0].to: expected 2 items"),
        (lambda d: d.update(version=FORMAT_VERSION + 1), "newer than this LatentLoom reads"),
        (lambda d: d.update(version="1"), "must be a positive integer"),
        (lambda d: d.update(format="other-tool"), "unknown workflow \"format\""),
    ],
)
def test_a_malformed_file_says_where_and_what(change, message):
    data = json.loads((CORPUS / "latentloom" / "portrait.json").read_text(encoding="utf-8"))
    change(data)
    with pytest.raises(WorkflowFormatError, match=re.escape(message)):
        load_workflow(data)


def test_a_link_to_an_absent_node_is_kept_and_reported():
    data = json.loads((CORPUS / "latentloom" / "portrait.json").read_text(encoding="utf-8"))
    data["links"].append({"id": 99, "from": [42, 0], "to": [6, "model"], "type": "MODEL"})
    workflow = load_workflow(data)
    assert workflow.problems == ["link 99 refers to node 42, which is not in the workflow"]
    assert workflow.to_json()["links"][-1]["id"] == 99


def test_text_that_is_not_a_workflow_is_refused_with_the_accepted_shapes():
    with pytest.raises(WorkflowFormatError, match="LatentLoom workflow .* ComfyUI workflow .* API prompt"):
        load_workflow({"hello": "world"})
    with pytest.raises(WorkflowFormatError, match="not valid JSON"):
        load_workflow("{nope")
    with pytest.raises(WorkflowFormatError, match="pass its path as a pathlib.Path"):
        load_workflow("workflow.json")


def test_the_example_in_the_format_docs_is_a_valid_file():
    docs = Path(__file__).resolve().parents[2] / "docs" / "workflow-format.md"
    example = json.loads(docs.read_text(encoding="utf-8").split("```json\n", 1)[1].split("```", 1)[0])
    _validate(example)
    assert load_workflow(example).to_json() == example
