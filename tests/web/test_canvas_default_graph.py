"""A first visit with the real Stable Diffusion nodes: the default text-to-image graph appears with its
loader set to a checkpoint that exists, and Ctrl+Enter runs it (on the tiny random-weight demo
checkpoint) until the image shows in the Save Image node."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from latentloom.runtime.demo_checkpoint import DEMO_CHECKPOINT_NAME, write_demo_checkpoint
from latentloom.runtime.folders import ModelFolders

from .canvas_driver import CanvasPage
from .live_server import LiveServer, running

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def sd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("sd_server")
    write_demo_checkpoint(ModelFolders(base))
    with running(base) as server:
        yield server


@pytest.fixture
def first_visit(context, sd_server) -> CanvasPage:
    page = CanvasPage(context.new_page(), sd_server.url).open()
    yield page
    assert page.errors == []


def node_of_type(canvas: CanvasPage, node_type: str) -> int:
    return next(n["id"] for n in canvas.nodes() if n["type"] == node_type)


def test_a_first_visit_shows_the_default_text_to_image_graph(first_visit, artifacts):
    canvas = first_visit
    types = sorted(n["type"] for n in canvas.nodes())
    assert types == sorted(["CheckpointLoader", "CLIPTextEncode", "CLIPTextEncode", "EmptyLatent", "KSampler",
                            "VAEDecode", "SaveImage"])
    assert len(canvas.links()) == 9
    loader = node_of_type(canvas, "CheckpointLoader")
    assert canvas.widget_value(loader, "ckpt_name") == DEMO_CHECKPOINT_NAME
    canvas.screenshot(artifacts / "11-default-graph.png")


def test_ctrl_enter_runs_the_default_graph_into_the_save_node(first_visit, sd_server, artifacts):
    canvas = first_visit
    latent = node_of_type(canvas, "EmptyLatent")
    sampler = node_of_type(canvas, "KSampler")
    save = node_of_type(canvas, "SaveImage")
    # Small and short, so the CPU run takes seconds: still the default graph, end to end.
    canvas.set_widget(latent, "width", 128)
    canvas.set_widget(latent, "height", 128)
    canvas.set_widget(sampler, "steps", 3)
    canvas.click(canvas.empty_point(-200, -200))
    canvas.page.keyboard.press("Control+Enter")
    canvas.wait_for(
        f"(window.latentloom.model.nodeById({save}).display.images ?? []).some((i) => i.naturalWidth === 128)",
        timeout_ms=RUN_TIMEOUT_MS,
    )
    saved = sorted(sd_server.output_dir.rglob("*.png"))
    assert saved, "the Save Image node wrote no file"
    canvas.screenshot(artifacts / "12-default-graph-result.png")
