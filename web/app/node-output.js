// What a node shows below its widgets after it ran: its output images (or the live latent preview while it
// runs) and any text it returned. The data lives on the node as `node.display`; drawing reads it. Several
// images show one at a time, large, with a pager under them (◀ 2 / 6 · title ▶), for any node.

import { LiteGraph } from "../vendor/litegraph/litegraph.es.js";
import { imageTitle } from "./image-viewer.js";
import { outputContent } from "./report-view.js";

const GAP = 6;
const TEXT_LINE = 14;
const MAX_TEXT_LINES = 24;
const MONO_CHAR_WIDTH = 7.3; // 12px monospace
const MAX_TEXT_WIDTH = 560;
const MIN_IMAGE_AREA = 220;
const MIN_IMAGE_WIDTH = 240;
// A node grows to show its pictures up to 512 px a side, but no taller than MAX_NODE_HEIGHT overall unless the
// picture would get less than MIN_PICTURE_HEIGHT: a node with many widgets and a summary (the inspector's take
// ~500 px) gets a smaller picture rather than becoming a tower. Resizing the node by hand enlarges the picture,
// and the full-size viewer (double-click) shows any picture whole.
const MAX_IMAGE_WIDTH = 512;
const MAX_IMAGE_HEIGHT = 512;
const MIN_PICTURE_HEIGHT = 240;
const MAX_NODE_HEIGHT = 760;
const PAGER_HEIGHT = 20;
const PAGER_BUTTON = 24;

/** An empty display: nothing to show. `page` is the index of the image shown. */
export function emptyDisplay() {
  return { images: [], titles: [], page: 0, text: [], reports: [], preview: null };
}

function loadImage(url, node) {
  const image = new Image();
  image.addEventListener("load", () => {
    if (node.display.images.includes(image)) fitNodeToDisplay(node); // its size is known only now
    node.setDirtyCanvas(true, false);
  });
  image.src = url;
  return image;
}

/** A rerun keeps the page when it shows the same picture there (the inspector's heat maps stay in view). */
function keptPage(previous, titles) {
  const page = previous?.page;
  return Number.isInteger(page) && page < titles.length && previous.titles?.[page] === titles[page] ? page : 0;
}

/**
 * Shows an `executed` event's output on the node: its images (fetched through `viewUrl`) and its text
 * and reports, as report-view.js reads them.
 */
