// The graph being edited, with no DOM: it owns the LiteGraph LGraph, loads and serializes workflows, and
// emits "change" whenever the workflow's content differs from the last time anyone looked. The undo
// history and the autosave subscribe to it; the canvas only draws it.

import { LGraph, LiteGraph } from "../vendor/litegraph/litegraph.es.js";

/** The workflow without the viewport: what undo and "is it modified" compare. */
function contentKey(workflow) {
  const { extra = {}, ...rest } = workflow;
  const { ds: _viewport, ...extraRest } = extra;
  return JSON.stringify({ ...rest, extra: extraRest });
}

export class GraphModel extends EventTarget {
  constructor() {
    super();
    this.graph = new LGraph();
    this.lastKey = contentKey(this.serialize());
    this.loading = false;
  }

  get nodes() {
    return this.graph.nodes;
  }

  nodeById(id) {
    return this.graph.getNodeById(Number.isNaN(Number(id)) ? id : Number(id));
  }

  /** The workflow as ComfyUI's LiteGraph JSON (version 0.4): nodes, links, groups, extra. */
  serialize() {
    return this.graph.serialize({ sortNodes: true });
  }

  /**
   * Replaces the graph with `workflow`. Emits "load" (detail: { workflow, reason }) so views can reset,
   * then "change" unless `quiet` (undo/redo restore states without recording them again).
   */
  load(workflow, { reason = "open", quiet = false } = {}) {
    this.loading = true;
    try {
      this.graph.clear();
      this.graph.configure(structuredClone(workflow));
    } finally {
      this.loading = false;
    }
    this.dispatchEvent(new CustomEvent("load", { detail: { workflow, reason } }));
    if (quiet) {
      this.lastKey = contentKey(this.serialize());
    } else {
      this.markChanged(reason);
    }
  }

  clear() {
    this.load(new LGraph().serialize(), { reason: "new" });
  }

  /**
   * Adds a node of `type` at graph position `pos`; returns it, or null for an unknown type. Callers
   * call markChanged once the whole edit is done (e.g. after wiring the new node), so it undoes as one.
   */
  addNode(type, { pos = [0, 0] } = {}) {
    const node = LiteGraph.createNode(type);
    if (!node) return null;
    node.pos = [pos[0], pos[1]];
    this.graph.add(node);
    return node;
  }

  /**
   * Call after anything that may have edited the graph. Emits "change" (detail: { previous, current,
   * reason }, both serialized keys) only when the content really differs.
   */
  markChanged(reason = "edit") {
    if (this.loading) return false;
    const key = contentKey(this.serialize());
    if (key === this.lastKey) return false;
    const previous = this.lastKey;
    this.lastKey = key;
    this.dispatchEvent(new CustomEvent("change", { detail: { previous, current: key, reason } }));
    return true;
  }
}

/** Parses a content key back into a workflow (undo stores keys, which are workflows without a viewport). */
export function workflowFromKey(key) {
  return JSON.parse(key);
}
