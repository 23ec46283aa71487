// The side panel: the queue (running, pending, finished prompts, with cancel) and the history gallery.
// It re-reads /api/queue and /api/history when the websocket says something changed.

import { h } from "./dom.js";
import { CLIENT_EVENTS, EVENTS } from "./protocol.js";
import { outputContent } from "./report-view.js";

const HISTORY_ITEMS = 50;
const REFRESH_EVENTS = [EVENTS.STATUS, EVENTS.EXECUTION_START, EVENTS.EXECUTION_SUCCESS, EVENTS.EXECUTION_ERROR,
  EVENTS.EXECUTION_INTERRUPTED, CLIENT_EVENTS.CONNECTION];

/** Output image refs of a history entry, in node order. */
function historyImages(entry) {
  return Object.values(entry.outputs ?? {}).flatMap((output) => outputContent(output).images);
}

/** Finished entries newest first: [{ promptId, number, status, images }]. */
export function finishedEntries(history) {
  return Object.entries(history)
    .map(([promptId, entry]) => ({
      promptId,
      number: entry.prompt?.[0] ?? 0,
      status: entry.status?.status_str ?? (entry.status?.completed ? "success" : "unknown"),
      images: historyImages(entry),
    }))
    .sort((a, b) => b.number - a.number);
}

export class QueuePanel {
  /**
   * @param {object} options
   * @param {HTMLElement} options.host
   * @param {import("./api.js").ApiClient} options.api
   * @param {import("./image-viewer.js").ImageViewer} options.viewer
   * @param {import("./dom.js").Toasts} options.toasts
   */
  constructor({ host, api, viewer, toasts }) {
    this.api = api;
    this.viewer = viewer;
    this.toasts = toasts;
    this.refreshTimer = null;
    this.queueList = h("ul", { class: "ll-queue-list" });
    this.gallery = h("div", { class: "ll-gallery" });
    this.root = h(
      "aside",
      { class: "ll-panel" },
      h("header", { class: "ll-panel-head" }, h("h2", {}, "Queue"),
        h("button", { class: "ll-link", onclick: () => this.clearPending(), title: "Remove every pending prompt" }, "clear")),
      this.queueList,
      h("header", { class: "ll-panel-head" }, h("h2", {}, "Gallery")),
      this.gallery,
    );
    host.appendChild(this.root);
    for (const type of REFRESH_EVENTS) api.addEventListener(type, () => this.scheduleRefresh());
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    // While the server is away the connection dot says so; a toast per failed refresh would only be noise.
    this.refreshTimer = setTimeout(() => this.refresh().catch((error) => console.warn("queue refresh failed", error)), 150);
  }

  async refresh() {
    const [queue, history] = await Promise.all([this.api.getQueue(), this.api.getHistory({ maxItems: HISTORY_ITEMS })]);
    const running = queue.queue_running.map((item) => ({ item, state: "running" }));
    const pending = [...queue.queue_pending].sort((a, b) => a[0] - b[0]).map((item) => ({ item, state: "pending" }));
    const finished = finishedEntries(history);
    this.queueList.replaceChildren(
      ...running.map((entry) => this.activeRow(entry)),
      ...pending.map((entry) => this.activeRow(entry)),
      ...finished.map((entry) => this.finishedRow(entry)),
    );
    if (!this.queueList.children.length) this.queueList.append(h("li", { class: "ll-empty" }, "Nothing queued yet"));
    this.renderGallery(finished);
  }

  activeRow({ item, state }) {
    const [number, promptId] = item;
    const cancel = () => this.cancel(promptId, state).catch((error) => this.toasts.error(error));
    return h(
      "li",
      { class: `ll-queue-item ${state}`, dataset: { promptId, state } },
      h("span", { class: "ll-queue-number" }, `#${number}`),
      h("span", { class: "ll-queue-state" }, state),
      h("button", { class: "ll-queue-cancel", title: state === "running" ? "Interrupt" : "Remove from queue", onclick: cancel }, "✕"),
    );
  }

  finishedRow({ promptId, number, status, images }) {
    const thumb = images.length
      ? h("img", { class: "ll-queue-thumb", src: this.api.viewUrl(images[0]), alt: "", loading: "lazy" })
      : null;
    return h(
      "li",
      { class: `ll-queue-item finished ${status}`, dataset: { promptId, state: "finished" },
        onclick: () => images.length && this.viewer.open(images, 0) },
      h("span", { class: "ll-queue-number" }, `#${number}`),
      h("span", { class: "ll-queue-state" }, status),
      thumb,
    );
  }

  renderGallery(finished) {
    const images = finished.flatMap((entry) => entry.images);
    this.gallery.replaceChildren(
      ...images.map((ref, i) =>
        h("img", { class: "ll-gallery-thumb", src: this.api.viewUrl(ref), alt: ref.filename, title: ref.filename,
          loading: "lazy", onclick: () => this.viewer.open(images, i) }),
      ),
    );
    if (!images.length) this.gallery.append(h("div", { class: "ll-empty" }, "Images you generate appear here"));
  }

  async cancel(promptId, state) {
    if (state === "running") await this.api.interrupt(promptId);
    else await this.api.deleteFromQueue([promptId]);
    this.scheduleRefresh();
  }

  async clearPending() {
    await this.api.clearQueue();
    this.scheduleRefresh();
  }
}
