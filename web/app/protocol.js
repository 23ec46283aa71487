// The websocket protocol as the client sees it: event names and binary preview frames.
// Mirrors latentloom/engine/protocol.py (ComfyUI's names); tests/web checks that the two lists agree.

export const EVENTS = Object.freeze({
  STATUS: "status",
  EXECUTION_START: "execution_start",
  EXECUTION_CACHED: "execution_cached",
  EXECUTING: "executing",
  PROGRESS: "progress",
  EXECUTED: "executed",
  EXECUTION_SUCCESS: "execution_success",
  EXECUTION_ERROR: "execution_error",
  EXECUTION_INTERRUPTED: "execution_interrupted",
});

// Events the client itself raises on the ApiClient (not sent by the server).
export const CLIENT_EVENTS = Object.freeze({
  CONNECTION: "connection", // detail: { state: "connecting" | "open" | "closed", attempt }
  PREVIEW: "preview", // detail: { blob, nodeId, promptId }
});

// Binary frames start with a big-endian uint32 event kind (ComfyUI's BinaryEventTypes).
const BINARY_KINDS = Object.freeze({
  PREVIEW_IMAGE: 1, // then uint32 image format, then the encoded image
  PREVIEW_IMAGE_WITH_METADATA: 4, // then uint32 JSON length, the JSON, then the encoded image
});

const IMAGE_FORMATS = Object.freeze({ 1: "image/jpeg", 2: "image/png" });

/**
 * Decodes a binary websocket frame into a preview, or returns null for kinds this client does not show.
 * @param {ArrayBuffer} buffer
 * @returns {{blob: Blob, nodeId: string|null, promptId: string|null} | null}
 */
export function decodePreviewFrame(buffer) {
  if (buffer.byteLength < 8) return null;
  const view = new DataView(buffer);
  const kind = view.getUint32(0);
  if (kind === BINARY_KINDS.PREVIEW_IMAGE) {
    const mime = IMAGE_FORMATS[view.getUint32(4)] ?? "image/jpeg";
    return { blob: new Blob([buffer.slice(8)], { type: mime }), nodeId: null, promptId: null };
  }
  if (kind === BINARY_KINDS.PREVIEW_IMAGE_WITH_METADATA) {
    const metaLength = view.getUint32(4);
    const metaBytes = new Uint8Array(buffer, 8, metaLength);
    const meta = JSON.parse(new TextDecoder().decode(metaBytes));
    const mime = meta.image_type ?? "image/jpeg";
    const nodeId = meta.display_node_id ?? meta.node_id ?? null;
    const blob = new Blob([buffer.slice(8 + metaLength)], { type: mime });
    return { blob, nodeId: nodeId == null ? null : String(nodeId), promptId: meta.prompt_id ?? null };
  }
  return null;
}
