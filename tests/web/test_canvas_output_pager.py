"""Nodes with several output images show one at a time, large, with a pager under it, in a real browser
against a real server over the tiny SD1.5-layout checkpoint: the UNet inspector's views and a SaveImage
batch. What the canvas drew is read by recording the 2D context's drawImage/fillText calls during a redraw,
so the sizes and labels asserted are those on screen; paging goes through the mouse and the keyboard."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .canvas_driver import CanvasPage
from .live_server import LiveServer, running, with_tiny_checkpoint

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 60_000
CHECKPOINT = "tiny-sd15.safetensors"
PROMPT = "a red fox in the snow"
INSPECTOR_VIEWS = ["overview", "feature maps: magnitude", "feature maps: PCA", "token heat maps", "statistics", "architecture"]
READABLE_SIDE = 400  # CSS pixels the longer side of a shown picture reaches at zoom 1
MAX_NODE_WIDTH = 540  # pictures grow the node to about 512 px, no wider
MAX_PICTURE_SIDE = 512  # node-output.js: pictures grow a node up to this many CSS pixels a side
MIN_PICTURE_HEIGHT = 240  # ... and a node with many widgets still gives its picture this much height
MAX_INSPECTOR_HEIGHT = 780  # its tall overview picture once made the node ~1020 px tall

# Redraws the canvas once while recording what the 2D context drew: the node's output images (their
# rectangles in client pixels) and the text drawn, with each text's position in client pixels.
_RECORD_DRAWING = """
(id) => {
  const { model, editor } = window.latentloom;
  const node = model.nodeById(id);
  const sources = new Set(node.display.images.map((image) => image.src));
  const box = editor.canvas.canvas.getBoundingClientRect();
  const ratio = window.devicePixelRatio;
  const toClient = (ctx, x, y) => {
    const p = ctx.getTransform().transformPoint(new DOMPoint(x, y));
    return [box.left + p.x / ratio, box.top + p.y / ratio];
  };
  const drawn = { images: [], texts: [] };
  const proto = CanvasRenderingContext2D.prototype;
  const { drawImage, fillText } = proto;
  proto.drawImage = function (image, x, y, w, h) {
    if (sources.has(image.src)) {
      const [left, top] = toClient(this, x, y);
      const [right, bottom] = toClient(this, x + w, y + h);
      drawn.images.push({ src: image.src, rect: [left, top, right - left, bottom - top] });
    }
    return drawImage.apply(this, arguments);
  };
  proto.fillText = function (text, x, y) {
    drawn.texts.push({ text: String(text), at: toClient(this, x, y) });
    return fillText.apply(this, arguments);
  };
  try {
    editor.canvas.draw(true, true);
  } finally {
    Object.assign(proto, { drawImage, fillText });
  }
  return { ...drawn, page: node.display.page, sources: node.display.images.map((image) => image.src),
           size: [node.size[0], node.size[1]] };
}
"""


@pytest.fixture(scope="module")
def checkpoint_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server whose models/checkpoints holds the tiny checkpoint."""
    with running(with_tiny_checkpoint(tmp_path_factory.mktemp("pager_server"), CHECKPOINT)) as server:
        yield server


@pytest.fixture
def canvas(context, checkpoint_server) -> Iterator[CanvasPage]:
    page = CanvasPage(context.new_page(), checkpoint_server.url).open()
    page.clear_graph()
    yield page
    assert page.errors == []


def loader_and_latent(canvas: CanvasPage, *, batch_size: int = 1) -> dict[str, int]:
    ids = {
        "loader": canvas.add_node("CheckpointLoader", (20, 40)),
        "latent": canvas.add_node("EmptyLatent", (20, 240)),
    }
    canvas.set_widget(ids["loader"], "ckpt_name", CHECKPOINT)
    canvas.set_widget(ids["latent"], "width", 64)
    canvas.set_widget(ids["latent"], "height", 64)
    canvas.set_widget(ids["latent"], "batch_size", batch_size)
    return ids


def run_and_show(canvas: CanvasPage, node_id: int, *, pictures: int = 2) -> None:
    """Queues the graph; once the node's pictures (at least ``pictures``) have loaded, pans so that the node's
    bottom is in view."""
    canvas.page.keyboard.press("Control+Enter")
    canvas.wait_for(
        f"""(() => {{
          const images = window.latentloom.model.nodeById({node_id})?.display.images ?? [];
          return images.length >= {pictures} && images.every((image) => image.naturalWidth > 0);
        }})()""",
        timeout_ms=RUN_TIMEOUT_MS,
    )
    canvas.page.wait_for_selector(".ll-queue-item.finished.success", timeout=RUN_TIMEOUT_MS)
    canvas.js(f"""() => {{
      const {{ model, editor }} = window.latentloom;
      const node = model.nodeById({node_id});
      const height = editor.element.getBoundingClientRect().height;
      editor.canvas.ds.offset = [0, Math.min(0, height - 20 - (node.pos[1] + node.size[1]))];
      editor.canvas.setDirty(true, true);
    }}""")


