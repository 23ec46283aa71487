"""Editing in a real browser: node types from /object_info, search, wiring with the mouse, widgets,
undo/redo, copy/paste between tabs, groups, box-select and delete, widget <-> input conversion."""

from __future__ import annotations

import pytest

from .canvas_driver import CanvasPage

pytestmark = pytest.mark.browser


def test_node_types_come_from_object_info_with_their_widgets(canvas, artifacts):
    node = canvas.add_node("TestSolidColor", (60, 60))
    canvas.add_node("TestSlowSteps", (420, 60))
    canvas.add_node("TestInvert", (420, 300))
    widgets = canvas.js("""(id) => window.latentloom.model.nodeById(id).widgets.map((w) => ({
      name: w.name, type: w.type, value: w.value, options: w.options,
    }))""", node)
    by_name = {w["name"]: w for w in widgets}
    assert [w["name"] for w in widgets] == [
        "red", "green", "blue", "width", "height", "seed", "control_after_generate", "pattern", "note",
    ]
    assert by_name["width"]["type"] == "number"
    assert by_name["width"]["options"].items() >= {"min": 16, "max": 512, "step2": 8, "precision": 0}.items()
    assert by_name["width"]["value"] == 64
    assert by_name["pattern"] == {"name": "pattern", "type": "combo", "value": "stripe",
                                  "options": {"values": ["stripe", "plain"]}}
    assert by_name["control_after_generate"]["value"] == "randomize"
    assert by_name["note"]["type"] == "customtext"
    category = canvas.js("() => window.latentloom.defs.current.get('TestSolidColor').category")
    assert category == "testing/image"
    description = canvas.js("(id) => window.latentloom.model.nodeById(id).constructor.description", node)
    assert description == "A flat colour image with a stripe placed by the seed."
    canvas.screenshot(artifacts / "01-nodes-from-object-info.png")


def test_double_click_search_adds_the_chosen_node_where_clicked(canvas, artifacts):
    point = canvas.empty_point(300, 200)
    canvas.double_click(point)
    canvas.page.wait_for_selector(".ll-search-input")
    canvas.page.keyboard.type("slow step")
    first = canvas.page.locator(".ll-search-item").first
    assert first.get_attribute("data-type") == "TestSlowSteps"
    canvas.screenshot(artifacts / "02-search-dialog.png")
    canvas.page.keyboard.press("Enter")
    nodes = canvas.nodes()
    assert [n["type"] for n in nodes] == ["TestSlowSteps"]
    assert nodes[0]["pos"] == pytest.approx([300, 200], abs=2)


def test_a_slower_system_double_click_opens_the_search_once(canvas):
    events = canvas.js("""() => {
      const seen = [];
      document.addEventListener("dblclick", () => seen.push(document.querySelectorAll(".ll-search").length));
      window.__dblclicks = seen;
      return seen.length;
    }""")
    assert events == 0
    canvas.slow_double_click(canvas.empty_point(260, 180))
    canvas.page.wait_for_selector(".ll-search-input")
    assert canvas.js("() => window.__dblclicks") == [1]
    canvas.page.keyboard.type("invert")
    canvas.page.keyboard.press("Enter")
    nodes = canvas.nodes()
    assert [n["type"] for n in nodes] == ["TestInvert"]
    assert nodes[0]["pos"] == pytest.approx([260, 180], abs=2)


def test_a_quick_double_click_opens_one_search_dialog(canvas):
    canvas.double_click(canvas.empty_point(300, 200))
    canvas.page.wait_for_selector(".ll-search-input")
    canvas.page.wait_for_timeout(100)
    assert canvas.page.locator(".ll-search").count() == 1


def test_search_matches_categories_and_socket_types(canvas):
    canvas.double_click(canvas.empty_point(300, 200))
    search = canvas.page.locator(".ll-search-input")
    search.fill("TEST_IMAGE")
    types = canvas.page.locator(".ll-search-item").evaluate_all("(items) => items.map((i) => i.dataset.type)")
    assert set(types) == {"TestSolidColor", "TestInvert", "TestSlowSteps", "TestSaveImage", "TestFailing"}
    search.fill("testing/text")
    types = canvas.page.locator(".ll-search-item").evaluate_all("(items) => items.map((i) => i.dataset.type)")
    assert types[0] == "TestShowText"
    canvas.page.keyboard.press("Escape")
    assert canvas.page.locator(".ll-search").count() == 0
    assert canvas.nodes() == []


