"""Canvas corners an audit found untested, in a real browser against a real server: socket colours on
slots and wires, dropping a JSON workflow file, the Queue button and the Download entry, and the outline
of the executing node. What the canvas drew is read by recording its 2D context during a redraw
(CanvasPage.record_drawing), so the colours asserted are the ones on screen."""

from __future__ import annotations

import json
import time

import pytest

from latentloom.workflow.model import Link, Workflow, WorkflowNode
from latentloom.workflow.prompt import workflow_to_prompt

from .canvas_driver import CanvasPage, image_graph

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 60_000
OUTLINE_PADDING = 6  # run-overlay.js strokeFor: the outline sits this far outside the node
POSITION_TOLERANCE = 1.5  # graph units; strokes sit on half pixels


def theme_colour(canvas: CanvasPage, socket_type: str) -> str:
    return canvas.js("async (type) => (await import('/app/theme.js')).socketColour(type)", socket_type)


def status_colour(canvas: CanvasPage, status: str) -> str:
    return canvas.js("async (status) => (await import('/app/theme.js')).STATUS_COLOURS[status]", status)


def slot_name(canvas: CanvasPage, node_id: int, *, socket_type: str, side: str) -> str:
    """The name of the node's first input or output (``side``) of ``socket_type``."""
    return canvas.js(
        "([id, type, side]) => window.latentloom.model.nodeById(id)[side].find((slot) => slot.type === type).name",
        [node_id, socket_type, side],
    )


def output_index(canvas: CanvasPage, node_id: int, name: str) -> int:
    return canvas.js(
        "([id, name]) => window.latentloom.model.nodeById(id).outputs.findIndex((slot) => slot.name === name)",
        [node_id, name],
    )


def slow_graph(canvas: CanvasPage, *, steps: int, step_seconds: float) -> dict[str, int]:
    """color -> slow steps -> save, its seed fixed so queueing changes nothing in the graph."""
    ids = image_graph(canvas, steps=steps, step_seconds=step_seconds)
    canvas.set_widget(ids["color"], "control_after_generate", "fixed")
    return ids


def wait_for_history(canvas: CanvasPage, prompt_id: str) -> dict:
    """The history entry of a prompt once it has finished (polled: wait_for's predicate cannot await)."""
    fetch_entry = f"async () => (await (await fetch('/api/history/{prompt_id}')).json())['{prompt_id}'] ?? null"
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while (entry := canvas.js(fetch_entry)) is None:
        assert time.monotonic() < deadline, f"prompt {prompt_id} never reached the history"
        canvas.page.wait_for_timeout(100)
    return entry


def outlines_around(drawn: dict, node: dict, *, colour: str) -> list[dict]:
    """The outlines stroked in ``colour`` that frame ``node`` (its body and title) at the overlay's padding."""
    (x, y), (width, height) = node["pos"], node["size"]
    framing = []
    for outline in drawn["outlines"]:
        left, top, w, h = outline["rect"]
        if outline["colour"] != colour:
            continue
        if (
            abs(left - (x - OUTLINE_PADDING)) < POSITION_TOLERANCE
            and abs(w - (width + 2 * OUTLINE_PADDING)) < POSITION_TOLERANCE
            and abs(top + h - (y + height + OUTLINE_PADDING)) < POSITION_TOLERANCE
            and top < y - OUTLINE_PADDING  # it takes in the title bar above the body
        ):
            framing.append(outline)
    return framing


def node_boxes(canvas: CanvasPage) -> dict[int, dict]:
    boxes = canvas.js("""() => Object.fromEntries(window.latentloom.model.nodes.map((node) => [node.id, {
      pos: [node.pos[0], node.pos[1]], size: [node.size[0], node.size[1]],
    }]))""")
    return {int(node_id): box for node_id, box in boxes.items()}


# -- 1. socket colours ------------------------------------------------------------------------------------


