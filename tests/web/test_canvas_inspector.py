"""The UNet inspector nodes in a real browser against a real server over the tiny SD1.5-layout checkpoint:
their pictures and a compact report summary show inside the node, readable at zoom 1, and a double-click
on the summary opens the full report (architecture table, per-block statistics, tokens, per-step table)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .canvas_driver import CanvasPage
from .live_server import LiveServer, running, with_tiny_checkpoint

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 60_000
CHECKPOINT = "tiny-sd15.safetensors"
PROMPT = "a red fox in the snow"
PROMPT_WORDS = ["a", "red", "fox", "in", "the", "snow"]
HINT = "⤢ double-click for the full report"
SUMMARY_FONT = "12px ui-monospace, Menlo, Consolas, monospace"  # node-output.js draws text in it


@pytest.fixture(scope="module")
def inspector_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server whose models/checkpoints holds the tiny checkpoint."""
    with running(with_tiny_checkpoint(tmp_path_factory.mktemp("inspector_server"), CHECKPOINT)) as server:
        yield server


@pytest.fixture
def canvas(context, inspector_server) -> Iterator[CanvasPage]:
    page = CanvasPage(context.new_page(), inspector_server.url).open()
    page.clear_graph()
    yield page
    assert page.errors == []


def run_module(page: CanvasPage, module: str, body: str, arg=None):
    """Evaluates `body` (a function of (m, arg)) with the app module /app/<module>.js as `m`."""
    return page.js(f"async (arg) => {{ const m = await import('/app/{module}.js'); return ({body})(m, arg); }}", arg)


def text_and_latent(canvas: CanvasPage) -> dict[str, int]:
    """Load Checkpoint -> CLIP Text Encode (the prompt, and an empty negative) and an empty 64x64 latent."""
    ids = {
        "loader": canvas.add_node("CheckpointLoader", (20, 40)),
        "text": canvas.add_node("CLIPTextEncode", (20, 220)),
        "negative": canvas.add_node("CLIPTextEncode", (20, 420)),
        "latent": canvas.add_node("EmptyLatent", (20, 620)),
    }
    canvas.set_widget(ids["loader"], "ckpt_name", CHECKPOINT)
    canvas.set_widget(ids["text"], "text", PROMPT)
    canvas.connect(ids["loader"], 1, ids["text"], "clip")
    canvas.connect(ids["loader"], 1, ids["negative"], "clip")
    canvas.set_widget(ids["latent"], "width", 64)
    canvas.set_widget(ids["latent"], "height", 64)
    return ids


def queue_and_wait_for_report(canvas: CanvasPage, node_id: int) -> dict:
    """Queues the graph; waits until the node shows its report and every picture has loaded."""
    canvas.page.keyboard.press("Control+Enter")
    canvas.wait_for(
        f"""(() => {{
          const display = window.latentloom.model.nodeById({node_id})?.display;
          return display?.reports?.length > 0 && display.images.length > 0
            && display.images.every((image) => image.naturalWidth > 0);
        }})()""",
        timeout_ms=RUN_TIMEOUT_MS,
    )
    canvas.page.wait_for_selector(".ll-queue-item.finished.success", timeout=RUN_TIMEOUT_MS)
    canvas.js("() => window.latentloom.editor.canvas.draw(true, true)")
    return canvas.js(f"""() => {{
      const node = window.latentloom.model.nodeById({node_id});
      const ctx = document.createElement('canvas').getContext('2d');
      ctx.font = '{SUMMARY_FONT}';
      return {{ text: node.display.text, reports: node.display.reports, width: node.size[0],
                textWidths: node.display.text.map((line) => ctx.measureText(line).width),
                images: node.display.images.map((i) => i.naturalWidth),
                views: node.outputRefs.map((ref) => ref.view) }};
    }}""")


def assert_readable_in_node(shown: dict) -> None:
    """A compact summary: a few lines, each inside the node's text clip (text starts 12 px in, clip ends 6 px short)."""
    assert 3 <= len(shown["text"]) <= 6
    assert shown["text"][-1] == HINT
    assert max(shown["textWidths"]) <= shown["width"] - 18


