// The editor's actions, shared by the toolbar, menus and shortcuts: queueing (whole graph or up to a
// node), files, undo/redo, grouping, bypass/mute.

import { LGraphEventMode } from "../vendor/litegraph/litegraph.es.js";
import { ApiError } from "./api.js";
import { buildDefaultGraph } from "./default-graph.js";
import { applyControlAfterGenerate } from "./widgets.js";

const MODES = Object.freeze({ bypass: LGraphEventMode.BYPASS, mute: LGraphEventMode.NEVER });

/**
 * The node problems of a refused prompt in ComfyUI's node_errors shape: the validation errors, or the
 * problems the server met turning the graph into a prompt (each naming its node and input).
 */
export function nodeErrorsOf(error) {
  if (Object.keys(error.nodeErrors).length) return error.nodeErrors;
  const byNode = {};
  for (const problem of error.body?.error?.extra_info?.problems ?? []) {
    if (problem.node_id == null) continue;
    byNode[problem.node_id] ??= { errors: [] };
    const extra_info = problem.input_name ? { input_name: problem.input_name } : {};
    byNode[problem.node_id].errors.push({ message: problem.message, details: "", extra_info });
  }
  return byNode;
}

function validationSummary(error, nodeErrors) {
  const top = error.body?.error;
  const count = Object.keys(nodeErrors).length;
  const nodes = count ? ` (${count} node${count > 1 ? "s" : ""} marked)` : "";
  return `${top?.message ?? error.message}${nodes}${top?.details && !count ? `: ${top.details}` : ""}`;
}

export class EditorApp {
  /** @param {object} parts { api, model, editor, history, files, runState, textEditor, toasts, getDefs } */
  constructor(parts) {
    Object.assign(this, parts);
  }

  /** Queues the graph (or only what `targets` need); applies control-after-generate once it is queued. */
  async queue({ targets = null, front = false } = {}) {
    this.textEditor.close();
    this.model.markChanged("queue");
    this.runState.clearErrors();
    try {
      const workflow = this.model.serialize();
      const result = await this.api.queueWorkflow(workflow, { partialTargets: targets, front });
      if (applyControlAfterGenerate(this.model.nodes)) {
        this.model.markChanged("control-after-generate");
        this.editor.canvas.setDirty(true, false);
      }
      this.toasts.show(`Queued prompt #${result.number}`);
      return result;
    } catch (error) {
      if (error instanceof ApiError && error.status === 400) {
        const nodeErrors = nodeErrorsOf(error);
        this.runState.showValidationErrors(nodeErrors);
        this.toasts.show(validationSummary(error, nodeErrors), { kind: "error" });
      } else {
        this.toasts.error(error);
      }
      return null;
    }
  }

  runUpTo(node) {
    return this.queue({ targets: [String(node.id)] });
  }

  interrupt() {
    this.api.interrupt().catch((error) => this.toasts.error(error));
  }

  newWorkflow() {
    this.files.newWorkflow((model) => buildDefaultGraph(model, this.getDefs()) || model.clear());
    this.editor.fitView();
  }

  open() {
    this.files.pickFile().then((problems) => this.reportOpened(problems), (error) => this.toasts.error(error));
  }

  /** After a file opened: fit it in view and say what did not fit, if anything. */
  reportOpened(problems) {
    this.editor.fitView();
    if (problems.length) {
      const more = problems.length > 5 ? `\n… and ${problems.length - 5} more` : "";
      this.toasts.show(`Opened with problems:\n${problems.slice(0, 5).join("\n")}${more}`, { kind: "error" });
    }
  }

  /** Runs a file action, reporting its failure (e.g. the server refused a conversion). */
  async fileAction(action) {
    try {
      await action(this.files);
    } catch (error) {
      this.toasts.error(error);
    }
  }

  undo() {
    if (!this.history.undo()) this.toasts.show("Nothing to undo", { timeoutMs: 1200 });
  }

  redo() {
    if (!this.history.redo()) this.toasts.show("Nothing to redo", { timeoutMs: 1200 });
  }

  /** Toggles bypass or mute on the selected nodes. */
  toggleMode(kind) {
    const mode = MODES[kind];
    const selected = Object.values(this.editor.canvas.selected_nodes);
    if (!selected.length) return;
    const allSet = selected.every((node) => node.mode === mode);
    for (const node of selected) node.mode = allSet ? LGraphEventMode.ALWAYS : mode;
    this.model.markChanged(kind);
    this.editor.canvas.setDirty(true, true);
  }
}