def drawing(canvas: CanvasPage, node_id: int) -> dict:
    return canvas.js(_RECORD_DRAWING, node_id)


def pager_label(drawn: dict) -> str:
    [label] = [text["text"] for text in drawn["texts"] if re.match(r"\d+ / \d+ · ", text["text"])]
    return label


def pager_button(drawn: dict, glyph: str) -> tuple[float, float]:
    [point] = [text["at"] for text in drawn["texts"] if text["text"] == glyph]
    return point[0], point[1]


def shown_image(drawn: dict) -> dict:
    """The one output image drawn (asserting that exactly one is), as {src, rect}."""
    assert len(drawn["images"]) == 1, drawn["images"]
    return drawn["images"][0]


def click_pager(canvas: CanvasPage, node_id: int, glyph: str) -> dict:
    canvas.click(pager_button(drawing(canvas, node_id), glyph))
    return drawing(canvas, node_id)


def open_viewer_on_shown_image(canvas: CanvasPage, node_id: int):
    """Double-clicks the picture in the node; returns the viewer's caption locator."""
    left, top, width, height = shown_image(drawing(canvas, node_id))["rect"]
    viewer = canvas.page.locator(".ll-viewer")
    # LiteGraph counts two presses as a double-click only within 300 ms of event time; retry on a busy machine.
    for _ in range(3):
        canvas.double_click((left + width / 2, top + height / 2))
        try:
            viewer.wait_for(timeout=3_000)
            canvas.wait_for("document.querySelector('.ll-viewer-image').naturalWidth > 0")
            return canvas.page.locator(".ll-viewer-caption")
        except PlaywrightTimeout:
            continue
    raise AssertionError("double-clicking the picture opened no viewer")


def viewer_source(canvas: CanvasPage) -> str:
    return canvas.page.locator(".ll-viewer-image").evaluate("(image) => image.src")


def test_inspector_shows_one_readable_picture_at_a_time_with_a_pager(canvas, artifacts):
    inspector = inspector_graph(canvas)
    run_and_show(canvas, inspector)
    views = canvas.js(f"() => window.latentloom.model.nodeById({inspector}).outputRefs.map((ref) => ref.view)")
    assert views == INSPECTOR_VIEWS

    first = drawing(canvas, inspector)
    image = shown_image(first)
    assert image["src"] == first["sources"][0]
    assert image["rect"][3] >= MIN_PICTURE_HEIGHT - 0.5  # the tall overview fills the picture's height
    assert first["size"][0] <= MAX_NODE_WIDTH
    assert pager_label(first) == "1 / 6 · overview"

    second = click_pager(canvas, inspector, "▶")
    assert shown_image(second)["src"] == second["sources"][1]
    assert pager_label(second) == "2 / 6 · feature maps: magnitude"
    assert second["size"] == first["size"]  # the node was sized for its tallest picture: paging never jumps

    canvas.page.keyboard.press("ArrowRight")  # the click selected the node; arrows page it
    canvas.page.keyboard.press("ArrowRight")
    heat_maps = drawing(canvas, inspector)
    assert pager_label(heat_maps) == "4 / 6 · token heat maps"
    assert shown_image(heat_maps)["src"] == heat_maps["sources"][3]
    assert max(shown_image(heat_maps)["rect"][2:]) >= READABLE_SIDE
    canvas.screenshot(artifacts / "17-inspector-pager.png")  # docs/images/inspector-in-node.png

    assert pager_label(click_pager(canvas, inspector, "◀")) == "3 / 6 · feature maps: PCA"
    canvas.page.keyboard.press("ArrowLeft")
    canvas.page.keyboard.press("ArrowLeft")
    canvas.page.keyboard.press("ArrowLeft")  # wraps around to the last view
    assert pager_label(drawing(canvas, inspector)) == "6 / 6 · architecture"
    canvas.page.keyboard.press("ArrowRight")
    canvas.page.keyboard.press("ArrowRight")
    canvas.page.keyboard.press("ArrowRight")

    caption = open_viewer_on_shown_image(canvas, inspector)
    sources = drawing(canvas, inspector)["sources"]
    assert viewer_source(canvas) == sources[2]
    assert caption.inner_text().startswith("feature maps: PCA (3/6)")
    canvas.screenshot(artifacts / "18-inspector-view-in-viewer.png")
    canvas.page.keyboard.press("ArrowRight")  # the viewer steps through all the node's pictures
    assert caption.inner_text().startswith("token heat maps (4/6)")
    assert viewer_source(canvas) == sources[3]
    canvas.page.keyboard.press("Escape")
    assert canvas.page.locator(".ll-viewer").count() == 0


