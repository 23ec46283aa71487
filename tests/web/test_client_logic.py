"""The client's pure logic, run in the browser as the app runs it: fuzzy search, number snapping, text
wrapping, PNG text chunks, binary preview frames, validation errors, control-after-generate, and the
mirrors of server-side definitions (protocol event names, socket type rules, widget layout)."""

from __future__ import annotations

import base64
import io
import zlib

import pytest
from PIL import Image, PngImagePlugin

from latentloom.api.types import types_compatible
from latentloom.engine import protocol
from latentloom.workflow.widgets import schema_layout

from .canvas_driver import CanvasPage

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(browser, live_server):
    context = browser.new_context()
    canvas = CanvasPage(context.new_page(), live_server.url).open()
    yield canvas
    assert canvas.errors == []
    context.close()


def run(page: CanvasPage, module: str, body: str, arg=None):
    """Evaluates `body` (a function of (m, arg)) with the app module /app/<module>.js as `m`."""
    return page.js(f"async (arg) => {{ const m = await import('/app/{module}.js'); return ({body})(m, arg); }}", arg)


def test_event_names_mirror_the_server_protocol(page):
    names = run(page, "protocol", "(m) => Object.values(m.EVENTS)")
    assert sorted(names) == sorted(protocol.EVENT_TYPES)


@pytest.mark.parametrize(
    ("output_type", "input_type"),
    [("IMAGE", "IMAGE"), ("IMAGE", "MASK"), ("*", "LATENT"), ("MODEL", "*"), ("IMAGE,MASK", "MASK"),
     ("IMAGE", "IMAGE, MASK"), ("INT", "FLOAT"), ("", "IMAGE")],
)
def test_socket_type_rules_match_the_plugin_contract(page, output_type, input_type):
    js = run(page, "node-defs", "(m, [a, b]) => m.typesCompatible(a, b)", [output_type, input_type])
    assert js == types_compatible(output_type, input_type)


def test_widget_values_sit_where_the_workflow_library_reads_them(page, live_server):
    """LiteGraph saves widget values by position; latentloom.workflow names them by schema_layout."""
    from server.composition import compose

    registry = compose(live_server.config, extra_packs=[live_server.pack]).registry
    saved = page.js("""async () => {
      const { LiteGraph } = await import('/vendor/litegraph/litegraph.es.js');
      const names = {};
      for (const def of window.latentloom.defs.current.values()) {
        const node = LiteGraph.createNode(def.name);
        names[def.name] = (node.widgets ?? []).filter((w) => w.serialize !== false).map((w) => w.name);
      }
      return names;
    }""")
    assert set(saved) == set(registry.object_info())
    for name, widgets in saved.items():
        layout = schema_layout(registry.get(name).schema)
        expected = [entry for slot in layout for entry in (slot.name, "control_after_generate")[: 1 + slot.control]]
        assert widgets == expected, name


def test_fuzzy_search_prefers_whole_words_then_word_starts(page):
    scores = run(page, "search", """(m) => [
      m.fuzzyScore('save', 'Save Image'), m.fuzzyScore('save', 'Unsaved thing'),
      m.fuzzyScore('ksa', 'KSampler'), m.fuzzyScore('ksa', 'Kind of sampler'),
      m.fuzzyScore('xyz', 'KSampler'),
    ]""")
    whole_start, whole_inside, camel, loose, none = scores
    assert whole_start > whole_inside > 0
    assert camel > 0 and loose > 0
    assert none == 0


