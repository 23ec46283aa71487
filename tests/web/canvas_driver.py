"""Drives the canvas page in tests: graph positions to screen points, real mouse drags, graph queries.

Set-up may go through ``window.latentloom`` (the app's parts); what a test proves goes through the mouse
and keyboard wherever a person would use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

READY_TIMEOUT_MS = 60_000

# JS helpers evaluated in the page: graph coordinates -> screen (client) coordinates.
_TO_SCREEN = """
(point) => {
  const { editor } = window.latentloom;
  const [x, y] = editor.canvas.ds.convertOffsetToCanvas(point);
  const rect = editor.element.getBoundingClientRect();
  return [rect.left + x, rect.top + y];
}
"""


class CanvasPage:
    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", self._on_console)

    def _on_console(self, message: Any) -> None:
        # A rejected prompt answers 400 on purpose; the browser logs every failed fetch.
        if message.type == "error" and "status of 400" not in message.text:
            self.errors.append(f"console error: {message.text}")

    def open(self) -> CanvasPage:
        self.page.goto(self.base_url)
        self.page.wait_for_selector("body[data-ready=true]", timeout=READY_TIMEOUT_MS)
        self.wait_for("window.latentloom.runState.connection === 'open'")
        return self

    def reload(self) -> CanvasPage:
        self.page.reload()
        self.page.wait_for_selector("body[data-ready=true]", timeout=READY_TIMEOUT_MS)
        return self

    def js(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def wait_for(self, predicate: str, *, timeout_ms: int = 30_000) -> None:
        self.page.wait_for_function(predicate, timeout=timeout_ms)

    def screenshot(self, path: Path) -> Path:
        self.page.screenshot(path=str(path))
        return path

    # -- graph set-up and queries ----------------------------------------------------------------

    def clear_graph(self) -> None:
        """An empty graph at zoom 1, offset 0: graph and canvas coordinates then differ by nothing."""
        self.js("""() => {
          const { model, editor } = window.latentloom;
          model.clear();
          editor.canvas.ds.scale = 1;
          editor.canvas.ds.offset = [0, 0];
          editor.canvas.setDirty(true, true);
        }""")

    def add_node(self, node_type: str, pos: tuple[float, float]) -> int:
        return self.js(
            """([type, pos]) => {
              const { model, editor } = window.latentloom;
              const node = model.addNode(type, { pos });
              model.markChanged();
              editor.canvas.draw(true, true);  // lays out widgets and makes the node hit-testable now
              return node.id;
            }""",
            [node_type, list(pos)],
        )

    def connect(self, source: int, output: int, target: int, input_name: str) -> None:
        self.js(
            """([source, output, target, inputName]) => {
              const { model } = window.latentloom;
              const to = model.nodeById(target);
              model.nodeById(source).connect(output, to, to.inputs.findIndex((s) => s.name === inputName));
              model.markChanged();
            }""",
            [source, output, target, input_name],
        )

    def set_widget(self, node_id: int, name: str, value: Any) -> None:
        self.js(
            """([id, name, value]) => {
              const { model } = window.latentloom;
              model.nodeById(id).widgets.find((w) => w.name === name).value = value;
              model.markChanged();
            }""",
            [node_id, name, value],
        )

    def widget_value(self, node_id: int, name: str) -> Any:
        return self.js(
            "([id, name]) => window.latentloom.model.nodeById(id).widgets.find((w) => w.name === name).value",
            [node_id, name],
        )

    def nodes(self) -> list[dict[str, Any]]:
        """Every node as {id, type, pos, inputs: {name: linked?}}."""
        return self.js("""() => window.latentloom.model.nodes.map((node) => ({
          id: node.id,
          type: node.type,
          pos: [node.pos[0], node.pos[1]],
          inputs: Object.fromEntries((node.inputs ?? []).map((slot) => [slot.name, slot.link != null])),
        }))""")

    def links(self) -> list[list[Any]]:
        """Every link as [origin id, origin slot, target id, target input name]."""
        return self.js("""() => {
          const { model } = window.latentloom;
          return [...model.graph.links.values()].map((link) => [
            link.origin_id, link.origin_slot, link.target_id,
            model.nodeById(link.target_id).inputs[link.target_slot].name,
          ]);
        }""")

    def prompt(self) -> dict[str, Any]:
        """The API prompt the graph makes (the server's conversion, which queueing uses too)."""
        return self.js("""async () => {
          const { api, model } = window.latentloom;
          return (await api.convertWorkflow(model.serialize(), 'prompt')).result;
        }""")

    # -- screen geometry ---------------------------------------------------------------------------

    def to_screen(self, point: list[float]) -> tuple[float, float]:
        x, y = self.js(_TO_SCREEN, point)
        return x, y

    def output_point(self, node_id: int, slot: int) -> tuple[float, float]:
        pos = self.js("([id, slot]) => Array.from(window.latentloom.model.nodeById(id).getOutputPos(slot))", [node_id, slot])
        return self.to_screen(pos)

    def input_point(self, node_id: int, name: str) -> tuple[float, float]:
        pos = self.js(
            """([id, name]) => {
              const node = window.latentloom.model.nodeById(id);
              return Array.from(node.getInputPos(node.inputs.findIndex((s) => s.name === name)));
            }""",
            [node_id, name],
        )
        return self.to_screen(pos)

    def widget_point(self, node_id: int, name: str, *, fraction: float = 0.5) -> tuple[float, float]:
        """A point on a widget, `fraction` of the way across it (0.02 ≈ its left arrow, 0.98 its right)."""
        pos = self.js(
            """([id, name, fraction]) => {
              const node = window.latentloom.model.nodeById(id);
              const widget = node.widgets.find((w) => w.name === name);
              const height = widget.computedHeight ? widget.computedHeight - 4 : 20;
              const left = 15, right = node.size[0] - 15;
              return [node.pos[0] + left + (right - left) * fraction, node.pos[1] + widget.last_y + height / 2];
            }""",
            [node_id, name, fraction],
        )
        return self.to_screen(pos)

    def empty_point(self, x: float, y: float) -> tuple[float, float]:
        return self.to_screen([x, y])

    # -- mouse -----------------------------------------------------------------------------------------

    def drag(self, start: tuple[float, float], end: tuple[float, float], *, steps: int = 12, modifiers: tuple[str, ...] = ()) -> None:
        mouse, keyboard = self.page.mouse, self.page.keyboard
        for key in modifiers:
            keyboard.down(key)
        mouse.move(*start)
        mouse.down()
        mouse.move(*end, steps=steps)
        mouse.up()
        for key in modifiers:
            keyboard.up(key)

    def double_click(self, point: tuple[float, float]) -> None:
        self.page.mouse.dblclick(*point)

    def slow_double_click(self, point: tuple[float, float], *, gap_ms: int = 700) -> None:
        """Two presses further apart than LiteGraph's double-click time (500 ms, theme.js) that the system
        still counts as one double-click (the second press carries click count 2)."""
        mouse = self.page.mouse
        mouse.move(*point)
        mouse.down()
        mouse.up()
        self.page.wait_for_timeout(gap_ms)
        mouse.down(click_count=2)
        mouse.up(click_count=2)

    def click(self, point: tuple[float, float], *, button: str = "left") -> None:
        self.page.mouse.click(*point, button=button)

    def menu_entry(self, text: str) -> Any:
        """The context-menu entry whose text is exactly `text`."""
        return self.page.locator(f".litemenu-entry:text-is('{text}')").last  # a submenu opens last

    # -- what the canvas drew ------------------------------------------------------------------------

    def record_drawing(self) -> dict[str, Any]:
        """Redraws the canvas once while recording its 2D context: see ``_RECORD_STROKES_AND_FILLS``."""
        return self.js(_RECORD_STROKES_AND_FILLS)


# Redraws the canvas once and records, in graph coordinates:
# - outlines: every stroke of a rectangle ({colour, lineWidth, rect: [x, y, w, h]}), e.g. a node's outline;
# - links: each link's id, type and the colours its own Path2D was stroked in;
# - slots: per node id, per input/output name, the colours of the dots filled at that slot's position.
_RECORD_STROKES_AND_FILLS = """
() => {
  const { model, editor } = window.latentloom;
  const { canvas } = editor;
  const ratio = window.devicePixelRatio || 1;
  const toGraph = (ctx, x, y) => {
    const p = ctx.getTransform().transformPoint(new DOMPoint(x, y));
    return Array.from(canvas.ds.convertCanvasToOffset([p.x / ratio, p.y / ratio]));
  };
  const shapes = new WeakMap();  // context -> the rectangle or arc the current path was built from
  const outlines = [], dots = [], pathColours = new Map();
  const proto = CanvasRenderingContext2D.prototype;
  const original = {
    beginPath: proto.beginPath, rect: proto.rect, roundRect: proto.roundRect, arc: proto.arc,
    stroke: proto.stroke, fill: proto.fill,
  };
  const rectangle = (ctx, x, y, w, h) => {
    const [left, top] = toGraph(ctx, x, y);
    const [right, bottom] = toGraph(ctx, x + w, y + h);
    return { kind: "rect", rect: [left, top, right - left, bottom - top] };
  };
  proto.beginPath = function () { shapes.delete(this); return original.beginPath.apply(this, arguments); };
  proto.rect = function (x, y, w, h) { shapes.set(this, rectangle(this, x, y, w, h)); return original.rect.apply(this, arguments); };
  proto.roundRect = function (x, y, w, h) { shapes.set(this, rectangle(this, x, y, w, h)); return original.roundRect.apply(this, arguments); };
  proto.arc = function (x, y) { shapes.set(this, { kind: "arc", centre: toGraph(this, x, y) }); return original.arc.apply(this, arguments); };
  proto.stroke = function (path) {
    if (path instanceof Path2D) {
      if (!pathColours.has(path)) pathColours.set(path, []);
      pathColours.get(path).push(String(this.strokeStyle));
    } else if (shapes.get(this)?.kind === "rect") {
      outlines.push({ colour: String(this.strokeStyle), lineWidth: this.lineWidth, rect: shapes.get(this).rect });
    }
    return original.stroke.apply(this, arguments);
  };
  proto.fill = function () {
    if (shapes.get(this)?.kind === "arc") dots.push({ colour: String(this.fillStyle), centre: shapes.get(this).centre });
    return original.fill.apply(this, arguments);
  };
  try {
    canvas.draw(true, true);
  } finally {
    Object.assign(proto, original);
  }
  const dotColoursAt = (pos) => dots
    .filter((dot) => Math.hypot(dot.centre[0] - pos[0], dot.centre[1] - pos[1]) < 1.5)
    .map((dot) => dot.colour);
  const slots = Object.fromEntries(model.nodes.map((node) => [node.id, {
    inputs: Object.fromEntries((node.inputs ?? []).map((slot, i) => [slot.name, dotColoursAt(node.getInputPos(i))])),
    outputs: Object.fromEntries((node.outputs ?? []).map((slot, i) => [slot.name, dotColoursAt(node.getOutputPos(i))])),
  }]));
  const links = [...model.graph.links.values()].map((link) => ({
    id: link.id, type: link.type, colours: pathColours.get(link.path) ?? [],
  }));
  return { outlines, links, slots };
}
"""


def image_graph(canvas: CanvasPage, *, steps: int = 2, step_seconds: float = 0.05) -> dict[str, int]:
    """color -> slow steps -> save, as in a text-to-image graph (loader -> sampler -> save)."""
    ids = {
        "color": canvas.add_node("TestSolidColor", (40, 60)),
        "slow": canvas.add_node("TestSlowSteps", (400, 60)),
        "save": canvas.add_node("TestSaveImage", (740, 60)),
    }
    canvas.connect(ids["color"], 0, ids["slow"], "image")
    canvas.connect(ids["slow"], 0, ids["save"], "images")
    canvas.set_widget(ids["slow"], "steps", steps)
    canvas.set_widget(ids["slow"], "step_seconds", step_seconds)
    return ids
