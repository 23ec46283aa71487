// What is running right now, as the websocket reports it: the prompt, the executing node, sampler
// progress, node errors, queue size and connection state. No DOM; views subscribe to "update" events
// (detail: { what }) and to "output" / "preview" events that carry node results.

import { CLIENT_EVENTS, EVENTS } from "./protocol.js";

/** Turns a /prompt 400 body's node_errors into Map(nodeId → { message, inputs: Map(name → message) }). */
export function validationErrorsByNode(nodeErrors) {
  const byNode = new Map();
  for (const [nodeId, entry] of Object.entries(nodeErrors ?? {})) {
    const inputs = new Map();
    const messages = [];
    for (const error of entry.errors ?? []) {
      const inputName = error.extra_info?.input_name;
      // ComfyUI puts the input name in details when it names an input; say it once.
      const text = error.details && error.details !== inputName ? `${error.message}: ${error.details}` : error.message;
      if (inputName) inputs.set(inputName, text);
      messages.push(inputName ? `${inputName}: ${text}` : text);
    }
    byNode.set(String(nodeId), { message: messages.join("\n"), inputs, kind: "validation" });
  }
  return byNode;
}

export class RunState extends EventTarget {
  constructor(api) {
    super();
    this.connection = "connecting";
    this.queueRemaining = 0;
    this.promptId = null;
    this.executingNode = null;
    this.progress = null; // { value, max, nodeId }
    this.errors = new Map(); // nodeId → { message, inputs, kind }
    this.listen(api);
  }

  listen(api) {
    const on = (name, handler) => api.addEventListener(name, (event) => handler(event.detail));
    on(CLIENT_EVENTS.CONNECTION, ({ state }) => this.update("connection", { connection: state }));
    on(EVENTS.STATUS, (data) => {
      const remaining = data.status?.exec_info?.queue_remaining;
      if (remaining !== undefined) this.update("status", { queueRemaining: remaining });
    });
    on(EVENTS.EXECUTION_START, (data) => {
      this.errors = new Map();
      this.update("start", { promptId: data.prompt_id, executingNode: null, progress: null });
    });
    on(EVENTS.EXECUTING, (data) => {
      const node = data.display_node ?? data.node;
      this.update("executing", { executingNode: node == null ? null : String(node), progress: null });
    });
    on(EVENTS.PROGRESS, (data) => {
      const nodeId = data.node == null ? this.executingNode : String(data.node);
      this.update("progress", { progress: { value: data.value, max: data.max, nodeId } });
    });
    on(EVENTS.EXECUTED, (data) => {
      const nodeId = String(data.display_node ?? data.node);
      this.emit("output", { nodeId, output: data.output ?? {}, promptId: data.prompt_id });
    });
    on(EVENTS.EXECUTION_SUCCESS, () => this.finish("success"));
    on(EVENTS.EXECUTION_INTERRUPTED, () => this.finish("interrupted"));
    on(EVENTS.EXECUTION_ERROR, (data) => this.failed(data));
    on(CLIENT_EVENTS.PREVIEW, ({ blob, nodeId }) => {
      const target = nodeId ?? this.executingNode;
      if (target != null) this.emit("preview", { nodeId: target, blob });
    });
  }

  failed(data) {
    const nodeId = String(data.node_id);
    const type = String(data.exception_type ?? "Error").split(".").pop();
    const message = `${type}: ${data.exception_message ?? "the node failed"}`;
    this.errors = new Map([[nodeId, { message, inputs: new Map(), kind: "execution" }]]);
    this.finish("error");
  }

  finish(outcome) {
    this.update("finish", { executingNode: null, progress: null, promptId: null, outcome });
  }

  /** Marks the inputs a rejected prompt named (the 400 body's node_errors). */
  showValidationErrors(nodeErrors) {
    this.update("errors", { errors: validationErrorsByNode(nodeErrors) });
  }

  clearErrors() {
    if (this.errors.size) this.update("errors", { errors: new Map() });
  }

  update(what, fields) {
    Object.assign(this, fields);
    this.emit("update", { what });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