def test_rank_nodes_filters_by_the_type_a_wire_carries(page):
    ranked = run(page, "search", """(m) => {
      const defs = [...window.latentloom.defs.current.values()];
      return {
        takesImage: m.rankNodes(defs, '', { filter: { direction: 'input', type: 'TEST_IMAGE' } }).map((d) => d.name),
        makesImage: m.rankNodes(defs, '', { filter: { direction: 'output', type: 'TEST_IMAGE' } }).map((d) => d.name),
        byCategory: m.rankNodes(defs, 'testing/text').map((d) => d.name)[0],
      };
    }""")
    assert set(ranked["takesImage"]) == {"TestInvert", "TestSlowSteps", "TestSaveImage", "TestFailing"}
    assert set(ranked["makesImage"]) == {"TestSolidColor", "TestInvert", "TestSlowSteps"}
    assert ranked["byCategory"] == "TestShowText"


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        (73, {"min": 16, "max": 512, "round": 8, "precision": 0}, 72),
        (77, {"min": 16, "max": 512, "round": 8, "precision": 0}, 80),
        (9000, {"min": 16, "max": 512, "round": 8, "precision": 0}, 512),
        (0.123456, {"round": 0.01, "precision": 2}, 0.12),
        (7.35, {"min": 0, "max": 30, "round": 0.5, "precision": 1}, 7.5),
        ("nope", {"min": 3, "precision": 0}, 3),
    ],
)
def test_numbers_snap_to_step_and_range(page, value, options, expected):
    assert run(page, "widgets", "(m, [v, o]) => m.snapNumber(v, o)", [value, options]) == expected


def test_text_wraps_at_spaces_and_inside_long_words(page):
    lines = run(page, "text-widget", "(m) => m.wrapText('aa bb cc\\ndddddddddd', 5, (s) => s.length)")
    assert lines == ["aa bb", "cc", "ddddd", "ddddd"]


def _png_with_text_chunks() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", '{"nodes": []}')
    info.add_text("prompt", '{"1": {}}', zip=True)  # zTXt
    info.add_itxt("comment", "grüße", zip=True)  # compressed iTXt
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def test_png_text_chunks_are_read_plain_and_compressed(page):
    texts = page.js("""async (data) => {
      const { readPngText } = await import('/app/png-metadata.js');
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      return readPngText(bytes.buffer);
    }""", base64.b64encode(_png_with_text_chunks()).decode())
    assert texts == {"workflow": '{"nodes": []}', "prompt": '{"1": {}}', "comment": "grüße"}
    assert zlib.decompress(zlib.compress(b"x")) == b"x"  # the chunks above really were deflated by PIL


def test_binary_preview_frames_decode_with_and_without_metadata(page):
    decoded = run(page, "protocol", """async (m) => {
      const image = new Uint8Array([137, 80, 78, 71, 1, 2, 3]);
      const plain = new Uint8Array(8 + image.length);
      new DataView(plain.buffer).setUint32(0, 1);
      new DataView(plain.buffer).setUint32(4, 2);
      plain.set(image, 8);
      const meta = new TextEncoder().encode(JSON.stringify({ node_id: '7', prompt_id: 'p1', image_type: 'image/png' }));
      const rich = new Uint8Array(8 + meta.length + image.length);
      new DataView(rich.buffer).setUint32(0, 4);
      new DataView(rich.buffer).setUint32(4, meta.length);
      rich.set(meta, 8);
      rich.set(image, 8 + meta.length);
      const a = m.decodePreviewFrame(plain.buffer);
      const b = m.decodePreviewFrame(rich.buffer);
      const other = new Uint8Array(12);
      new DataView(other.buffer).setUint32(0, 3);
      return [[a.blob.type, a.blob.size, a.nodeId], [b.blob.type, b.blob.size, b.nodeId, b.promptId],
              m.decodePreviewFrame(other.buffer)];
    }""")
    assert decoded == [["image/png", 7, None], ["image/png", 7, "7", "p1"], None]


def test_validation_errors_are_grouped_by_node_and_input(page):
    grouped = run(page, "run-state", """(m) => {
      const byNode = m.validationErrorsByNode({
        '4': { errors: [
          { type: 'required_input_missing', message: 'Required input is missing', details: 'images',
            extra_info: { input_name: 'images' } },
          { type: 'value_bigger_than_max', message: 'Value 9000 bigger than max of 512', details: 'width: 9000',
            extra_info: { input_name: 'width' } },
        ] },
      });
      const entry = byNode.get('4');
      return { inputs: Object.fromEntries(entry.inputs), message: entry.message };
    }""")
    assert grouped["inputs"] == {
        "images": "Required input is missing",
        "width": "Value 9000 bigger than max of 512: width: 9000",
    }
    assert grouped["message"].splitlines() == [
        "images: Required input is missing",
        "width: Value 9000 bigger than max of 512: width: 9000",
    ]


