// What a node shows below its widgets after it ran: its output images (or the live latent preview while it
// runs) and any text it returned. The data lives on the node as `node.display`; drawing reads it.

import { LiteGraph } from "../vendor/litegraph/litegraph.es.js";
import { outputContent } from "./report-view.js";

const GAP = 6;
const TEXT_LINE = 14;
const MAX_TEXT_LINES = 24;
const MONO_CHAR_WIDTH = 7.3; // 12px monospace
const MAX_TEXT_WIDTH = 560;
const MIN_IMAGE_AREA = 220;

/** An empty display: nothing to show. */
export function emptyDisplay() {
  return { images: [], text: [], reports: [], preview: null };
}

function loadImage(url, node) {
  const image = new Image();
  image.addEventListener("load", () => node.setDirtyCanvas(true, false));
  image.src = url;
  return image;
}

/**
 * Shows an `executed` event's output on the node: its images (fetched through `viewUrl`) and its text
 * and reports, as report-view.js reads them.
 */
export function showNodeOutput(node, output, { viewUrl }) {
  const { images: refs, lines, reports } = outputContent(output);
  const images = refs.map((ref) => loadImage(viewUrl(ref), node));
  node.display = { images, text: lines.slice(0, MAX_TEXT_LINES), reports, preview: null };
  node.outputRefs = refs;
  node.outputCount = (node.outputCount ?? 0) + 1; // previews still loading belong to the run before
  fitNodeToDisplay(node);
  node.setDirtyCanvas(true, true);
}

/** Shows a live preview (a decoded latent frame) in the node until its output arrives. */
export function showNodePreview(node, blob) {
  const url = URL.createObjectURL(blob);
  const image = new Image();
  const outputCount = node.outputCount;
  image.addEventListener("load", () => {
    if (node.outputCount !== outputCount) {
      URL.revokeObjectURL(url); // the node's output arrived while this frame loaded
      return;
    }
    const previous = node.display.preview;
    if (previous?.src.startsWith("blob:")) URL.revokeObjectURL(previous.src);
    node.display = { ...node.display, preview: image };
    node.previewCount = (node.previewCount ?? 0) + 1; // live previews shown so far (the browser tests read it)
    fitNodeToDisplay(node);
    node.setDirtyCanvas(true, false);
  });
  image.src = url;
}

/** Where widgets and slot rows end, in node coordinates: outputs are drawn below. */
function contentBottom(node) {
  let bottom = 0;
  for (const widget of node.widgets ?? []) {
    if (!node.isWidgetVisible(widget)) continue;
    bottom = Math.max(bottom, widget.y + (widget.computedHeight ?? LiteGraph.NODE_WIDGET_HEIGHT + 4));
  }
  const rows = Math.max(
    node.inputs?.filter((slot) => !slot.widget).length ?? 0,
    node.outputs?.length ?? 0,
  );
  return Math.max(bottom, rows * LiteGraph.NODE_SLOT_HEIGHT + GAP);
}

/** Grows the node (never shrinks it) so that `display` has room. */
function fitNodeToDisplay(node) {
  const { images, text, preview } = node.display;
  const textHeight = text.length ? text.length * TEXT_LINE + 2 * GAP : 0;
  const imageHeight = images.length || preview ? MIN_IMAGE_AREA : 0;
  const wanted = contentBottom(node) + textHeight + imageHeight + GAP;
  const longest = Math.max(0, ...text.map((line) => line.length));
  const textWidth = Math.min(MAX_TEXT_WIDTH, longest * MONO_CHAR_WIDTH + 3 * GAP); // clip inset + text inset
  const width = Math.max(node.size[0], imageHeight ? 240 : 0, textWidth);
  if (wanted > node.size[1] || width > node.size[0]) {
    node.setSize([width, Math.max(node.size[1], wanted)]);
  }
}

/** The rectangle [x, y, w, h] of image `index` of `count` laid out in a grid filling `area`. */
function imageCell(area, index, count) {
  const columns = Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / columns);
  const w = area[2] / columns;
  const h = area[3] / rows;
  return [area[0] + (index % columns) * w, area[1] + Math.floor(index / columns) * h, w, h];
}

function drawImageFitted(ctx, image, [x, y, w, h]) {
  if (!image.complete || !image.naturalWidth) return;
  const scale = Math.min(w / image.naturalWidth, h / image.naturalHeight);
  const dw = image.naturalWidth * scale;
  const dh = image.naturalHeight * scale;
  ctx.drawImage(image, x + (w - dw) / 2, y + (h - dh) / 2, dw, dh);
}

function drawText(ctx, lines, [x, y, w]) {
  ctx.save();
  ctx.font = "12px ui-monospace, Menlo, Consolas, monospace";
  ctx.fillStyle = LiteGraph.WIDGET_TEXT_COLOR;
  ctx.textAlign = "left";
  ctx.beginPath();
  ctx.rect(x, y, w, lines.length * TEXT_LINE + GAP);
  ctx.clip();
  lines.forEach((line, i) => ctx.fillText(line, x + GAP, y + TEXT_LINE * (i + 1)));
  ctx.restore();
}

/** The area [x, y, w, h] the node's text takes, or null when it shows none. */
export function textArea(node) {
  const { text } = node.display;
  return text.length ? [GAP, contentBottom(node), node.size[0] - 2 * GAP, text.length * TEXT_LINE + GAP] : null;
}

/** Whether a point in node coordinates lies on text that summarises a report (which opens in full). */
export function reportAt(node, [x, y]) {
  const area = textArea(node);
  if (!area || !node.display.reports?.length) return false;
  return x >= area[0] && x <= area[0] + area[2] && y >= area[1] && y <= area[1] + area[3];
}

/** The area the images take, or null when the node shows none. */
function imageArea(node) {
  const { images, preview, text } = node.display;
  if (!images.length && !preview) return null;
  const textHeight = text.length ? text.length * TEXT_LINE + 2 * GAP : 0;
  const top = contentBottom(node) + textHeight + GAP;
  const height = node.size[1] - top - GAP;
  return height > 20 ? [GAP, top, node.size[0] - 2 * GAP, height] : null;
}

/** Draws the node's display (called from the node's onDrawBackground). */
export function drawNodeDisplay(node, ctx, { lowQuality }) {
  const { images, text, preview } = node.display;
  if (!images.length && !text.length && !preview) return;
  if (text.length && !lowQuality) {
    drawText(ctx, text, [GAP, contentBottom(node), node.size[0] - 2 * GAP]);
  }
  const area = imageArea(node);
  if (!area) return;
  if (preview) {
    drawImageFitted(ctx, preview, area);
    return;
  }
  images.forEach((image, i) => drawImageFitted(ctx, image, imageCell(area, i, images.length)));
}

/** The index of the output image under a point in node coordinates, or -1. */
export function imageIndexAt(node, [x, y]) {
  const area = imageArea(node);
  const { images } = node.display;
  if (!area || !images.length) return -1;
  for (let i = 0; i < images.length; i++) {
    const [cx, cy, cw, ch] = imageCell(area, i, images.length);
    if (x >= cx && x <= cx + cw && y >= cy && y <= cy + ch) return i;
  }
  return -1;
}
