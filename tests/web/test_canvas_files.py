"""Workflow files in a real browser: saving writes LatentLoom's format (which latentloom.workflow reads
back into the same prompt), opening it restores the graph, ComfyUI files and API prompts open, the API
prompt exports."""

from __future__ import annotations

import json

import pytest

from latentloom.workflow.model import Workflow
from latentloom.workflow.prompt import workflow_to_prompt

from .canvas_driver import CanvasPage

pytestmark = pytest.mark.browser


def edited_graph(canvas: CanvasPage) -> dict[str, int]:
    """A graph with a link, a bypassed node, a converted widget and edited values."""
    ids = {
        "color": canvas.add_node("TestSolidColor", (40, 60)),
        "invert": canvas.add_node("TestInvert", (400, 60)),
        "slow": canvas.add_node("TestSlowSteps", (400, 300)),
        "save": canvas.add_node("TestSaveImage", (760, 60)),
        "seed": canvas.add_node("TestSolidColor", (40, 520)),
    }
    canvas.connect(ids["color"], 0, ids["invert"], "image")
    canvas.connect(ids["invert"], 0, ids["slow"], "image")
    canvas.connect(ids["slow"], 0, ids["save"], "images")
    canvas.set_widget(ids["color"], "note", "dusk over water")
    canvas.set_widget(ids["color"], "seed", 1234)
    canvas.set_widget(ids["color"], "control_after_generate", "fixed")
    canvas.set_widget(ids["slow"], "sampler_name", "dpmpp_2m")
    canvas.js("""(ids) => {
      const { model } = window.latentloom;
      model.nodeById(ids.invert).mode = 4;  // bypassed
      model.markChanged();
    }""", ids)
    return ids


def save_file(canvas: CanvasPage, entry: str = "Save") -> dict:
    canvas.page.locator(".ll-menu-wrap > .ll-button").click()
    with canvas.page.expect_download() as download:
        canvas.page.locator(f".ll-menu-item[data-action='{entry}']").click()
    return json.loads(download.value.path().read_text())


def open_file(canvas: CanvasPage, path) -> None:
    canvas.page.locator(".ll-menu-wrap > .ll-button").click()
    with canvas.page.expect_file_chooser() as chooser:
        canvas.page.locator(".ll-menu-item[data-action='Open…']").click()
    chooser.value.set_files(str(path))


def test_save_writes_our_format_with_widget_values_by_name(canvas):
    ids = edited_graph(canvas)
    data = save_file(canvas)
    assert (data["format"], data["version"]) == ("latentloom-workflow", 1)
    nodes = {node["id"]: node for node in data["nodes"]}
    color = nodes[ids["color"]]
    assert color["type"] == "TestSolidColor"
    assert color["widgets"]["note"] == "dusk over water"
    assert color["widgets"]["seed"] == 1234
    assert color["controls"] == {"seed": "fixed"}
    assert nodes[ids["invert"]]["mode"] == "bypassed"
    assert nodes[ids["slow"]]["widgets"]["sampler_name"] == "dpmpp_2m"
    assert {"from": [ids["slow"], 0], "to": [ids["save"], "images"], "type": "TEST_IMAGE"} in [
        {k: link[k] for k in ("from", "to", "type")} for link in data["links"]
    ]


def test_the_python_library_reads_the_file_and_agrees_on_the_prompt(canvas, registry):
    edited_graph(canvas)
    data = save_file(canvas)
    workflow = Workflow.from_json(data)
    assert workflow.problems == []
    expected, problems = workflow_to_prompt(workflow, registry)
    assert problems == []
    assert canvas.prompt() == expected


def test_opening_a_saved_file_restores_the_graph(canvas, tmp_path):
    ids = edited_graph(canvas)
    canvas.js("""async (id) => {
      const { convertWidgetToInput } = await import('/app/widget-conversion.js');
      convertWidgetToInput(window.latentloom.model.nodeById(id), 'seed');
      window.latentloom.model.markChanged();
    }""", ids["seed"])
    before = (sorted(canvas.links()), canvas.nodes(), canvas.prompt())
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(save_file(canvas)))
    canvas.clear_graph()
    open_file(canvas, path)
    canvas.wait_for("window.latentloom.model.nodes.length === 5")
    assert (sorted(canvas.links()), canvas.nodes(), canvas.prompt()) == before
    assert canvas.js("() => window.latentloom.files.name") == "saved"
    hidden = canvas.js("(id) => window.latentloom.model.nodeById(id).widgets.filter((w) => w.hidden).map((w) => w.name)", ids["seed"])
    assert hidden == ["seed", "control_after_generate"]


