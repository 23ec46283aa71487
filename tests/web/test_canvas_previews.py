"""Live latent previews in a real browser: running the default graph (demo checkpoint) shows the sampler's
denoised latent, as a latent-sized latent2rgb JPEG, in the KSampler node while it samples."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from latentloom.runtime.demo_checkpoint import write_demo_checkpoint
from latentloom.runtime.folders import ModelFolders

from .canvas_driver import CanvasPage
from .live_server import LiveServer, running

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 60_000
SIZE = 128
STEPS = 3


@pytest.fixture(scope="module")
def sd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("preview_server")
    write_demo_checkpoint(ModelFolders(base))
    with running(base) as server:
        yield server


@pytest.fixture
def canvas(context, sd_server) -> Iterator[CanvasPage]:
    page = CanvasPage(context.new_page(), sd_server.url).open()
    yield page
    assert page.errors == []


def node_of_type(canvas: CanvasPage, node_type: str) -> int:
    return next(n["id"] for n in canvas.nodes() if n["type"] == node_type)


def test_the_sampler_node_shows_live_previews_while_the_default_graph_runs(canvas, artifacts):
    latent = node_of_type(canvas, "EmptyLatent")
    sampler = node_of_type(canvas, "KSampler")
    save = node_of_type(canvas, "SaveImage")
    canvas.set_widget(latent, "width", SIZE)
    canvas.set_widget(latent, "height", SIZE)
    canvas.set_widget(sampler, "steps", STEPS)
    canvas.click(canvas.empty_point(-200, -200))
    canvas.page.keyboard.press("Control+Enter")
    canvas.wait_for(
        f"(window.latentloom.model.nodeById({save}).display.images ?? []).some((i) => i.naturalWidth === {SIZE})",
        timeout_ms=RUN_TIMEOUT_MS,
    )
    shown = canvas.js(f"""() => {{
      const node = window.latentloom.model.nodeById({sampler});
      const preview = node.display.preview;
      return {{ count: node.previewCount ?? 0, width: preview?.naturalWidth, height: preview?.naturalHeight,
               src: preview?.src ?? "" }};
    }}""")
    # One preview a step (a frame may be superseded while it loads); latent2rgb previews are latent-sized.
    assert 1 <= shown["count"] <= STEPS
    assert (shown["width"], shown["height"]) == (SIZE // 8, SIZE // 8)
    assert shown["src"].startswith("blob:")
    canvas.screenshot(artifacts / "18-sampler-live-preview.png")