def test_dragging_from_an_output_to_an_input_wires_them(canvas, artifacts):
    color = canvas.add_node("TestSolidColor", (40, 40))
    save = canvas.add_node("TestSaveImage", (520, 80))
    canvas.drag(canvas.output_point(color, 0), canvas.input_point(save, "images"))
    assert canvas.links() == [[color, 0, save, "images"]]
    canvas.screenshot(artifacts / "03-wired-by-mouse.png")


def test_a_wire_of_the_wrong_type_is_refused(canvas):
    color = canvas.add_node("TestSolidColor", (40, 40))
    text = canvas.add_node("TestShowText", (520, 80))
    # TEST_IMAGE onto the STRING widget's socket: LiteGraph must not connect it.
    canvas.drag(canvas.output_point(color, 0), canvas.widget_point(text, "text"))
    assert canvas.links() == []


def test_a_wire_dropped_on_empty_canvas_offers_nodes_that_take_its_type(canvas):
    color = canvas.add_node("TestSolidColor", (40, 40))
    canvas.drag(canvas.output_point(color, 0), canvas.empty_point(600, 380))
    canvas.page.wait_for_selector(".ll-search-item")
    offered = canvas.page.locator(".ll-search-item").evaluate_all("(items) => items.map((i) => i.dataset.type)")
    assert set(offered) == {"TestInvert", "TestSlowSteps", "TestSaveImage", "TestFailing"}
    canvas.page.locator(".ll-search-input").fill("save")
    canvas.page.keyboard.press("Enter")
    save = next(n for n in canvas.nodes() if n["type"] == "TestSaveImage")
    assert canvas.links() == [[color, 0, save["id"], "images"]]


def test_widgets_change_with_clicks_and_typing(canvas, artifacts):
    node = canvas.add_node("TestSolidColor", (60, 40))
    canvas.click(canvas.widget_point(node, "width", fraction=0.97))  # right arrow: one step up
    assert canvas.widget_value(node, "width") == 72
    canvas.click(canvas.widget_point(node, "red", fraction=0.03))  # left arrow: one step down
    assert canvas.widget_value(node, "red") == 199
    canvas.click(canvas.widget_point(node, "pattern"))  # combo: a menu of its choices
    canvas.menu_entry("plain").click()
    assert canvas.widget_value(node, "pattern") == "plain"
    canvas.click(canvas.widget_point(node, "note"))  # multi-line text: a text area over the widget
    editor = canvas.page.locator("textarea.ll-text-editor")
    editor.type("misty morning\nsecond line")
    canvas.screenshot(artifacts / "04-editing-a-prompt.png")
    canvas.click(canvas.empty_point(700, 500))
    assert canvas.widget_value(node, "note") == "misty morning\nsecond line"
    expected = {"width": 72, "red": 199, "pattern": "plain", "note": "misty morning\nsecond line"}
    assert canvas.prompt()[str(node)]["inputs"].items() >= expected.items()


def test_toggle_widget_flips_a_boolean(canvas):
    node = canvas.add_node("TestInvert", (60, 40))
    canvas.click(canvas.widget_point(node, "enabled"))
    assert canvas.widget_value(node, "enabled") is False


def test_undo_and_redo_step_through_edits(canvas):
    first = canvas.add_node("TestSolidColor", (40, 40))
    canvas.add_node("TestSaveImage", (520, 80))
    canvas.click(canvas.widget_point(first, "blue", fraction=0.97))
    assert canvas.widget_value(first, "blue") == 61
    canvas.page.keyboard.press("Control+z")
    assert canvas.widget_value(first, "blue") == 60
    canvas.page.keyboard.press("Control+z")
    assert [n["type"] for n in canvas.nodes()] == ["TestSolidColor"]
    canvas.page.keyboard.press("Control+y")
    canvas.page.keyboard.press("Control+y")
    assert sorted(n["type"] for n in canvas.nodes()) == ["TestSaveImage", "TestSolidColor"]
    assert canvas.widget_value(first, "blue") == 61


def test_copy_in_one_tab_paste_in_another(canvas, context, live_server):
    node = canvas.add_node("TestSolidColor", (40, 40))
    canvas.set_widget(node, "green", 33)
    canvas.click(canvas.to_screen([100, 15]))  # the title bar selects the node
    canvas.page.keyboard.press("Control+c")
    other = CanvasPage(context.new_page(), live_server.url).open()
    other.clear_graph()
    other.page.mouse.move(*other.empty_point(300, 300))
    other.click(other.empty_point(300, 300))
    other.page.keyboard.press("Control+v")
    pasted = other.nodes()
    assert [n["type"] for n in pasted] == ["TestSolidColor"]
    assert other.widget_value(pasted[0]["id"], "green") == 33
    assert other.errors == []