def summary_point(canvas: CanvasPage, node_id: int) -> list[float]:
    """A point on the node's summary text, in node coordinates (as LiteGraph hands them to onDblClick)."""
    return canvas.js(
        f"""async () => {{
          const {{ textArea }} = await import('/app/node-output.js');
          const [left, top] = textArea(window.latentloom.model.nodeById({node_id}));
          return [left + 40, top + 8];
        }}"""
    )


def open_full_report(canvas: CanvasPage, node_id: int):
    """Double-clicks the node's summary text, as a person would; returns the report panel's locator."""
    left, top = summary_point(canvas, node_id)
    x, y = canvas.js(f"() => window.latentloom.model.nodeById({node_id}).pos")
    panel = canvas.page.locator(".ll-report")
    canvas.double_click(canvas.to_screen([x + left, y + top]))
    panel.wait_for()
    return panel


def open_full_report_by_handler(canvas: CanvasPage, node_id: int):
    """Calls the node's double-click handler on its summary text, the code a double-click reaches, without
    LiteGraph's press-timing window (a real double-click is proven by open_full_report); returns the panel."""
    point = summary_point(canvas, node_id)
    canvas.js(f"(point) => window.latentloom.model.nodeById({node_id}).onDblClick(undefined, point)", point)
    panel = canvas.page.locator(".ll-report")
    panel.wait_for()
    return panel


def section_table(panel, title_start: str) -> dict[str, list]:
    """The header and rows of the panel's table whose section title starts with `title_start`."""
    return panel.evaluate(
        """(root, start) => {
          const section = [...root.querySelectorAll('section')].find((s) => s.querySelector('h3').textContent.startsWith(start));
          if (!section) return null;
          const cells = (row) => [...row.children].map((cell) => cell.textContent);
          return { header: [...section.querySelectorAll('th')].map((th) => th.textContent),
                   rows: [...section.querySelectorAll('tbody tr')].map(cells) };
        }""",
        title_start,
    )


def history_outputs(canvas: CanvasPage, node_id: int) -> dict:
    """The node's outputs as the history stored them (after a JSON round trip through the server)."""
    return canvas.js(f"""async () => {{
      const history = await (await fetch('/api/history')).json();
      const entry = Object.values(history).at(-1);
      return entry.outputs['{node_id}'];
    }}""")


def test_block_inspector_shows_its_pictures_and_a_readable_report(canvas, artifacts):
    ids = text_and_latent(canvas)
    inspector = canvas.add_node("UNetBlockInspector", (420, 40))
    canvas.connect(ids["loader"], 0, inspector, "model")
    canvas.connect(ids["text"], 0, inspector, "positive")
    canvas.connect(ids["negative"], 0, inspector, "negative")
    canvas.connect(ids["latent"], 0, inspector, "latent")
    canvas.set_widget(inspector, "prompt_text", PROMPT)
    canvas.set_widget(inspector, "steps", 4)
    canvas.set_widget(inspector, "step", 2)
    shown = queue_and_wait_for_report(canvas, inspector)
    canvas.screenshot(artifacts / "13-inspector-in-node.png")

    [report] = shown["reports"]
    assert report["kind"] == "unet_inspection"
    assert history_outputs(canvas, inspector)["inspection"] == [report]  # JSON all the way through
    assert shown["views"] == report["views"] and all(width > 0 for width in shown["images"])
    assert_readable_in_node(shown)
    blocks = report["architecture"]["blocks"]
    assert shown["text"][0].startswith(f"σ {report['noise']['sigma']:.3f} (step 2/4 normal) · latent 4×8×8")
    assert shown["text"][1].startswith(f"{len(blocks)} blocks · ")
    top_line = next(line for line in shown["text"] if line.startswith("top tokens: "))
    assert all(text.split(" ")[0] in PROMPT_WORDS for text in top_line.removeprefix("top tokens: ").split(", "))

    panel = open_full_report(canvas, inspector)
    canvas.screenshot(artifacts / "14-inspector-full-report.png")
    tokens = section_table(panel, "Tokens")
    assert [row[1] for row in tokens["rows"]] == PROMPT_WORDS
    assert [row[2] for row in tokens["rows"]] == [f"{t['mass'] * 100:.1f}%" for t in report["attention"]["tokens"]]
    statistics = section_table(panel, "Per-block")
    assert statistics["header"][-1] == "std (negative)"  # a negative prompt was given
    assert [row[1] for row in statistics["rows"]] == [b["name"] for b in report["blocks"]]
    assert [row[3] for row in statistics["rows"]] == [f"{b['positive']['std']:.3f}" for b in report["blocks"]]
    architecture = section_table(panel, "Architecture")
    assert [row[:2] for row in architecture["rows"]] == [[b["code"], b["name"]] for b in blocks]
    assert [row[5] for row in architecture["rows"]] == [f"{b['parameters']:,}" for b in blocks]
    layers = section_table(panel, "Cross-attention layers")
    assert len(layers["rows"]) == report["architecture"]["cross_attention_layers"]
    canvas.page.keyboard.press("Escape")
    assert canvas.page.locator(".ll-report").count() == 0


