"""Running in a real browser against a real server: queueing, progress, outputs in nodes, the queue
panel and gallery, errors, partial runs, reload restore, PNG drop, websocket reconnect."""

from __future__ import annotations

import base64
import json

import pytest
from PIL import Image

from .canvas_driver import CanvasPage, image_graph

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 60_000


def wait_for_image_in(canvas: CanvasPage, node_id: int) -> dict[str, int]:
    canvas.wait_for(
        f"(window.latentloom.model.nodeById({node_id})?.display.images ?? []).some((i) => i.naturalWidth > 0)",
        timeout_ms=RUN_TIMEOUT_MS,
    )
    return canvas.js(f"""() => {{
      const image = window.latentloom.model.nodeById({node_id}).display.images[0];
      return {{ width: image.naturalWidth, height: image.naturalHeight, src: image.src }};
    }}""")


def wait_for_history(canvas: CanvasPage, prompt_id: str) -> dict:
    """The history entry of a prompt once it has finished."""
    for _ in range(RUN_TIMEOUT_MS // 100):
        entry = canvas.js(f"async () => (await (await fetch('/api/history/{prompt_id}')).json())['{prompt_id}']")
        if entry:
            return entry
        canvas.page.wait_for_timeout(100)
    raise AssertionError(f"prompt {prompt_id} did not finish")


def test_queueing_shows_progress_and_the_saved_image_in_its_node(canvas, live_server, artifacts):
    ids = image_graph(canvas, steps=12, step_seconds=0.15)
    canvas.set_widget(ids["color"], "width", 96)
    canvas.set_widget(ids["color"], "control_after_generate", "fixed")
    canvas.page.keyboard.press("Control+Enter")
    canvas.wait_for(f"window.latentloom.runState.executingNode === '{ids['slow']}'", timeout_ms=RUN_TIMEOUT_MS)
    canvas.wait_for("(window.latentloom.runState.progress?.value ?? 0) >= 2", timeout_ms=RUN_TIMEOUT_MS)
    width = canvas.page.locator(".ll-progress-fill").evaluate("(bar) => parseFloat(bar.style.width)")
    assert width > 0
    canvas.screenshot(artifacts / "05-running-with-progress.png")
    image = wait_for_image_in(canvas, ids["save"])
    assert (image["width"], image["height"]) == (96, 64)
    saved = sorted(live_server.output_dir.glob("test_*.png"))
    assert saved and saved[-1].name in image["src"]
    assert Image.open(saved[-1]).size == (96, 64)
    canvas.page.wait_for_selector(".ll-gallery-thumb")
    canvas.page.wait_for_selector(".ll-queue-item.finished.success")
    canvas.screenshot(artifacts / "06-output-image-in-node.png")


def test_control_after_generate_applies_once_queued(canvas):
    ids = image_graph(canvas)
    canvas.set_widget(ids["color"], "seed", 41)
    canvas.set_widget(ids["color"], "control_after_generate", "increment")
    prompt_id = canvas.js("() => window.latentloom.app.queue()")["prompt_id"]
    assert canvas.widget_value(ids["color"], "seed") == 42
    entry = wait_for_history(canvas, prompt_id)
    # The prompt went out with the value from before the increment.
    assert entry["prompt"][2][str(ids["color"])]["inputs"]["seed"] == 41


def test_gallery_opens_the_full_size_viewer(canvas, artifacts):
    ids = image_graph(canvas)
    canvas.set_widget(ids["color"], "width", 256)
    canvas.set_widget(ids["color"], "height", 192)
    canvas.page.keyboard.press("Control+Enter")
    wait_for_image_in(canvas, ids["save"])
    canvas.page.locator(".ll-gallery-thumb").last.click()
    viewer = canvas.page.locator(".ll-viewer-image")
    viewer.wait_for()
    canvas.wait_for("document.querySelector('.ll-viewer-image').naturalWidth > 0")
    size = viewer.evaluate("(img) => [img.naturalWidth, img.naturalHeight]")
    assert size in ([256, 192], [96, 64], [64, 64])  # the newest entry's image, whichever test made it
    canvas.screenshot(artifacts / "07-image-viewer.png")
    canvas.page.keyboard.press("Escape")
    assert canvas.page.locator(".ll-viewer").count() == 0


def test_validation_errors_mark_the_offending_input(canvas, artifacts):
    save = canvas.add_node("TestSaveImage", (400, 100))  # its image input is not wired
    canvas.page.keyboard.press("Control+Enter")
    canvas.wait_for(f"window.latentloom.runState.errors.has('{save}')")
    error = canvas.js(f"""() => {{
      const error = window.latentloom.runState.errors.get('{save}');
      return {{ inputs: [...error.inputs.keys()], message: error.message }};
    }}""")
    assert error["inputs"] == ["images"]
    assert canvas.js(f"() => window.latentloom.model.nodeById({save}).has_errors") is True
    assert canvas.js(f"() => window.latentloom.model.nodeById({save}).inputs[0].hasErrors") is True
    canvas.page.wait_for_selector(".ll-toast.error")
    canvas.screenshot(artifacts / "08-validation-error.png")


def test_execution_error_highlights_the_failing_node_with_its_message(canvas, artifacts):
    color = canvas.add_node("TestSolidColor", (40, 60))
    failing = canvas.add_node("TestFailing", (420, 60))
    canvas.connect(color, 0, failing, "images")
    canvas.set_widget(failing, "code", 13)
    canvas.page.keyboard.press("Control+Enter")
    canvas.wait_for(f"window.latentloom.runState.errors.has('{failing}')", timeout_ms=RUN_TIMEOUT_MS)
    message = canvas.js(f"() => window.latentloom.runState.errors.get('{failing}').message")
    assert "refused on purpose with code 13" in message
    assert canvas.js(f"() => window.latentloom.model.nodeById({failing}).has_errors") is True
    canvas.screenshot(artifacts / "09-execution-error.png")


def test_run_up_to_this_node_runs_only_what_it_needs(canvas, live_server):
    ids = image_graph(canvas)
    text = canvas.add_node("TestShowText", (400, 420))
    canvas.set_widget(text, "text", "partial run")
    canvas.click(canvas.to_screen([460, 405]), button="right")  # the text node's title bar
    canvas.menu_entry("Run up to this node").click()
    canvas.wait_for(f"window.latentloom.model.nodeById({text}).display.text.length > 0", timeout_ms=RUN_TIMEOUT_MS)
    assert canvas.js(f"() => window.latentloom.model.nodeById({text}).display.text") == ["partial run (11 characters)"]
    history = canvas.js("async () => window.latentloom.api.getHistory()")
    newest = max(history.values(), key=lambda entry: entry["prompt"][0])
    assert newest["prompt"][4] == [str(text)]
    assert str(ids["save"]) not in newest["outputs"]


def test_interrupt_stops_the_running_prompt(canvas):
    image_graph(canvas, steps=200, step_seconds=0.05)
    canvas.page.keyboard.press("Control+Enter")
    canvas.wait_for("(window.latentloom.runState.progress?.value ?? 0) >= 1", timeout_ms=RUN_TIMEOUT_MS)
    canvas.page.locator(".ll-stop").click()
    canvas.wait_for("window.latentloom.runState.outcome === 'interrupted'", timeout_ms=RUN_TIMEOUT_MS)
    assert canvas.js("() => window.latentloom.runState.executingNode") is None


def test_the_graph_survives_a_reload(canvas, artifacts):
    ids = image_graph(canvas)
    canvas.set_widget(ids["color"], "note", "kept across reloads")
    canvas.set_widget(ids["color"], "pattern", "plain")
    before = (sorted(canvas.links()), canvas.nodes())
    canvas.reload()
    assert (sorted(canvas.links()), canvas.nodes()) == before
    assert canvas.widget_value(ids["color"], "note") == "kept across reloads"
    assert canvas.widget_value(ids["color"], "pattern") == "plain"
    canvas.screenshot(artifacts / "10-restored-after-reload.png")


def test_dropping_a_generated_png_opens_its_graph(canvas, live_server):
    ids = image_graph(canvas)
    canvas.set_widget(ids["color"], "red", 17)
    canvas.page.keyboard.press("Control+Enter")
    image = wait_for_image_in(canvas, ids["save"])
    filename = image["src"].split("filename=")[1].split("&")[0]
    png = (live_server.output_dir / filename).read_bytes()
    assert json.loads(Image.open(live_server.output_dir / filename).text["workflow"])["nodes"]
    canvas.clear_graph()
    assert canvas.nodes() == []
    canvas.js(
        """(data) => {
          const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
          const transfer = new DataTransfer();
          transfer.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
          const target = document.querySelector('#canvas-host');
          target.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }""",
        base64.b64encode(png).decode(),
    )
    canvas.wait_for("window.latentloom.model.nodes.length === 3")
    assert sorted(n["type"] for n in canvas.nodes()) == ["TestSaveImage", "TestSlowSteps", "TestSolidColor"]
    assert canvas.widget_value(ids["color"], "red") == 17
    assert canvas.js("() => window.latentloom.files.name") == "dropped"


def test_the_websocket_reconnects_by_itself(canvas):
    canvas.js("() => window.latentloom.api.socket.close()")
    canvas.wait_for("window.latentloom.runState.connection !== 'open'")
    canvas.wait_for("window.latentloom.runState.connection === 'open'", timeout_ms=10_000)
    assert canvas.page.locator(".ll-connection.open").count() == 1


def test_a_pending_prompt_can_be_cancelled_from_the_queue_panel(canvas):
    image_graph(canvas, steps=100, step_seconds=0.05)
    canvas.js("() => window.latentloom.app.queue()")
    canvas.set_widget(canvas.nodes()[0]["id"], "red", 3)  # a second, different prompt waits behind it
    second = canvas.js("() => window.latentloom.app.queue()")
    pending = canvas.page.locator(f".ll-queue-item.pending[data-prompt-id='{second['prompt_id']}']")
    pending.wait_for()
    pending.locator(".ll-queue-cancel").click()
    pending.wait_for(state="detached")
    queue = canvas.js("async () => window.latentloom.api.getQueue()")
    assert second["prompt_id"] not in [item[1] for item in queue["queue_pending"]]
    canvas.js("async () => window.latentloom.api.interrupt()")