def test_a_comfyui_workflow_file_opens_with_its_positional_values(canvas, tmp_path):
    comfy = {
        "last_node_id": 2, "last_link_id": 1, "version": 0.4, "config": {}, "extra": {}, "groups": [],
        "nodes": [
            {"id": 1, "type": "TestSolidColor", "pos": [0, 0], "size": [300, 400], "flags": {}, "order": 0, "mode": 0,
             "outputs": [{"name": "image", "type": "TEST_IMAGE", "links": [1], "slot_index": 0}],
             "properties": {}, "widgets_values": [10, 20, 30, 128, 96, 777, "increment", "plain", "from comfy"]},
            {"id": 2, "type": "TestSaveImage", "pos": [400, 0], "size": [300, 200], "flags": {}, "order": 1, "mode": 0,
             "inputs": [{"name": "images", "type": "TEST_IMAGE", "link": 1}],
             "properties": {}, "widgets_values": ["comfy"]},
        ],
        "links": [[1, 1, 0, 2, 0, "TEST_IMAGE"]],
    }
    path = tmp_path / "from_comfyui.json"
    path.write_text(json.dumps(comfy))
    open_file(canvas, path)
    canvas.wait_for("window.latentloom.model.nodes.length === 2")
    inputs = canvas.prompt()["1"]["inputs"]
    assert inputs == {"red": 10, "green": 20, "blue": 30, "width": 128, "height": 96, "seed": 777,
                      "pattern": "plain", "note": "from comfy"}
    assert canvas.widget_value(1, "control_after_generate") == "increment"
    assert canvas.prompt()["2"]["inputs"] == {"images": ["1", 0], "filename_prefix": "comfy"}


def test_an_api_prompt_file_opens_as_a_laid_out_graph(canvas, tmp_path):
    prompt = {
        "1": {"class_type": "TestSolidColor", "inputs": {"red": 1, "green": 2, "blue": 3, "width": 32, "height": 48,
                                                         "seed": 5, "pattern": "plain"}},
        "2": {"class_type": "TestSaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "api"}},
    }
    path = tmp_path / "api.json"
    path.write_text(json.dumps(prompt))
    open_file(canvas, path)
    canvas.wait_for("window.latentloom.model.nodes.length === 2")
    assert canvas.links() == [[1, 0, 2, "images"]]
    positions = {n["id"]: n["pos"] for n in canvas.nodes()}
    assert positions[1][0] < positions[2][0]  # sources to the left
    assert canvas.prompt()["2"]["inputs"] == {"images": ["1", 0], "filename_prefix": "api"}
    assert canvas.prompt()["1"]["inputs"]["width"] == 32


def test_a_file_that_is_no_workflow_is_refused_with_a_reason(canvas, tmp_path):
    path = tmp_path / "notes.json"
    path.write_text(json.dumps({"shopping": ["milk"]}))
    open_file(canvas, path)
    toast = canvas.page.locator(".ll-toast.error")
    toast.wait_for()
    assert toast.text_content()
    assert canvas.nodes() == []
    canvas.errors.clear()  # the refusal is reported on the console on purpose


def test_export_api_prompt_downloads_what_queue_would_send(canvas):
    edited_graph(canvas)
    exported = save_file(canvas, "Export API prompt")
    assert exported == canvas.prompt()
    assert exported[next(iter(exported))]["class_type"].startswith("Test")


def test_save_as_asks_for_a_name_and_saves_under_it(canvas):
    edited_graph(canvas)
    canvas.page.once("dialog", lambda dialog: dialog.accept("lighthouse at dusk"))
    canvas.page.locator(".ll-menu-wrap > .ll-button").click()
    with canvas.page.expect_download() as download:
        canvas.page.locator(".ll-menu-item[data-action='Save as…']").click()
    assert download.value.suggested_filename == "lighthouse at dusk.json"
    assert json.loads(download.value.path().read_text())["format"] == "latentloom-workflow"
    assert canvas.page.locator(".ll-workflow-name").text_content() == "lighthouse at dusk"


def test_new_starts_from_the_default_graph(canvas):
    canvas.add_node("TestShowText", (0, 0))
    canvas.page.locator(".ll-menu-wrap > .ll-button").click()
    canvas.page.locator(".ll-menu-item[data-action='New']").click()
    types = sorted(n["type"] for n in canvas.nodes())
    assert types == sorted(["CheckpointLoader", "CLIPTextEncode", "CLIPTextEncode", "EmptyLatent", "KSampler",
                            "VAEDecode", "SaveImage"])


def test_a_node_type_that_is_not_installed_is_kept_marked_and_named_when_queued(canvas, tmp_path):
    comfy = {
        "last_node_id": 1, "last_link_id": 0, "version": 0.4, "config": {}, "extra": {}, "groups": [], "links": [],
        "nodes": [{"id": 1, "type": "FancyUpscaler", "pos": [0, 0], "size": [300, 120], "flags": {}, "order": 0,
                   "mode": 0, "properties": {}, "widgets_values": [2.0, "lanczos"],
                   "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": None}]}],
    }
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(comfy))
    open_file(canvas, path)
    canvas.wait_for("window.latentloom.model.nodes.length === 1")
    assert canvas.js("() => window.latentloom.model.nodeById(1).has_errors") is True
    canvas.page.keyboard.press("Control+Enter")
    toast = canvas.page.locator(".ll-toast.error")
    toast.wait_for()
    assert "FancyUpscaler" in toast.text_content()
    assert canvas.js("() => window.latentloom.model.nodeById(1).has_errors") is True
    saved = save_file(canvas)
    assert saved["nodes"][0]["type"] == "FancyUpscaler"
    assert saved["nodes"][0]["unnamed_widgets"] == [2.0, "lanczos"]