def test_slots_and_wires_take_their_socket_types_colour(canvas):
    ids = {
        "loader": canvas.add_node("CheckpointLoader", (20, 40)),
        "sampler": canvas.add_node("KSampler", (420, 40)),
        "decode": canvas.add_node("VAEDecode", (20, 520)),
        "save": canvas.add_node("SaveImage", (420, 520)),
    }
    model_out = slot_name(canvas, ids["loader"], socket_type="MODEL", side="outputs")
    image_out = slot_name(canvas, ids["decode"], socket_type="IMAGE", side="outputs")
    canvas.connect(ids["loader"], output_index(canvas, ids["loader"], model_out), ids["sampler"], "model")
    canvas.connect(ids["decode"], output_index(canvas, ids["decode"], image_out), ids["save"], "images")
    model_colour, image_colour = theme_colour(canvas, "MODEL"), theme_colour(canvas, "IMAGE")
    assert model_colour != image_colour

    drawn = canvas.record_drawing()

    slots = {int(node_id): sides for node_id, sides in drawn["slots"].items()}
    assert slots[ids["loader"]]["outputs"][model_out] == [model_colour]
    assert slots[ids["sampler"]]["inputs"]["model"] == [model_colour]
    assert slots[ids["decode"]]["outputs"][image_out] == [image_colour]
    assert slots[ids["save"]]["inputs"]["images"] == [image_colour]
    # An unconnected slot keeps its type's colour too (the VAE output has no wire here).
    vae_out = slot_name(canvas, ids["loader"], socket_type="VAE", side="outputs")
    assert slots[ids["loader"]]["outputs"][vae_out] == [theme_colour(canvas, "VAE")]
    links = {link["type"]: link["colours"] for link in drawn["links"]}
    assert set(links) == {"MODEL", "IMAGE"}
    # Each wire is stroked twice: a dark border under it, then its own colour.
    assert links["MODEL"][-1] == model_colour
    assert links["IMAGE"][-1] == image_colour


# -- 2. dropping a JSON workflow --------------------------------------------------------------------------


def test_dropping_a_json_workflow_file_opens_its_graph(canvas, registry):
    workflow = Workflow(
        nodes=[
            WorkflowNode(id=1, type="TestSolidColor", pos=(40, 60),
                         widgets={"red": 11, "green": 22, "blue": 33, "width": 48, "height": 40, "seed": 5,
                                  "pattern": "plain", "note": "dropped in"},
                         controls={"seed": "fixed"}),
            WorkflowNode(id=2, type="TestInvert", pos=(420, 60), widgets={"enabled": False}),
            WorkflowNode(id=3, type="TestSaveImage", pos=(760, 60), widgets={"filename_prefix": "dropped"}),
        ],
        links=[
            Link(id=1, from_node=1, from_slot=0, to_node=2, to_input="image", type="TEST_IMAGE"),
            Link(id=2, from_node=2, from_slot=0, to_node=3, to_input="images", type="TEST_IMAGE"),
        ],
    )
    expected_prompt, problems = workflow_to_prompt(workflow, registry)
    assert problems == []
    canvas.add_node("TestShowText", (0, 0))  # the dropped file replaces what was there

    canvas.js(
        """(text) => {
          const transfer = new DataTransfer();
          transfer.items.add(new File([text], 'night sky.json', { type: 'application/json' }));
          const target = document.querySelector('#canvas-host');
          target.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }""",
        json.dumps(workflow.to_json()),
    )

    canvas.wait_for("window.latentloom.model.nodes.length === 3")
    assert sorted(n["type"] for n in canvas.nodes()) == ["TestInvert", "TestSaveImage", "TestSolidColor"]
    assert sorted(canvas.links()) == [[1, 0, 2, "image"], [2, 0, 3, "images"]]
    assert canvas.prompt() == expected_prompt
    assert canvas.widget_value(1, "note") == "dropped in"
    assert canvas.widget_value(2, "enabled") is False
    assert canvas.js("() => window.latentloom.files.name") == "night sky"
    assert canvas.page.locator(".ll-workflow-name").text_content() == "night sky"


# -- 3. the Queue button and the Download entry -------------------------------------------------------------