def saved_batch(canvas: CanvasPage, *, batch_size: int) -> tuple[int, list[str]]:
    """Runs an empty latent batch through VAE Decode into Save Image; returns the save node and its files."""
    ids = loader_and_latent(canvas, batch_size=batch_size)
    decode = canvas.add_node("VAEDecode", (420, 40))
    canvas.connect(ids["latent"], 0, decode, "samples")
    canvas.connect(ids["loader"], 2, decode, "vae")
    save = canvas.add_node("SaveImage", (760, 40))
    canvas.connect(decode, 0, save, "images")
    run_and_show(canvas, save)
    files = canvas.js(f"() => window.latentloom.model.nodeById({save}).outputRefs.map((ref) => ref.filename)")
    assert len(files) == batch_size and len(set(files)) == batch_size
    return save, files


def inspector_graph(canvas: CanvasPage) -> int:
    """Checkpoint, prompt and a 64×64 latent into the UNet block inspector (step 2 of 4); returns the inspector."""
    ids = loader_and_latent(canvas)
    text = canvas.add_node("CLIPTextEncode", (20, 440))
    canvas.set_widget(text, "text", PROMPT)
    canvas.connect(ids["loader"], 1, text, "clip")
    inspector = canvas.add_node("UNetBlockInspector", (420, 40))
    canvas.connect(ids["loader"], 0, inspector, "model")
    canvas.connect(text, 0, inspector, "positive")
    canvas.connect(ids["latent"], 0, inspector, "latent")
    canvas.set_widget(inspector, "prompt_text", PROMPT)
    canvas.set_widget(inspector, "steps", 4)
    canvas.set_widget(inspector, "step", 2)
    return inspector


def test_a_saved_batch_pages_through_its_images(canvas, artifacts):
    save, files = saved_batch(canvas, batch_size=2)

    first = drawing(canvas, save)
    assert shown_image(first)["src"] == first["sources"][0]
    assert pager_label(first) == f"1 / 2 · {files[0]}"
    assert min(shown_image(first)["rect"][2:]) >= 200  # a 64 px image is drawn scaled up, not as a thumbnail

    second = click_pager(canvas, save, "▶")
    assert shown_image(second)["src"] == second["sources"][1]
    assert pager_label(second) == f"2 / 2 · {files[1]}"
    canvas.screenshot(artifacts / "19-saved-batch-pager.png")

    caption = open_viewer_on_shown_image(canvas, save)
    assert viewer_source(canvas) == second["sources"][1]
    assert caption.inner_text().startswith(f"{files[1]} (2/2)")
    canvas.page.keyboard.press("Escape")


def test_a_node_with_few_widgets_shows_a_tall_picture_tall(canvas):
    ids = loader_and_latent(canvas)
    canvas.set_widget(ids["latent"], "width", 128)
    canvas.set_widget(ids["latent"], "height", 384)
    decode = canvas.add_node("VAEDecode", (420, 40))
    canvas.connect(ids["latent"], 0, decode, "samples")
    canvas.connect(ids["loader"], 2, decode, "vae")
    save = canvas.add_node("SaveImage", (760, 40))
    canvas.connect(decode, 0, save, "images")
    run_and_show(canvas, save, pictures=1)
    left, top, width, height = shown_image(drawing(canvas, save))["rect"]
    assert height > READABLE_SIDE  # the inspector's smaller picture height is only for nodes full of widgets
    assert width / height == pytest.approx(128 / 384, rel=0.01)


def test_paging_in_the_viewer_moves_the_node_to_the_same_picture(canvas):
    save, files = saved_batch(canvas, batch_size=4)
    caption = open_viewer_on_shown_image(canvas, save)
    sources = drawing(canvas, save)["sources"]
    assert caption.inner_text().startswith(f"{files[0]} (1/4)")
    canvas.page.keyboard.press("ArrowRight")
    canvas.page.keyboard.press("ArrowRight")
    canvas.page.locator(".ll-viewer-next").click()  # the viewer's own ▶ button moves the node as well
    assert caption.inner_text().startswith(f"{files[3]} (4/4)")
    assert viewer_source(canvas) == sources[3]
    canvas.page.keyboard.press("Escape")
    assert canvas.page.locator(".ll-viewer").count() == 0

    after = drawing(canvas, save)
    assert after["page"] == 3
    assert pager_label(after) == f"4 / 4 · {files[3]}"
    assert shown_image(after)["src"] == sources[3]

    caption = open_viewer_on_shown_image(canvas, save)  # the viewer opens where the node now is
    assert caption.inner_text().startswith(f"{files[3]} (4/4)")
    canvas.page.locator(".ll-viewer-prev").click()
    canvas.page.keyboard.press("Escape")
    assert pager_label(drawing(canvas, save)) == f"3 / 4 · {files[2]}"


