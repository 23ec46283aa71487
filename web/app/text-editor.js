// One <textarea> laid over a multi-line text widget while it is being edited. Typing updates the widget
// at once (so Ctrl+Enter queues what is on screen); leaving the box, panning or zooming closes it.

import { TEXT_WIDGET_METRICS } from "./text-widget.js";

export class TextEditorOverlay {
  /**
   * @param {object} options
   * @param {HTMLElement} options.host element the textarea is appended to (position: fixed inside it)
   * @param {() => void} options.onCommit called after an edit session changed the text
   */
  constructor({ host, onCommit }) {
    this.host = host;
    this.onCommit = onCommit;
    this.session = null;
  }

  get isOpen() {
    return this.session !== null;
  }

  open({ widget, node, canvas }) {
    this.close();
    const area = document.createElement("textarea");
    area.className = "ll-text-editor";
    area.value = widget.value;
    area.spellcheck = false;
    area.dataset.node = String(node.id);
    area.dataset.widget = widget.name;
    this.session = { area, widget, node, canvas, initial: widget.value };
    this.place();
    area.addEventListener("input", () => {
      widget.value = area.value;
      canvas.setDirty(true, false);
    });
    area.addEventListener("blur", () => this.close());
    area.addEventListener("keydown", (event) => {
      if (event.key === "Escape") area.blur();
      event.stopPropagation(); // keep Delete/Backspace/Ctrl+A away from the canvas
    });
    // The box is placed once: a zoom or pan would leave it behind, so it closes instead.
    canvas.canvas.addEventListener("wheel", () => area.blur(), { once: true, passive: true });
    this.host.appendChild(area);
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  /** Puts the textarea exactly over the widget, scaled with the canvas zoom. */
  place() {
    const { area, widget, node, canvas } = this.session;
    const [x, y, w, h] = widget.box(node.size[0]);
    const scale = canvas.ds.scale;
    const [left, top] = canvas.ds.convertOffsetToCanvas([node.pos[0] + x, node.pos[1] + y]);
    const frame = canvas.canvas.getBoundingClientRect();
    const { FONT_SIZE, LINE_HEIGHT, PADDING } = TEXT_WIDGET_METRICS;
    Object.assign(area.style, {
      left: `${frame.left + left}px`,
      top: `${frame.top + top}px`,
      width: `${w * scale}px`,
      height: `${h * scale}px`,
      fontSize: `${FONT_SIZE * scale}px`,
      lineHeight: `${LINE_HEIGHT * scale}px`,
      padding: `${(PADDING - 2) * scale}px ${PADDING * scale}px`,
    });
  }

  close() {
    const session = this.session;
    if (!session) return;
    this.session = null;
    session.area.remove();
    session.canvas.setDirty(true, false);
    if (session.widget.value !== session.initial) {
      session.node.onWidgetChanged?.(session.widget.name, session.widget.value, session.initial, session.widget);
      this.onCommit();
    }
  }
}
