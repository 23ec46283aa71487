// A multi-line text widget (prompts). It is drawn on the canvas, so hundreds of nodes stay cheap; a click
// opens one real <textarea> over it (text-editor.js) for editing.

import { BaseWidget } from "../vendor/litegraph/litegraph.es.js";

const FONT_SIZE = 12;
const LINE_HEIGHT = 15;
const PADDING = 6;

/** Splits text into lines that fit `maxWidth`, breaking at spaces (or inside words that are too long). */
export function wrapText(text, maxWidth, measure) {
  const lines = [];
  for (const paragraph of String(text).split("\n")) {
    let line = "";
    for (const word of paragraph.split(" ")) {
      const candidate = line ? `${line} ${word}` : word;
      if (measure(candidate) <= maxWidth || !line) {
        line = candidate;
      } else {
        lines.push(line);
        line = word;
      }
      while (measure(line) > maxWidth && line.length > 1) {
        let cut = line.length - 1;
        while (cut > 1 && measure(line.slice(0, cut)) > maxWidth) cut -= 1;
        lines.push(line.slice(0, cut));
        line = line.slice(cut);
      }
    }
    lines.push(line);
  }
  return lines;
}

export class MultilineTextWidget extends BaseWidget {
  constructor(spec, node, { editor }) {
    super(spec, node);
    this.type = "customtext";
    this.value = String(spec.value ?? "");
    this.editor = editor;
    this.wrapped = { key: "", lines: [] };
  }

  /** Grows with the node, except on a node that shows output below its widgets: that keeps the room. */
  computeLayoutSize(node) {
    const minHeight = 4 * LINE_HEIGHT + 2 * PADDING;
    const display = node?.display;
    const showsOutput = display && (display.images.length || display.text.length || display.preview);
    return { minHeight, maxHeight: showsOutput ? minHeight : 1e6, minWidth: 160 };
  }

  get height() {
    return this.computedHeight || super.height;
  }

  /** The widget's box in node coordinates: [x, y, width, height]. */
  box(nodeWidth) {
    const margin = BaseWidget.margin - 5;
    return [margin, this.y, nodeWidth - 2 * margin, this.height - 4];
  }

  linesFor(ctx, width) {
    const key = `${width}|${this.value}`;
    if (this.wrapped.key !== key) {
      this.wrapped = { key, lines: wrapText(this.value, width, (s) => ctx.measureText(s).width) };
    }
    return this.wrapped.lines;
  }

  drawWidget(ctx, { width, showText = true }) {
    const [x, y, w, h] = this.box(width);
    const saved = { fillStyle: ctx.fillStyle, strokeStyle: ctx.strokeStyle, font: ctx.font };
    ctx.fillStyle = this.background_color;
    ctx.strokeStyle = this.outline_color;
    ctx.beginPath();
    ctx.roundRect(x, y, w, h, [4]);
    ctx.fill();
    if (showText) {
      ctx.stroke();
      this.drawText(ctx, [x, y, w, h]);
    }
    Object.assign(ctx, saved);
  }

  drawText(ctx, [x, y, w, h]) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(x, y, w, h);
    ctx.clip();
    ctx.font = `${FONT_SIZE}px ${this.fontFamily()}`;
    ctx.textAlign = "left";
    const empty = this.value === "";
    ctx.fillStyle = empty || this.computedDisabled ? this.disabledTextColor : this.text_color;
    const lines = empty ? [this.displayName] : this.linesFor(ctx, w - 2 * PADDING);
    const visible = Math.max(1, Math.floor((h - PADDING) / LINE_HEIGHT));
    for (let i = 0; i < Math.min(lines.length, visible); i++) {
      const overflow = i === visible - 1 && lines.length > visible;
      ctx.fillText(overflow ? `${lines[i]}…` : lines[i], x + PADDING, y + PADDING + FONT_SIZE + i * LINE_HEIGHT);
    }
    ctx.restore();
  }

  fontFamily() {
    return "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
  }

  onClick({ node, canvas }) {
    this.editor.open({ widget: this, node, canvas });
  }
}

export const TEXT_WIDGET_METRICS = Object.freeze({ FONT_SIZE, LINE_HEIGHT, PADDING });