def test_open_image_in_the_node_menu_opens_the_picture_the_node_shows(canvas):
    save, files = saved_batch(canvas, batch_size=4)
    click_pager(canvas, save, "▶")
    third = click_pager(canvas, save, "▶")
    assert pager_label(third) == f"3 / 4 · {files[2]}"

    left, top, width, height = shown_image(third)["rect"]
    canvas.click((left + width / 2, top + height / 2), button="right")
    canvas.menu_entry("Open image").click()
    caption = canvas.page.locator(".ll-viewer-caption")
    caption.wait_for()
    assert viewer_source(canvas) == third["sources"][2]
    assert caption.inner_text().startswith(f"{files[2]} (3/4)")

    canvas.page.keyboard.press("ArrowRight")  # it pages through all the node's pictures, wrapping around
    canvas.page.keyboard.press("ArrowRight")
    assert viewer_source(canvas) == third["sources"][0]
    assert caption.inner_text().startswith(f"{files[0]} (1/4)")
    canvas.page.keyboard.press("Escape")
    assert pager_label(drawing(canvas, save)) == f"1 / 4 · {files[0]}"


def test_inspector_pictures_fit_a_box_so_the_node_stays_a_sensible_size(canvas):
    inspector = inspector_graph(canvas)
    run_and_show(canvas, inspector)
    naturals = canvas.js(f"""() => window.latentloom.model.nodeById({inspector}).display.images
      .map((image) => [image.naturalWidth, image.naturalHeight])""")
    tallest = max(range(len(naturals)), key=lambda i: naturals[i][1] / naturals[i][0])
    assert naturals[tallest][1] > MAX_PICTURE_SIDE  # a picture that would not fit unscaled (the overview)

    node_left, node_top, node_width, node_height = canvas.js(f"""() => {{
      const {{ model, editor }} = window.latentloom;
      const node = model.nodeById({inspector});
      const [x, y] = editor.canvas.ds.convertOffsetToCanvas(node.pos);
      const box = editor.element.getBoundingClientRect();
      return [box.left + x, box.top + y, node.size[0], node.size[1]];
    }}""")
    assert node_height < MAX_INSPECTOR_HEIGHT

    click_pager(canvas, inspector, "◀")
    click_pager(canvas, inspector, "▶")  # back on the first picture, with the node selected: arrows page it
    rects = []
    for index in range(len(naturals)):
        if index:
            canvas.page.keyboard.press("ArrowRight")
        drawn = drawing(canvas, inspector)
        assert drawn["page"] == index and drawn["size"] == [node_width, node_height]  # paging never resizes it
        rects.append(shown_image(drawn)["rect"])
    box_height = max(rect[3] for rect in rects)  # the tallest picture fills the height the node gives pictures
    assert MIN_PICTURE_HEIGHT - 0.5 <= box_height <= MAX_PICTURE_SIDE + 0.5
    for (left, top, width, height), (natural_width, natural_height) in zip(rects, naturals, strict=True):
        assert width <= MAX_PICTURE_SIDE + 0.5
        assert width / height == pytest.approx(natural_width / natural_height, rel=0.01)
        assert node_left <= left and left + width <= node_left + node_width
        assert node_top <= top and top + height <= node_top + node_height
        fills_width = width == pytest.approx(MAX_PICTURE_SIDE, abs=1)
        assert fills_width or height == pytest.approx(box_height, abs=0.5)  # as large as the room allows

    for _ in naturals:  # on to the tallest picture again
        if drawing(canvas, inspector)["page"] == tallest:
            break
        canvas.page.keyboard.press("ArrowRight")
    open_viewer_on_shown_image(canvas, inspector)
    shown = canvas.page.locator(".ll-viewer-image").evaluate("""(image) => {
      const rect = image.getBoundingClientRect();
      return { rect: [rect.left, rect.top, rect.width, rect.height],
               viewport: [window.innerWidth, window.innerHeight] };
    }""")
    left, top, width, height = shown["rect"]
    assert left >= 0 and top >= 0 and left + width <= shown["viewport"][0] and top + height <= shown["viewport"][1]
    assert width / height == pytest.approx(naturals[tallest][0] / naturals[tallest][1], rel=0.01)  # whole, not cropped
    assert height > box_height  # larger than in the node
    canvas.page.keyboard.press("Escape")

    canvas.js(f"""() => {{
      const node = window.latentloom.model.nodeById({inspector});
      node.setSize([node.size[0], node.size[1] + 200]);
      window.latentloom.editor.canvas.ds.offset = [0, -node.pos[1]];
    }}""")
    resized = drawing(canvas, inspector)
    assert resized["page"] == tallest
    assert shown_image(resized)["rect"][3] == pytest.approx(box_height + 200, abs=1)  # a taller node, a taller picture