def test_inspecting_sampler_shows_its_trajectory_plots_and_a_per_step_report(canvas, artifacts):
    ids = text_and_latent(canvas)
    sampler = canvas.add_node("InspectingKSampler", (420, 40))
    canvas.connect(ids["loader"], 0, sampler, "model")
    canvas.connect(ids["text"], 0, sampler, "positive")
    canvas.connect(ids["negative"], 0, sampler, "negative")
    canvas.connect(ids["latent"], 0, sampler, "latent_image")
    canvas.set_widget(sampler, "prompt_text", PROMPT)
    canvas.set_widget(sampler, "steps", 3)
    canvas.set_widget(sampler, "scheduler", "normal")
    canvas.set_widget(sampler, "control_after_generate", "fixed")
    shown = queue_and_wait_for_report(canvas, sampler)
    canvas.screenshot(artifacts / "15-inspecting-sampler-in-node.png")

    [report] = shown["reports"]
    assert report["kind"] == "unet_trajectory"
    assert history_outputs(canvas, sampler)["inspection"] == [report]
    assert shown["views"] == ["trajectory"] and shown["images"][0] > 0
    assert_readable_in_node(shown)
    steps = report["steps"]
    assert len(steps) == 3
    assert shown["text"][0] == "3 steps euler/normal · cfg 8 · seed 0"
    assert shown["text"][2].startswith(f"σ {steps[0]['sigma']:.2f} → {steps[-1]['sigma']:.2f} · last-step entropy ")

    panel = open_full_report_by_handler(canvas, sampler)
    canvas.screenshot(artifacts / "16-inspecting-sampler-full-report.png")
    per_step = section_table(panel, "Per step")
    assert [row[:2] for row in per_step["rows"]] == [[str(s["step"] + 1), f"{s['sigma']:.3f}"] for s in steps]
    grids = list(steps[0]["attention_entropy"])
    assert per_step["header"][2 : 2 + len(grids)] == [f"entropy {grid}" for grid in grids]
    assert [f"share '{word}'" for word in PROMPT_WORDS] == per_step["header"][2 + len(grids) :]
    settings = dict(section_table(panel, "UNet trajectory")["rows"])
    assert (settings["sampler"], settings["steps"]) == ("euler", "3")


def test_report_summaries_and_tables_read_any_report_by_its_kind(canvas):
    content = run_module(canvas, "report-view", """(m) => m.outputContent({
      text: ['two\\nlines'],
      images: [{ filename: 'a.png', subfolder: '', type: 'temp' }],
      inspection: [{ kind: 'unknown_kind', answer: 42, nested: { a: 1 } }],
    })""")
    assert content["images"] == [{"filename": "a.png", "subfolder": "", "type": "temp"}]
    assert content["lines"] == ["two", "lines", "kind: unknown_kind", "answer: 42", HINT]
    sections = run_module(canvas, "report-view", "(m, report) => m.reportSections(report)", content["reports"][0])
    assert sections == [{"title": "Report (unknown_kind)", "header": ["field", "value"],
                         "rows": [["kind", "unknown_kind"], ["answer", "42"], ["nested", '{"a":1}']]}]  # fmt: skip
    numbers = run_module(canvas, "report-view", "(m) => [m.formatNumber(0.5), m.formatNumber(123456), m.formatNumber(null)]")
    assert numbers == ["0.500", "1.23e+5", "–"]