export function showNodeOutput(node, output, { viewUrl }) {
  const { images: refs, lines, reports } = outputContent(output);
  const images = refs.map((ref) => loadImage(viewUrl(ref), node));
  const titles = refs.map(imageTitle);
  const page = keptPage(node.display, titles);
  node.display = { images, titles, page, text: lines.slice(0, MAX_TEXT_LINES), reports, preview: null };
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

function hasPager({ images, preview }) {
  return images.length > 1 && !preview;
}

function isLoaded(image) {
  return image.complete && image.naturalWidth > 0;
}

/** The scale that fits a loaded picture into `width` × `height`, aspect kept. */
function fittedScale(image, width, height) {
  return Math.min(width / image.naturalWidth, height / image.naturalHeight);
}

/** How tall a picture may grow the node when `above` pixels of it are taken by widgets, text and pager. */
function pictureHeightFor(above) {
  return Math.min(MAX_IMAGE_HEIGHT, Math.max(MIN_PICTURE_HEIGHT, MAX_NODE_HEIGHT - above));
}

/**
 * The [width, height] the image area wants: as wide as the widest picture (up to MAX_IMAGE_WIDTH), and as
 * tall as the tallest one is drawn at the node's width within `maxHeight`, so that paging never resizes it.
 */
function wantedImageArea(node, images, maxHeight) {
  const loaded = images.filter(isLoaded);
  const widest = Math.max(0, ...loaded.map((image) => image.naturalWidth));
  const width = Math.max(MIN_IMAGE_WIDTH, Math.min(MAX_IMAGE_WIDTH, widest));
  const across = Math.max(width, node.size[0] - 2 * GAP);
  const heights = loaded.map((image) => image.naturalHeight * fittedScale(image, across, maxHeight));
  return [width, Math.max(MIN_IMAGE_AREA, ...heights)];
}

/** Grows the node (never shrinks it) so that `display` has room. */
function fitNodeToDisplay(node) {
  const { images, text, preview } = node.display;
  const textHeight = text.length ? text.length * TEXT_LINE + 2 * GAP : 0;
  const shown = preview ? [preview] : images;
  const pagerHeight = hasPager(node.display) ? PAGER_HEIGHT + GAP : 0;
  const above = contentBottom(node) + textHeight + pagerHeight + 2 * GAP; // 2 gaps: around the image area
  const [imageWidth, imageHeight] = shown.length ? wantedImageArea(node, shown, pictureHeightFor(above)) : [0, 0];
  const wanted = above + imageHeight - (imageHeight ? 0 : GAP);
  const longest = Math.max(0, ...text.map((line) => line.length));
  const textWidth = Math.min(MAX_TEXT_WIDTH, longest * MONO_CHAR_WIDTH + 3 * GAP); // clip inset + text inset
  const width = Math.max(node.size[0], imageWidth ? imageWidth + 2 * GAP : 0, textWidth);
  if (wanted > node.size[1] || width > node.size[0]) {
    node.setSize([width, Math.max(node.size[1], wanted)]);
  }
}

function drawImageFitted(ctx, image, [x, y, w, h]) {
  if (!isLoaded(image)) return;
  const scale = fittedScale(image, w, h);
  const dw = image.naturalWidth * scale;
  const dh = image.naturalHeight * scale;
  ctx.drawImage(image, x + (w - dw) / 2, y, dw, dh); // at the top: under the text, however tall the area
}

/** The longest start of `text` (with an ellipsis when cut) that fits `width` in the context's font. */
function fitText(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let end = text.length;
  while (end > 0 && ctx.measureText(`${text.slice(0, end)}…`).width > width) end--;
  return `${text.slice(0, end)}…`;
}

/** The pager's label: "2 / 6 · heat maps". */
export function pagerLabel({ images, titles, page }) {
  return `${page + 1} / ${images.length} · ${titles[page] ?? ""}`;
}

function drawPager(ctx, display, [x, y, w, h]) {
  ctx.save();
  ctx.fillStyle = LiteGraph.WIDGET_BGCOLOR;
  ctx.beginPath();
  ctx.roundRect(x, y, w, h, h / 2);
  ctx.fill();
  ctx.fillStyle = LiteGraph.WIDGET_TEXT_COLOR;
  ctx.font = "12px sans-serif";
  ctx.textBaseline = "middle";
  ctx.textAlign = "center";
  ctx.fillText("◀", x + PAGER_BUTTON / 2, y + h / 2);
  ctx.fillText("▶", x + w - PAGER_BUTTON / 2, y + h / 2);
  ctx.fillText(fitText(ctx, pagerLabel(display), w - 2 * PAGER_BUTTON), x + w / 2, y + h / 2);
  ctx.restore();
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

/** The area the shown image takes, or null when the node shows none. */
function imageArea(node) {
  const { images, preview, text } = node.display;
  if (!images.length && !preview) return null;
  const textHeight = text.length ? text.length * TEXT_LINE + 2 * GAP : 0;
  const top = contentBottom(node) + textHeight + GAP;
  const pagerHeight = hasPager(node.display) ? PAGER_HEIGHT + GAP : 0;
  const height = node.size[1] - top - pagerHeight - GAP;
  return height > 20 ? [GAP, top, node.size[0] - 2 * GAP, height] : null;
}

/** The pager's area [x, y, w, h] under the image, or null when the node shows one image or none. */
function pagerArea(node) {
  const area = imageArea(node);
  if (!area || !hasPager(node.display)) return null;
  return [area[0], area[1] + area[3] + GAP, area[2], PAGER_HEIGHT];
}

/**
 * Opens the node's pictures with `openImage(refs, index, { onPage })` (the image viewer) on picture `index`;
 * as the viewer steps, the node shows the same picture (while it still shows that output).
 */
export function viewNodeImages(node, index, openImage) {
  const refs = node.outputRefs;
  openImage(refs, index, { onPage: (page) => node.outputRefs === refs && showPage(node, page) });
}

/** Shows image `index` of the node's output; false when it has no such image or shows it already. */
export function showPage(node, index) {
  const { images, page } = node.display;
  if (!Number.isInteger(index) || index < 0 || index >= images.length || index === page) return false;
  node.display = { ...node.display, page: index };
  node.setDirtyCanvas(true, false);
  return true;
}

/** Shows the image `delta` pages on (wrapping around); false when the node has no pages to turn. */
export function turnPage(node, delta) {
  const { images, page } = node.display;
  if (!hasPager(node.display)) return false;
  showPage(node, (page + delta + images.length) % images.length);
  return true;
}

/** -1 or 1 when a point in node coordinates lies on the pager's ◀ or ▶ button, else 0. */
export function pagerButtonAt(node, [x, y]) {
  const area = pagerArea(node);
  if (!area || y < area[1] || y > area[1] + area[3] || x < area[0] || x > area[0] + area[2]) return 0;
  if (x <= area[0] + PAGER_BUTTON) return -1;
  return x >= area[0] + area[2] - PAGER_BUTTON ? 1 : 0;
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
  drawImageFitted(ctx, images[node.display.page], area);
  const pager = pagerArea(node);
  if (pager && !lowQuality) drawPager(ctx, node.display, pager);
}

/** The index of the output image shown under a point in node coordinates, or -1. */
export function imageIndexAt(node, [x, y]) {
  const area = imageArea(node);
  const { images, preview, page } = node.display;
  if (!area || !images.length || preview) return -1;
  const inside = x >= area[0] && x <= area[0] + area[2] && y >= area[1] && y <= area[1] + area[3];
  return inside ? page : -1;
}
