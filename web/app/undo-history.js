// Undo/redo over whole-graph snapshots. It listens to GraphModel "change" events, so every kind of edit
// (move, wire, widget, paste, delete, group) is undoable without each action recording itself.

import { workflowFromKey } from "./graph-model.js";

export class UndoHistory {
  /**
   * @param {import("./graph-model.js").GraphModel} model
   * @param {{limit?: number}} [options]
   */
  constructor(model, { limit = 100 } = {}) {
    this.model = model;
    this.limit = limit;
    this.undoStack = [];
    this.redoStack = [];
    this.restoring = false;
    model.addEventListener("change", (event) => this.record(event.detail));
    model.addEventListener("load", (event) => {
      if (!this.restoring && event.detail.reason !== "undo") this.reset();
    });
  }

  record({ previous }) {
    if (this.restoring) return;
    this.undoStack.push(previous);
    if (this.undoStack.length > this.limit) this.undoStack.shift();
    this.redoStack.length = 0;
  }

  reset() {
    this.undoStack.length = 0;
    this.redoStack.length = 0;
  }

  get canUndo() {
    return this.undoStack.length > 0;
  }

  get canRedo() {
    return this.redoStack.length > 0;
  }

  undo() {
    return this.step(this.undoStack, this.redoStack);
  }

  redo() {
    return this.step(this.redoStack, this.undoStack);
  }

  step(from, to) {
    // An edit not yet seen (e.g. a drag still in progress) becomes a state of its own first.
    this.model.markChanged("before-undo");
    const key = from.pop();
    if (key === undefined) return false;
    to.push(this.model.lastKey);
    this.restoring = true;
    try {
      const viewport = this.model.serialize().extra?.ds;
      const workflow = workflowFromKey(key);
      if (viewport) workflow.extra = { ...workflow.extra, ds: viewport };
      this.model.load(workflow, { reason: "undo", quiet: true });
    } finally {
      this.restoring = false;
    }
    this.model.dispatchEvent(new CustomEvent("restored", { detail: { key } }));
    return true;
  }
}