def test_control_after_generate_moves_values_by_mode(page):
    page.clear_graph()
    result = page.js("""async () => {
      const { applyControlAfterGenerate } = await import('/app/widgets.js');
      const { model } = window.latentloom;
      const modes = ['fixed', 'increment', 'decrement', 'randomize'];
      const nodes = modes.map((mode) => {
        const node = model.addNode('TestSolidColor', { pos: [0, 0] });
        node.widgets.find((w) => w.name === 'seed').value = 10;
        node.widgets.find((w) => w.name === 'control_after_generate').value = mode;
        return node;
      });
      const changed = applyControlAfterGenerate(nodes, { random: () => 0.5 });
      return [changed, nodes.map((n) => n.widgets.find((w) => w.name === 'seed').value)];
    }""")
    changed, seeds = result
    assert changed == 3
    assert seeds[:3] == [10, 11, 9]
    # randomize: min + floor(random * number of allowed values) * step, over 0 .. 2**32 - 1
    assert seeds[3] == 0 + int(0.5 * 2**32) * 1


def test_node_outputs_show_images_text_and_report_summaries(page):
    content = run(page, "report-view", """(m) => m.outputContent({
      images: [{ filename: 'a.png', subfolder: '', type: 'output' }],
      text: ['two\\nlines'],
      inspection: [{
        kind: 'unet_inspection', latent_shape: [1, 4, 8, 8],
        noise: { sigma: 2.5, step: 3, steps: 10, scheduler: 'karras' },
        architecture: { blocks: [{}, {}], parameters: 2500000, cross_attention_layers: 4 },
        blocks: [{ name: 'input_blocks.1', positive: { std: 0.5, mean: -0.25 }, attention_entropy: 0.75 }],
        attention: { tokens: [{ text: 'cat', mass: 0.2, concentration: 0.5 }, { text: 'hat', mass: 0.6, concentration: 0.25 }] },
      }],
      animated: [false],
    })""")
    assert content["images"] == [{"filename": "a.png", "subfolder": "", "type": "output"}]
    assert content["lines"] == [  # a compact summary; the full report opens from the node (report-panel.js)
        "two",
        "lines",
        "σ 2.500 (step 3/10 karras) · latent 4×8×8",
        "2 blocks · 2.5M params · 4 cross-attention layers",
        "block std 0.50 (input_blocks.1) … 0.50 (input_blocks.1)",
        "top tokens: hat 60.0%, cat 20.0%",
        "⤢ double-click for the full report",
    ]
    assert [report["kind"] for report in content["reports"]] == ["unet_inspection"]


def test_problems_converting_a_graph_mark_their_nodes(page):
    marked = run(page, "app", """(m) => m.nodeErrorsOf({
      nodeErrors: {},
      body: { error: { extra_info: { problems: [
        { node_id: '4', input_name: 'images', message: 'bypassed node 3 passes nothing of type IMAGE on' },
        { node_id: null, input_name: null, message: 'a problem of the whole workflow' },
      ] } } },
    })""")
    assert marked == {"4": {"errors": [{
        "message": "bypassed node 3 passes nothing of type IMAGE on", "details": "", "extra_info": {"input_name": "images"},
    }]}}


def test_finished_prompts_list_newest_first_with_their_images(page):
    entries = run(page, "queue-panel", """(m) => m.finishedEntries({
      a: { prompt: [3, 'a'], outputs: { 9: { images: [{ filename: 'x.png', type: 'output' }] } },
           status: { status_str: 'success', completed: true } },
      b: { prompt: [5, 'b'], outputs: {}, status: { status_str: 'error', completed: false } },
    })""")
    assert entries == [
        {"promptId": "b", "number": 5, "status": "error", "images": []},
        {"promptId": "a", "number": 3, "status": "success", "images": [{"filename": "x.png", "type": "output"}]},
    ]


def test_search_lists_a_node_once_not_under_its_aliases(page):
    names = run(page, "search", "(m) => m.rankNodes([...window.latentloom.defs.current.values()], 'load checkpoint').map((d) => d.name)")
    assert "CheckpointLoader" in names
    assert "CheckpointLoaderSimple" not in names  # ComfyUI's name for the same node