def test_the_queue_button_submits_the_graph(canvas):
    ids = slow_graph(canvas, steps=2, step_seconds=0.01)
    canvas.set_widget(ids["color"], "red", 99)
    expected = canvas.prompt()
    page = canvas.page
    with page.expect_response(lambda r: r.url.endswith("/api/prompt") and r.request.method == "POST") as response:
        page.locator(".ll-queue-button").click()
    assert response.value.ok
    prompt_id = response.value.json()["prompt_id"]
    entry = wait_for_history(canvas, prompt_id)
    assert entry["prompt"][2] == expected
    assert entry["prompt"][2][str(ids["color"])]["inputs"]["red"] == 99
    page.wait_for_selector(f".ll-queue-item.finished.success[data-prompt-id='{prompt_id}']", timeout=RUN_TIMEOUT_MS)


def test_download_json_saves_the_current_graph_in_our_format(canvas, registry):
    ids = slow_graph(canvas, steps=3, step_seconds=0.01)
    canvas.set_widget(ids["color"], "note", "downloaded as it is")
    canvas.set_widget(ids["slow"], "sampler_name", "euler_ancestral")
    name_before = canvas.page.locator(".ll-workflow-name").text_content()
    canvas.page.locator(".ll-menu-wrap > .ll-button").click()
    with canvas.page.expect_download() as download:
        canvas.page.locator(".ll-menu-item[data-action='Download JSON']").click()
    assert download.value.suggested_filename == "workflow.json"
    data = json.loads(download.value.path().read_text())
    assert (data["format"], data["version"]) == ("latentloom-workflow", 1)
    nodes = {node["id"]: node for node in data["nodes"]}
    assert {node_id: node["type"] for node_id, node in nodes.items()} == {
        ids["color"]: "TestSolidColor", ids["slow"]: "TestSlowSteps", ids["save"]: "TestSaveImage",
    }
    assert nodes[ids["color"]]["widgets"]["note"] == "downloaded as it is"
    assert nodes[ids["slow"]]["widgets"]["sampler_name"] == "euler_ancestral"
    assert sorted((link["from"], link["to"]) for link in data["links"]) == sorted([
        ([ids["color"], 0], [ids["slow"], "image"]), ([ids["slow"], 0], [ids["save"], "images"]),
    ])
    workflow = Workflow.from_json(data)
    assert workflow.problems == []
    assert workflow_to_prompt(workflow, registry) == (canvas.prompt(), [])
    # A download is a copy: the graph still counts as changed since it was last saved.
    assert canvas.page.locator(".ll-workflow-name").text_content() == name_before
    assert name_before.endswith("•")


# -- 4. the executing node's outline ----------------------------------------------------------------------


def test_the_executing_node_is_outlined_until_the_run_ends(canvas, artifacts):
    ids = slow_graph(canvas, steps=60, step_seconds=0.1)
    executing = status_colour(canvas, "executing")
    canvas.page.keyboard.press("Control+Enter")
    canvas.wait_for(f"window.latentloom.runState.executingNode === '{ids['slow']}'", timeout_ms=RUN_TIMEOUT_MS)

    drawn = canvas.record_drawing()
    boxes = node_boxes(canvas)
    still_running = canvas.js(f"() => window.latentloom.runState.executingNode === '{ids['slow']}'")
    canvas.screenshot(artifacts / "corners-executing-node-outline.png")
    assert still_running, "the slow node finished before the drawing was recorded"
    outline = outlines_around(drawn, boxes[ids["slow"]], colour=executing)
    assert len(outline) == 1
    assert outline[0]["lineWidth"] == 3
    assert outlines_around(drawn, boxes[ids["color"]], colour=executing) == []
    assert outlines_around(drawn, boxes[ids["save"]], colour=executing) == []

    canvas.wait_for("window.latentloom.runState.executingNode === null && window.latentloom.runState.promptId === null",
                    timeout_ms=RUN_TIMEOUT_MS)
    after = canvas.record_drawing()
    assert [o for o in after["outlines"] if o["colour"] == executing] == []
