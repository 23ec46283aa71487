// Hover help on the canvas: a node's description over its title, an input's or output's tooltip over
// its socket or widget (all from /api/object_info). Shown after the pointer rests for a moment.

import { h } from "./dom.js";

const DELAY_MS = 500;

/** The help text for graph point `pos` on `node`, or "" when there is none. */
function tooltipAt(node, pos) {
  const def = node.constructor.nodeDef;
  if (!def) return "";
  const [x, y] = pos;
  if (y < node.pos[1]) return def.description || "";
  const byName = (name) => def.inputs.find((input) => input.name === name)?.tooltip ?? "";
  const input = node.getInputOnPos?.(pos);
  if (input) return byName(input.name);
  const output = node.getOutputOnPos?.(pos);
  if (output) return def.outputs[node.outputs.indexOf(output)]?.tooltip ?? "";
  const widget = node.getWidgetOnPos?.(x, y, true);
  return widget ? byName(widget.name) : "";
}

export class CanvasTooltips {
  /** @param {{ editor: import("./canvas.js").EditorCanvas, host: HTMLElement }} options */
  constructor({ editor, host }) {
    this.editor = editor;
    this.element = h("div", { class: "ll-tooltip", role: "tooltip" });
    host.appendChild(this.element);
    this.timer = null;
    editor.element.addEventListener("pointermove", (event) => this.schedule(event));
    editor.element.addEventListener("pointerleave", () => this.hide());
    editor.element.addEventListener("pointerdown", () => this.hide());
  }

  schedule(event) {
    this.hide();
    if (event.buttons) return;
    this.timer = setTimeout(() => this.show(event.clientX, event.clientY), DELAY_MS);
  }

  show(clientX, clientY) {
    const canvas = this.editor.canvas;
    const pos = [canvas.graph_mouse[0], canvas.graph_mouse[1]];
    const node = canvas.graph?.getNodeOnPos(pos[0], pos[1], canvas.visible_nodes);
    const text = node ? tooltipAt(node, pos) : "";
    if (!text) return;
    this.element.textContent = text;
    Object.assign(this.element.style, { left: `${clientX + 14}px`, top: `${clientY + 16}px` });
    this.element.classList.add("visible");
  }

  hide() {
    clearTimeout(this.timer);
    this.element.classList.remove("visible");
  }
}
