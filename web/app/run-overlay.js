// Shows the run on the canvas: the executing node outlined, its sampler progress, live previews, output
// images and text in their nodes, and errors (failed node outlined with its message, offending inputs
// marked). Outputs are kept by node id so they survive undo and re-opening the same graph.

import { showNodeOutput, showNodePreview } from "./node-output.js";
import { wrapText } from "./text-widget.js";
import { STATUS_COLOURS } from "./theme.js";

const MESSAGE_FONT = "12px Inter, system-ui, sans-serif";
const MESSAGE_LINE = 16;
const MESSAGE_MAX_LINES = 8;

export class RunOverlay {
  /**
   * @param {object} options
   * @param {import("./run-state.js").RunState} options.runState
   * @param {import("./graph-model.js").GraphModel} options.model
   * @param {import("./canvas.js").EditorCanvas} options.editor
   * @param {(ref: object) => string} options.viewUrl
   */
  constructor({ runState, model, editor, viewUrl }) {
    this.runState = runState;
    this.model = model;
    this.editor = editor;
    this.viewUrl = viewUrl;
    this.outputs = new Map(); // nodeId → last `executed` output
    runState.addEventListener("update", (event) => this.onUpdate(event.detail.what));
    runState.addEventListener("output", (event) => this.onOutput(event.detail));
    runState.addEventListener("preview", (event) => this.onPreview(event.detail));
    model.addEventListener("load", () => this.reapply());
    editor.canvas.onDrawForeground = (ctx) => this.drawErrors(ctx);
  }

  /** Stroke style for a node's outline: green while it runs (installed on every node). */
  strokeFor(node) {
    if (String(node.id) !== this.runState.executingNode) return undefined;
    return { color: STATUS_COLOURS.executing, lineWidth: 3, padding: 6 };
  }

  onUpdate(what) {
    if (what === "progress" || what === "executing" || what === "finish" || what === "start") {
      this.showProgress();
    }
    if (what === "errors" || what === "finish" || what === "start") this.markErrors();
    this.editor.canvas.setDirty(true, true);
  }

  showProgress() {
    const progress = this.runState.progress;
    for (const node of this.model.nodes) {
      const running = progress && String(node.id) === progress.nodeId && progress.max > 0;
      node.progress = running ? progress.value / progress.max : undefined;
    }
  }

  markErrors() {
    const { errors } = this.runState;
    for (const node of this.model.nodes) {
      if (!node.constructor.nodeDef) continue; // a missing node type keeps LiteGraph's error outline
      const error = errors.get(String(node.id));
      node.has_errors = Boolean(error);
      for (const slot of node.inputs ?? []) slot.hasErrors = Boolean(error?.inputs.has(slot.name));
    }
  }

  onOutput({ nodeId, output }) {
    this.outputs.set(nodeId, output);
    const node = this.model.nodeById(nodeId);
    if (node?.display) showNodeOutput(node, output, { viewUrl: this.viewUrl });
  }

  onPreview({ nodeId, blob }) {
    const node = this.model.nodeById(nodeId);
    if (node?.display) showNodePreview(node, blob);
  }

  reapply() {
    for (const [nodeId, output] of this.outputs) {
      const node = this.model.nodeById(nodeId);
      if (node?.display) showNodeOutput(node, output, { viewUrl: this.viewUrl });
    }
    this.markErrors();
  }

  /** Draws each failing node's message under it and outlines its offending widgets (graph space). */
  drawErrors(ctx) {
    for (const [nodeId, error] of this.runState.errors) {
      const node = this.model.nodeById(nodeId);
      if (!node) continue;
      this.outlineWidgets(ctx, node, error.inputs);
      this.drawMessage(ctx, node, error.message);
    }
  }

  outlineWidgets(ctx, node, inputs) {
    ctx.save();
    ctx.strokeStyle = STATUS_COLOURS.error;
    ctx.lineWidth = 2;
    for (const widget of node.widgets ?? []) {
      if (!inputs.has(widget.name) || widget.last_y === undefined || node.flags.collapsed) continue;
      const height = widget.computedHeight ? widget.computedHeight - 4 : 20;
      ctx.beginPath();
      ctx.roundRect(node.pos[0] + 12, node.pos[1] + widget.last_y - 2, node.size[0] - 24, height + 4, [6]);
      ctx.stroke();
    }
    ctx.restore();
  }

  drawMessage(ctx, node, message) {
    const width = Math.max(node.size[0], 280);
    const [x, y] = [node.pos[0], node.pos[1] + (node.flags.collapsed ? 0 : node.size[1]) + 10];
    ctx.save();
    ctx.font = MESSAGE_FONT;
    const lines = wrapText(message, width - 16, (text) => ctx.measureText(text).width).slice(0, MESSAGE_MAX_LINES);
    ctx.fillStyle = "rgba(120, 16, 16, 0.92)";
    ctx.beginPath();
    ctx.roundRect(x, y, width, lines.length * MESSAGE_LINE + 10, [6]);
    ctx.fill();
    ctx.fillStyle = "#fff";
    ctx.textAlign = "left";
    lines.forEach((line, i) => {
      ctx.fillText(line, x + 8, y + 5 + MESSAGE_LINE * (i + 1) - 4);
    });
    ctx.restore();
  }
}