def test_box_select_then_delete_removes_the_boxed_nodes(canvas):
    canvas.add_node("TestSolidColor", (40, 40))
    canvas.add_node("TestInvert", (420, 40))
    kept = canvas.add_node("TestSaveImage", (420, 500))
    canvas.drag(canvas.empty_point(10, 10), canvas.empty_point(700, 420), modifiers=("Control",))
    selected = canvas.js("() => Object.keys(window.latentloom.editor.canvas.selected_nodes).map(Number)")
    assert len(selected) == 2 and kept not in selected
    canvas.page.keyboard.press("Delete")
    assert [n["id"] for n in canvas.nodes()] == [kept]


def test_group_selected_nodes_and_move_them_together(canvas):
    a = canvas.add_node("TestSolidColor", (60, 160))
    b = canvas.add_node("TestInvert", (440, 160))
    canvas.js("(ids) => window.latentloom.editor.canvas.selectNodes(ids.map((id) => window.latentloom.model.nodeById(id)))", [a, b])
    canvas.page.keyboard.press("Control+g")
    group = canvas.js("() => window.latentloom.model.graph.groups.map((g) => [g.title, ...g.pos])")
    assert len(group) == 1 and group[0][0] == "Group"
    title_bar = canvas.to_screen([group[0][1] + 60, group[0][2] + 10])
    canvas.drag(title_bar, (title_bar[0] + 100, title_bar[1] + 50))
    moved = {n["id"]: n["pos"] for n in canvas.nodes()}
    assert moved[a] == pytest.approx([160, 210], abs=2)
    assert moved[b] == pytest.approx([540, 210], abs=2)


def test_pan_and_zoom_change_the_view(canvas):
    canvas.add_node("TestSolidColor", (40, 60))
    canvas.drag(canvas.empty_point(700, 500), canvas.empty_point(800, 560))
    offset = canvas.js("() => Array.from(window.latentloom.editor.canvas.ds.offset)")
    assert offset == pytest.approx([100, 60], abs=1)
    canvas.page.mouse.move(*canvas.empty_point(400, 300))
    canvas.page.mouse.wheel(0, -300)
    assert canvas.js("() => window.latentloom.editor.canvas.ds.scale") > 1.05


def test_widget_becomes_an_input_and_back(canvas):
    color = canvas.add_node("TestSolidColor", (40, 40))
    canvas.click(canvas.to_screen([100, 15]))
    canvas.click(canvas.to_screen([100, 15]), button="right")
    canvas.menu_entry("Convert widget to input").click()
    canvas.menu_entry("seed").click()
    state = canvas.js("""(id) => {
      const node = window.latentloom.model.nodeById(id);
      return {
        hidden: node.widgets.filter((w) => w.hidden).map((w) => w.name),
        socket: node.inputs.find((s) => s.name === 'seed').widget === undefined,
      };
    }""", color)
    assert state == {"hidden": ["seed", "control_after_generate"], "socket": True}
    canvas.click(canvas.to_screen([100, 15]), button="right")
    canvas.menu_entry("Convert input to widget").click()
    canvas.menu_entry("seed").click()
    hidden = canvas.js("(id) => window.latentloom.model.nodeById(id).widgets.filter((w) => w.hidden).length", color)
    assert hidden == 0


def test_categorized_menu_adds_a_node(canvas):
    canvas.click(canvas.empty_point(300, 300), button="right")
    canvas.menu_entry("Add Node").click()
    canvas.menu_entry("testing").click()
    canvas.menu_entry("image").click()
    canvas.menu_entry("Invert Colors").click()
    assert [n["type"] for n in canvas.nodes()] == ["TestInvert"]


def test_hovering_a_title_shows_the_node_description(canvas):
    canvas.add_node("TestSolidColor", (60, 120))
    title = canvas.to_screen([150, 105])
    canvas.page.mouse.move(*title)
    canvas.page.mouse.move(title[0] + 2, title[1] + 1)
    tooltip = canvas.page.locator(".ll-tooltip.visible")
    tooltip.wait_for()
    assert tooltip.text_content() == "A flat colour image with a stripe placed by the seed."


def test_bypass_and_mute_shortcuts_toggle_the_selected_nodes(canvas):
    node = canvas.add_node("TestInvert", (60, 120))
    canvas.click(canvas.to_screen([150, 105]))
    canvas.page.keyboard.press("Control+b")
    assert canvas.js(f"() => window.latentloom.model.nodeById({node}).mode") == 4
    canvas.page.keyboard.press("Control+m")
    assert canvas.js(f"() => window.latentloom.model.nodeById({node}).mode") == 2
    canvas.page.keyboard.press("Control+m")
    assert canvas.js(f"() => window.latentloom.model.nodeById({node}).mode") == 0
