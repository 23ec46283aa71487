// HTTP + websocket client for the LatentLoom server (ComfyUI's API shapes).
// Server events are re-dispatched as CustomEvents named as in protocol.js, with the event data as detail.

import { CLIENT_EVENTS, decodePreviewFrame } from "./protocol.js";

/** The server refused a request; `body` is its JSON error body (for /prompt: error + node_errors). */
export class ApiError extends Error {
  constructor(status, body, { path }) {
    const message = body?.error?.message ?? `HTTP ${status} from ${path}`;
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
    this.path = path;
  }

  /** ComfyUI's per-node validation errors: { nodeId: { errors: [{type, message, details, extra_info}] } } */
  get nodeErrors() {
    return this.body?.node_errors ?? {};
  }
}

const RECONNECT_MIN_MS = 300;
const RECONNECT_MAX_MS = 4000;

export class ApiClient extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.clientId id the server uses to address this tab's events
   * @param {string} [options.baseUrl] origin + path prefix of the server, "" for the page's own
   * @param {boolean} [options.wantPreviews] ask the server for latent previews (binary frames)
   */
  constructor({ clientId, baseUrl = "", wantPreviews = true }) {
    super();
    this.clientId = clientId;
    this.baseUrl = baseUrl;
    this.wantPreviews = wantPreviews;
    this.socket = null;
    this.reconnectAttempt = 0;
    this.reconnectTimer = null;
    this.closedOnPurpose = false;
  }

  apiUrl(path) {
    return `${this.baseUrl}/api${path}`;
  }

  async request(path, { method = "GET", json, body } = {}) {
    const init = { method, cache: "no-store" };
    if (json !== undefined) {
      init.headers = { "Content-Type": "application/json" };
      init.body = JSON.stringify(json);
    } else if (body !== undefined) {
      init.body = body;
    }
    const response = await fetch(this.apiUrl(path), init);
    const text = await response.text();
    const parsed = text ? parseJsonOrText(text) : null;
    if (!response.ok) throw new ApiError(response.status, parsed, { path });
    return parsed;
  }

  getObjectInfo() {
    return this.request("/object_info");
  }

  /**
   * Queues a workflow (the canvas graph); the server turns it into the API prompt with the same
   * conversion `latentloom run` uses, and embeds the graph in saved images. Resolves to
   * { prompt_id, number, node_errors }; a graph that fails validation rejects with an ApiError whose
   * nodeErrors name the offending inputs.
   */
  queueWorkflow(workflow, { partialTargets, front = false } = {}) {
    const json = { workflow, client_id: this.clientId };
    if (partialTargets?.length) json.partial_execution_targets = partialTargets.map(String);
    if (front) json.front = true;
    return this.request("/prompt", { method: "POST", json });
  }

  /**
   * Converts a workflow (ours, ComfyUI's UI format, or an API prompt) on the server:
   * `to` is "prompt", "comfy_api", "comfy_ui" (the canvas graph) or "ours" (our file format).
   * Resolves to { result, problems: [{message, node_id, input_name}], missing_message }.
   */
  convertWorkflow(workflow, to) {
    return this.request("/workflow/convert", { method: "POST", json: { workflow, to } });
  }

  getQueue() {
    return this.request("/queue");
  }

  deleteFromQueue(promptIds) {
    return this.request("/queue", { method: "POST", json: { delete: promptIds } });
  }

  clearQueue() {
    return this.request("/queue", { method: "POST", json: { clear: true } });
  }

  interrupt(promptId) {
    return this.request("/interrupt", { method: "POST", json: promptId ? { prompt_id: promptId } : {} });
  }

  getHistory({ maxItems = 64 } = {}) {
    return this.request(`/history?max_items=${maxItems}`);
  }

  clearHistory() {
    return this.request("/history", { method: "POST", json: { clear: true } });
  }

  /** URL of an image the server produced or holds: { filename, subfolder, type } from an output. */
  viewUrl({ filename, subfolder = "", type = "output" }) {
    const query = new URLSearchParams({ filename, subfolder, type });
    return this.apiUrl(`/view?${query}`);
  }

  /** Uploads an image file into the input folder; resolves to { name, subfolder, type }. */
  uploadImage(file, { overwrite = false } = {}) {
    const form = new FormData();
    form.append("image", file, file.name);
    if (overwrite) form.append("overwrite", "true");
    return this.request("/upload/image", { method: "POST", body: form });
  }

  // -- websocket ----------------------------------------------------------------------------------

  connect() {
    this.closedOnPurpose = false;
    this.openSocket();
  }

  close() {
    this.closedOnPurpose = true;
    clearTimeout(this.reconnectTimer);
    this.socket?.close();
  }

  socketUrl() {
    const base = new URL(this.baseUrl || window.location.href, window.location.href);
    const scheme = base.protocol === "https:" ? "wss:" : "ws:";
    const prefix = this.baseUrl ? base.pathname.replace(/\/$/, "") : "";
    return `${scheme}//${base.host}${prefix}/ws?clientId=${encodeURIComponent(this.clientId)}`;
  }

  openSocket() {
    this.emit(CLIENT_EVENTS.CONNECTION, { state: "connecting", attempt: this.reconnectAttempt });
    const socket = new WebSocket(this.socketUrl());
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.reconnectAttempt = 0;
      if (this.wantPreviews) {
        socket.send(JSON.stringify({ type: "feature_flags", data: { supports_preview_metadata: true } }));
      }
      this.emit(CLIENT_EVENTS.CONNECTION, { state: "open", attempt: 0 });
    });
    socket.addEventListener("message", (event) => this.handleFrame(event.data));
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.emit(CLIENT_EVENTS.CONNECTION, { state: "closed", attempt: this.reconnectAttempt });
      if (!this.closedOnPurpose) this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.reconnectAttempt);
    this.reconnectAttempt += 1;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.openSocket(), delay);
  }

  handleFrame(data) {
    if (data instanceof ArrayBuffer) {
      const preview = decodePreviewFrame(data);
      if (preview) this.emit(CLIENT_EVENTS.PREVIEW, preview);
      return;
    }
    const message = parseJsonOrText(data);
    if (!message || typeof message.type !== "string") return;
    if (message.type === "status" && message.data?.sid) this.clientId = message.data.sid;
    this.emit(message.type, message.data ?? {});
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function parseJsonOrText(text) {
  try {
    return JSON.parse(text);
  } catch {
    return { error: { message: text.slice(0, 300) } };
  }
}
