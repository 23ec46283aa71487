// Workflow files: new, open (picker or drop, JSON or PNG), save, save as, download, export the API
// prompt, and the autosave that brings the graph back after a reload.
//
// Files are in LatentLoom's workflow format (latentloom/workflow). The canvas holds its graph in
// LiteGraph's form, which is ComfyUI's UI format; every conversion between the two, and to the API
// prompt, is the server's (POST /api/workflow/convert), the same code `latentloom run` uses.

import { readPngText } from "./png-metadata.js";

const STORAGE_KEY = "latentloom.workflow";
const DEFAULT_NAME = "workflow";

/** A file the canvas cannot open, with a message for people. */
export class WorkflowFileError extends Error {
  constructor(message) {
    super(message);
    this.name = "WorkflowFileError";
  }
}

function downloadJson(data, filename) {
  const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function baseName(filename) {
  return filename.replace(/\.(json|png)$/i, "") || DEFAULT_NAME;
}

function parseJson(text, source) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new WorkflowFileError(`${source} is not valid JSON (${error.message})`);
  }
}

/** ComfyUI's UI format, which LiteGraph reads as it is. */
function isCanvasGraph(data) {
  return Boolean(data) && Array.isArray(data.nodes) && !("format" in data);
}

/** The JSON a file holds: the file itself, or a PNG's "workflow" chunk (else its "prompt" chunk). */
async function readFileJson(file) {
  if (file.type === "image/png" || /\.png$/i.test(file.name)) {
    const texts = await readPngText(await file.arrayBuffer());
    const text = texts.workflow ?? texts.prompt;
    if (!text) throw new WorkflowFileError(`${file.name} carries neither a workflow nor a prompt`);
    return parseJson(text, file.name);
  }
  return parseJson(await file.text(), file.name);
}

function problemMessages(response) {
  const messages = (response.problems ?? []).map((problem) => problem.message);
  return response.missing_message ? [response.missing_message, ...messages] : messages;
}

export class WorkflowFiles extends EventTarget {
  /**
   * @param {object} options
   * @param {import("./graph-model.js").GraphModel} options.model
   * @param {import("./api.js").ApiClient} options.api for the server's conversions
   * @param {Storage} [options.storage]
   */
  constructor({ model, api, storage = window.localStorage }) {
    super();
    this.model = model;
    this.api = api;
    this.storage = storage;
    this.name = DEFAULT_NAME;
    this.savedKey = model.lastKey;
    model.addEventListener("change", () => this.autosave());
    model.addEventListener("load", () => this.autosave());
    window.addEventListener("pagehide", () => this.autosave());
  }

  get modified() {
    return this.model.lastKey !== this.savedKey;
  }

  /** Loads the autosaved graph; false when there is none (or it cannot be read). */
  restore() {
    const raw = this.storage.getItem(STORAGE_KEY);
    if (!raw) return false;
    try {
      const saved = JSON.parse(raw);
      this.model.load(saved.workflow, { reason: "restore" });
      this.name = saved.name || DEFAULT_NAME;
      this.savedKey = saved.savedKey ?? this.model.lastKey;
    } catch (error) {
      console.warn("the autosaved workflow could not be restored", error);
      return false;
    }
    this.announce();
    return true;
  }

  /** Keeps the graph (in the canvas's own form, so nothing is lost) for the next visit. */
  autosave() {
    const record = { name: this.name, savedKey: this.savedKey, workflow: this.model.serialize() };
    this.storage.setItem(STORAGE_KEY, JSON.stringify(record));
    this.announce();
  }

  announce() {
    this.dispatchEvent(new CustomEvent("state", { detail: { name: this.name, modified: this.modified } }));
  }

  /** Starts a new graph; `populate(model)` fills it (e.g. the default graph). */
  newWorkflow(populate) {
    populate(this.model);
    this.name = DEFAULT_NAME;
    this.savedKey = this.model.lastKey;
    this.autosave();
  }

  /**
   * Turns parsed JSON (our file, ComfyUI's UI format, or an API prompt) into the canvas graph and the
   * problems met on the way.
   */
  async canvasGraph(data) {
    if (isCanvasGraph(data)) return { graph: data, problems: [] };
    const response = await this.api.convertWorkflow(data, "comfy_ui");
    return { graph: response.result, problems: problemMessages(response) };
  }

  /** Opens a file; resolves to the problems met reading it (empty when it fitted). */
  async open(file) {
    const { graph, problems } = await this.canvasGraph(await readFileJson(file));
    this.model.load(graph, { reason: "open" });
    this.name = baseName(file.name);
    this.savedKey = this.model.lastKey;
    this.autosave();
    return problems;
  }

  pickFile() {
    return new Promise((resolve, reject) => {
      const picker = document.createElement("input");
      picker.type = "file";
      picker.accept = ".json,.png,application/json,image/png";
      picker.addEventListener("change", () => {
        const file = picker.files?.[0];
        if (file) this.open(file).then(resolve, reject);
      });
      picker.click();
    });
  }

  /** The graph converted by the server: "ours" is the workflow file, "prompt" the API prompt. */
  async converted(to) {
    const response = await this.api.convertWorkflow(this.model.serialize(), to);
    return response.result;
  }

  /** Saves under the current name (a download named after it). */
  async save() {
    const file = await this.converted("ours");
    downloadJson(file, `${this.name}.json`);
    this.savedKey = this.model.lastKey;
    this.autosave();
  }

  /** Downloads a copy without changing the name or the saved state. */
  async download() {
    downloadJson(await this.converted("ours"), `${this.name}.json`);
  }

  /** Asks for a name, then saves under it; false when the user cancelled. */
  async saveAs() {
    const name = window.prompt("Save workflow as", this.name);
    if (!name) return false;
    this.name = baseName(name.trim());
    await this.save();
    return true;
  }

  async exportPrompt() {
    downloadJson(await this.converted("prompt"), `${this.name}_api.json`);
  }

  /** Makes `element` accept dropped workflow files; `onResult` gets the problems, `onError` failures. */
  acceptDrops(element, { onResult, onError }) {
    element.addEventListener("dragover", (event) => {
      if (event.dataTransfer?.types.includes("Files")) event.preventDefault();
    });
    element.addEventListener("drop", (event) => {
      const file = event.dataTransfer?.files?.[0];
      if (!file) return;
      event.preventDefault();
      this.open(file).then(onResult, onError);
    });
  }
}
