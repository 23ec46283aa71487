// The full-size image viewer: one image at a time over the page, arrows to step through a set,
// Escape or a click outside to close, a link to open the original file. Whoever opened it may hear of each
// step (a node then shows the same picture).

import { h } from "./dom.js";

/** What to call an output image: the name its node gave it (the inspector's `view`), else its file name. */
export function imageTitle(ref) {
  return ref.view ?? ref.title ?? ref.filename;
}

export class ImageViewer {
  /** @param {{host: HTMLElement, viewUrl: (ref: object) => string}} options */
  constructor({ host, viewUrl }) {
    this.host = host;
    this.viewUrl = viewUrl;
    this.root = null;
    this.onKey = (event) => this.handleKey(event);
  }

  get isOpen() {
    return this.root !== null;
  }

  /** Shows image `index` of `refs` ({filename, subfolder, type} each); `onPage(index)` hears of each step. */
  open(refs, index = 0, { onPage = null } = {}) {
    if (!refs.length) return;
    this.close();
    this.refs = refs;
    this.onPage = onPage;
    this.index = Math.max(0, Math.min(index, refs.length - 1));
    this.image = h("img", { class: "ll-viewer-image", alt: "" });
    this.caption = h("div", { class: "ll-viewer-caption" });
    const stop = (event) => event.stopPropagation();
    this.root = h(
      "div",
      { class: "ll-viewer", onclick: () => this.close() },
      h("figure", { class: "ll-viewer-frame", onclick: stop }, this.image, this.caption),
      h("button", { class: "ll-viewer-close", title: "Close (Esc)", onclick: () => this.close() }, "×"),
    );
    if (refs.length > 1) {
      const prev = h("button", { class: "ll-viewer-prev", title: "Previous (←)", onclick: (e) => this.step(-1, e) }, "‹");
      const next = h("button", { class: "ll-viewer-next", title: "Next (→)", onclick: (e) => this.step(1, e) }, "›");
      this.root.append(prev, next);
    }
    this.host.appendChild(this.root);
    document.addEventListener("keydown", this.onKey, true);
    this.show();
  }

  show() {
    const ref = this.refs[this.index];
    const url = this.viewUrl(ref);
    this.image.src = url;
    const position = this.refs.length > 1 ? ` (${this.index + 1}/${this.refs.length})` : "";
    const link = h("a", { href: url, target: "_blank", rel: "noopener" }, "open original");
    const file = imageTitle(ref) === ref.filename ? "" : ` · ${ref.filename}`;
    this.caption.replaceChildren(`${imageTitle(ref)}${position}${file} · `, link);
  }

  step(delta, event) {
    event?.stopPropagation();
    this.index = (this.index + delta + this.refs.length) % this.refs.length;
    this.show();
    this.onPage?.(this.index);
  }

  handleKey(event) {
    if (event.key === "Escape") this.close();
    else if (event.key === "ArrowLeft") this.step(-1);
    else if (event.key === "ArrowRight") this.step(1);
    else return;
    event.preventDefault();
    event.stopPropagation();
  }

  close() {
    if (!this.root) return;
    this.root.remove();
    this.root = null;
    document.removeEventListener("keydown", this.onKey, true);
  }
}
