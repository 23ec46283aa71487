"""Web extensions in the canvas: plugin modules listed by GET /api/extensions are imported at start-up,
register through /scripts/app.js and get their hooks called at the documented moments, each isolated.

The server loads the real example plugin (copied into its custom_nodes/) and two test plugins: one whose
modules throw (at import, in a hook) and one whose extension records every hook call it gets.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .canvas_driver import CanvasPage
from .live_server import LiveServer

REPO = Path(__file__).resolve().parents[2]
EXTENSIONS_JS = REPO / "web" / "app" / "extensions.js"
PLUGINS_DOC = REPO / "docs" / "plugins.md"

browser = pytest.mark.browser

BROKEN_PLUGIN = 'WEB_DIRECTORY = "./web"\nNODE_CLASS_MAPPINGS = {}\n'
# Throws while the module runs: import() rejects.
EXPLODES_JS = 'throw new Error("explodes.js fails on purpose");\n'
# Registers fine, then fails in a hook every node creation reaches.
THROWS_IN_HOOK_JS = """
import { app } from "../../scripts/app.js";
app.registerExtension({
  name: "broken_web.throws",
  nodeCreated() { throw new Error("nodeCreated fails on purpose"); },
});
"""
# Records each hook call; registers twice under one name (the second is refused).
SPY_JS = """
import { app } from "../../scripts/app.js";
const spy = {
  name: "spy_web.hooks",
  calls: [], seenDefs: [], loaded: [], widgetCalls: [], appArgs: new Set(),
  init(a) { this.calls.push("init"); this.appArgs.add(a); },
  addCustomNodeDefs(defs, a) {
    this.calls.push("addCustomNodeDefs");
    this.appArgs.add(a);
    this.defsGiven = Object.keys(defs).length;
  },
  getCustomWidgets(a) {
    this.calls.push("getCustomWidgets");
    this.appArgs.add(a);
    return {
      TEST_IMAGE: (node, inputName, inputData, widgetApp) => {
        this.widgetCalls.push({ type: node.type, inputName, inputData, sameApp: widgetApp === app });
        return { widget: node.addWidget("text", `${inputName} (from link)`, "", () => {}), minWidth: 333 };
      },
    };
  },
  beforeRegisterNodeDef(nodeType, nodeData, a) {
    if (!this.calls.includes("beforeRegisterNodeDef")) this.calls.push("beforeRegisterNodeDef");
    this.appArgs.add(a);
    this.seenDefs.push([nodeData.name, nodeType]);
  },
  registerCustomNodes(a) { this.calls.push("registerCustomNodes"); this.appArgs.add(a); },
  loadedGraphNode(node, a) { this.loaded.push(node.id); this.appArgs.add(a); },
  setup(a) { this.calls.push("setup"); this.appArgs.add(a); },
};
app.registerExtension(spy);
app.registerExtension({ name: "spy_web.hooks", setup() { spy.duplicateRan = true; } });
"""

EXPECTED_CONSOLE_ERRORS = (
    "could not load /extensions/broken_web/explodes.js",
    'extension "broken_web.throws" failed in nodeCreated',
    'refused extension "spy_web.hooks"',
)


def write_plugin(folder: Path, scripts: dict[str, str]) -> None:
    (folder / "web").mkdir(parents=True)
    (folder / "__init__.py").write_text(BROKEN_PLUGIN, encoding="utf-8")
    for name, source in scripts.items():
        (folder / "web" / name).write_text(source, encoding="utf-8")


@pytest.fixture(scope="module")
def extension_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("extension_server")
    custom_nodes = base / "custom_nodes"
    shutil.copytree(REPO / "custom_nodes" / "example_plugin", custom_nodes / "example_plugin",
                    ignore=shutil.ignore_patterns("__pycache__"))
    write_plugin(custom_nodes / "broken_web", {"explodes.js": EXPLODES_JS, "throws.js": THROWS_IN_HOOK_JS})
    write_plugin(custom_nodes / "spy_web", {"spy.js": SPY_JS})
    server = LiveServer(base).start()
    yield server
    server.stop()


@pytest.fixture
def canvas(context, extension_server) -> Iterator[CanvasPage]:
    page = CanvasPage(context.new_page(), extension_server.url).open()
    yield page
    unexpected = [e for e in page.errors if not any(known in e for known in EXPECTED_CONSOLE_ERRORS)]
    assert unexpected == []


def spy(canvas: CanvasPage, expression: str):
    """Evaluates `expression` with `spy` (the recording extension) and `app` (/scripts/app.js) in scope."""
    return canvas.js(f"""async () => {{
      const {{ app }} = await import('/scripts/app.js');
      const spy = app.extensions.find((e) => e.name === 'spy_web.hooks');
      return {expression};
    }}""")


@browser
def test_contact_sheet_nodes_show_the_example_extensions_colour_and_grid_hint(canvas, artifacts):
    canvas.clear_graph()
    node = canvas.add_node("ContactSheet", (120, 120))
    canvas.set_widget(node, "columns", 3)
    state = canvas.js("""(id) => {
      const { model, editor } = window.latentloom;
      const node = model.nodeById(id);
      const drawn = [];
      const fillText = CanvasRenderingContext2D.prototype.fillText;
      CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
        drawn.push(String(text));
        return fillText.call(this, text, ...rest);
      };
      try {
        editor.canvas.draw(true, true);
      } finally {
        CanvasRenderingContext2D.prototype.fillText = fillText;
      }
      return { color: node.color, bgcolor: node.bgcolor, hint: node.gridHint(), drawn };
    }""", node)
    assert (state["color"], state["bgcolor"]) == ("#2f4f4f", "#3c6464")
    assert state["hint"] == "3 per row · 4 px gap"
    assert state["hint"] in state["drawn"], "the grid hint was not drawn on the canvas"
    other = canvas.add_node("TestSolidColor", (520, 120))
    assert canvas.js("(id) => window.latentloom.model.nodeById(id).color ?? null", other) is None
    canvas.screenshot(artifacts / "11-extension-contact-sheet.png")


@browser
def test_a_broken_extension_is_logged_and_the_canvas_still_works(canvas):
    problems = spy(canvas, "app.problems")
    assert {"extension": "/extensions/broken_web/explodes.js", "hook": "import",
            "message": "explodes.js fails on purpose"} in problems
    for expected in EXPECTED_CONSOLE_ERRORS[:2]:
        assert any(expected in error for error in canvas.errors), f"not logged: {expected}"
    canvas.clear_graph()
    source = canvas.add_node("LoadImage", (60, 60))
    sheet = canvas.add_node("ContactSheet", (420, 60))
    # nodeCreated threw in broken_web.throws for both nodes; the example's nodeCreated still ran.
    assert canvas.js("(id) => window.latentloom.model.nodeById(id).color", sheet) == "#2f4f4f"
    assert any(p["hook"] == "nodeCreated" and p["extension"] == "broken_web.throws" for p in spy(canvas, "app.problems"))
    canvas.drag(canvas.output_point(source, 0), canvas.input_point(sheet, "images"))
    assert canvas.links() == [[source, 0, sheet, "images"]]
    assert canvas.prompt()[str(sheet)]["inputs"]["columns"] == 4


@browser
def test_before_register_node_def_sees_every_node_def_with_its_registered_class(canvas, extension_server):
    import json
    import urllib.request

    with urllib.request.urlopen(extension_server.url + "api/object_info") as response:
        server_names = set(json.load(response))
    seen = spy(canvas, """(async () => {
      const { LiteGraph } = await import('/vendor/litegraph/litegraph.es.js');
      return spy.seenDefs.map(([name, type]) => [name, LiteGraph.registered_node_types[name] === type]);
    })()""")
    assert {name for name, _ in seen} == server_names
    assert len(seen) == len(server_names)
    assert all(same for _, same in seen), "beforeRegisterNodeDef got a class other than the one registered"
    assert "ContactSheet" in server_names


@browser
def test_hooks_run_once_in_the_documented_order_with_the_shared_app(canvas):
    calls = spy(canvas, "spy.calls")
    assert calls == ["init", "addCustomNodeDefs", "getCustomWidgets", "beforeRegisterNodeDef",
                     "registerCustomNodes", "setup"]
    assert spy(canvas, "spy.appArgs.size === 1 && spy.appArgs.has(app)") is True
    assert spy(canvas, "spy.defsGiven") > 0


@browser
def test_a_duplicate_extension_name_is_refused(canvas):
    assert spy(canvas, "app.extensions.filter((e) => e.name === 'spy_web.hooks').length") == 1
    assert spy(canvas, "spy.duplicateRan ?? false") is False
    assert any('refused extension "spy_web.hooks"' in error for error in canvas.errors)


@browser
def test_custom_widgets_are_made_for_their_socket_type_and_stay_out_of_saved_values(canvas):
    canvas.clear_graph()
    node = canvas.add_node("TestSaveImage", (60, 60))
    state = canvas.js("""(id) => {
      const node = window.latentloom.model.nodeById(id);
      return { widgets: node.widgets.map((w) => [w.name, w.serialize !== false]), width: node.size[0],
               values: node.serialize().widgets_values };
    }""", node)
    # The display-only widget goes last, so the saved values keep their positions.
    assert state["widgets"] == [["filename_prefix", True], ["images (from link)", False]]
    assert state["values"] == ["test"]
    assert state["width"] >= 333
    calls = spy(canvas, "spy.widgetCalls.filter((c) => c.type === 'TestSaveImage')")
    assert calls and calls[-1] == {"type": "TestSaveImage", "inputName": "images",
                                   "inputData": ["TEST_IMAGE", {}], "sameApp": True}
    assert canvas.prompt()[str(node)]["inputs"]["filename_prefix"] == "test"


@browser
def test_loaded_graph_node_runs_for_every_node_of_a_loaded_workflow(canvas):
    canvas.clear_graph()
    first = canvas.add_node("ContactSheet", (60, 60))
    second = canvas.add_node("TestSolidColor", (420, 60))
    loaded = canvas.js("""async () => {
      const { model } = window.latentloom;
      const { app } = await import('/scripts/app.js');
      const spy = app.extensions.find((e) => e.name === 'spy_web.hooks');
      spy.loaded.length = 0;
      model.load(model.serialize(), { reason: 'open' });
      return [...spy.loaded];
    }""")
    assert sorted(loaded) == sorted([first, second])


@browser
def test_app_queues_the_graph_and_its_api_carries_the_server_events(canvas):
    canvas.clear_graph()
    source = canvas.add_node("TestSolidColor", (60, 60))
    save = canvas.add_node("TestSaveImage", (420, 60))
    canvas.connect(source, 0, save, "images")
    outcome = canvas.js("""async () => {
      const { app } = await import('/scripts/app.js');
      const { api } = await import('/scripts/api.js');
      const executed = new Promise((resolve) =>
        api.addEventListener('executed', (event) => resolve(event.detail), { once: true }));
      const results = await app.queuePrompt(0, 1);
      const detail = await executed;
      return { queued: results.length, promptId: results[0]?.prompt_id, executed: detail,
               sameApi: api === app.api, graphIsEdited: app.graph === window.latentloom.model.graph,
               canvasIsShown: app.canvas === window.latentloom.editor.canvas };
    }""")
    assert outcome["queued"] == 1 and outcome["sameApi"] and outcome["graphIsEdited"] and outcome["canvasIsShown"]
    assert outcome["executed"]["node"] == str(save)
    assert outcome["executed"]["prompt_id"] == outcome["promptId"]
    assert outcome["executed"]["output"]["images"][0]["filename"].endswith(".png")


# ---- documentation (no browser) -----------------------------------------------------------------------


def _hook_table() -> dict[str, str]:
    source = EXTENSIONS_JS.read_text(encoding="utf-8")
    table = re.search(r"export const HOOKS = Object\.freeze\(\{(.*?)\}\);", source, re.S)
    assert table, "web/app/extensions.js has no HOOKS table"
    return dict(re.findall(r'^\s*(\w+): "([^"]+)",', table.group(1), re.M))


def _web_extensions_section() -> str:
    text = PLUGINS_DOC.read_text(encoding="utf-8")
    start = text.index("## Web extensions")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_every_web_extension_hook_is_documented_with_its_exact_signature():
    hooks = _hook_table()
    assert len(hooks) >= 8, f"the HOOKS table looks truncated: {hooks}"
    section = _web_extensions_section()
    for name, signature in hooks.items():
        assert signature.startswith(f"{name}("), f"HOOKS[{name!r}] names another hook: {signature}"
        assert f"`{signature}`" in section, f"docs/plugins.md (Web extensions) lacks `{signature}`"


def test_the_canvas_calls_only_hooks_of_the_table():
    called = set()
    for script in (REPO / "web" / "app").glob("*.js"):
        called |= set(re.findall(r'invoke(?:Async)?\(\s*"(\w+)"', script.read_text(encoding="utf-8")))
    hooks = _hook_table()
    assert called, "no hook calls found: the test would prove nothing"
    assert called <= set(hooks), f"called but not in HOOKS: {called - set(hooks)}"
    # getCustomWidgets is called through ExtensionApp.customWidgets; every other hook by name.
    assert set(hooks) - called == {"getCustomWidgets"}
