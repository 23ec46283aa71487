"""Format migrations move old files forward; node type upgrades move old nodes forward."""

from __future__ import annotations

import pytest
from workflow_fixtures import read_corpus

from latentloom.workflow import (
    FORMAT_NAME,
    FORMAT_VERSION,
    WorkflowFormatError,
    load_workflow,
    migrate,
    upgrade_nodes,
)
from latentloom.workflow.migrations import FORMAT_MIGRATIONS


def _rename_widgets_key(data: dict) -> dict:
    """A pretend version 1 -> 2 step: node "widgets" became "values"."""
    for node in data["nodes"]:
        if "widgets" in node:
            node["values"] = node.pop("widgets")
    return data


def _add_name(data: dict) -> dict:
    data["name"] = "untitled"
    return data


def test_every_older_format_version_has_a_step_up_to_the_current_one():
    # Bumping FORMAT_VERSION without adding its migration fails here.
    assert sorted(FORMAT_MIGRATIONS) == list(range(1, FORMAT_VERSION))


def test_migrations_run_in_order_from_the_file_version_to_the_target():
    old = read_corpus("latentloom/portrait.json")
    moved = migrate(old, migrations={1: _rename_widgets_key, 2: _add_name}, target=3)
    assert moved["version"] == 3 and moved["name"] == "untitled"
    assert moved["nodes"][0]["values"] == {"ckpt_name": "dreamshaper_8.safetensors"}
    assert old["version"] == 1 and "widgets" in old["nodes"][0]  # the input is not modified


def test_a_file_at_the_target_version_is_returned_as_it_is():
    data = read_corpus("latentloom/portrait.json")
    assert migrate(data, migrations={}, target=1) is data


def test_a_version_with_no_step_or_from_the_future_is_refused():
    data = read_corpus("latentloom/portrait.json")
    with pytest.raises(WorkflowFormatError, match="format version 1 has no migration to 2"):
        migrate(data, migrations={}, target=2)
    with pytest.raises(WorkflowFormatError, match="format version 5, newer than this LatentLoom reads"):
        migrate(dict(data, version=5))
    with pytest.raises(WorkflowFormatError, match=f"should be {FORMAT_NAME!r}"):
        migrate(dict(data, format="comfyui"))


def _sampler_v1_to_v2(node: dict) -> dict:
    """A pretend KSampler change: 'cfg' was renamed 'guidance'."""
    node["widgets"]["guidance"] = node["widgets"].pop("cfg")
    return node


def _sampler_v2_to_v3(node: dict) -> dict:
    node["widgets"].setdefault("eta", 0.0)
    return node


def test_node_upgrades_chain_and_report_each_node(schemas):
    workflow = load_workflow(read_corpus("comfyui/hires_fix.json"), schemas)
    report = upgrade_nodes(workflow, {"KSampler": {1: _sampler_v1_to_v2, 2: _sampler_v2_to_v3}})
    assert report == [
        "node 5 (KSampler): type version 1 -> 3",
        "node 7 (KSampler): type version 1 -> 3",
    ]
    sampler = workflow.node(7)
    assert sampler.type_version == 3
    assert sampler.widgets["guidance"] == 8 and sampler.widgets["eta"] == 0.0 and "cfg" not in sampler.widgets
    assert workflow.node(6).type_version == 1  # other types are left alone
    assert upgrade_nodes(workflow, {"KSampler": {1: _sampler_v1_to_v2}}) == []


def test_an_upgrade_may_not_change_what_node_it_is(schemas):
    workflow = load_workflow(read_corpus("comfyui/txt2img.json"), schemas)
    with pytest.raises(WorkflowFormatError, match="changed the node's id or type"):
        upgrade_nodes(workflow, {"VAEDecode": {1: lambda node: dict(node, type="Other")}})
