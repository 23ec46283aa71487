// Colours and LiteGraph settings for the dark theme. Socket colours are keyed by socket type; a type
// without a colour here (e.g. one a plugin adds) gets a stable colour derived from its name.

const SOCKET_COLOURS = Object.freeze({
  MODEL: "#b39ddb",
  CLIP: "#ffd54f",
  VAE: "#ff7a7a",
  CONDITIONING: "#ffab40",
  LATENT: "#ff9cf9",
  IMAGE: "#64b5f6",
  MASK: "#81c784",
  INT: "#9ccc65",
  FLOAT: "#aed581",
  STRING: "#80cbc4",
  BOOLEAN: "#90a4ae",
  COMBO: "#b0bec5",
});

export const STATUS_COLOURS = Object.freeze({
  executing: "#4caf50",
  error: "#ff4d4d",
  progress: "#4caf50",
});

/** A stable colour for a socket type: the table's, else a hue hashed from the type name. */
export function socketColour(type) {
  const key = String(type).toUpperCase();
  if (SOCKET_COLOURS[key]) return SOCKET_COLOURS[key];
  let hash = 0;
  for (const char of key) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360}, 55%, 65%)`;
}

/** Applies the dark theme to LiteGraph's global settings (call once, before creating the canvas). */
export function applyLiteGraphTheme(LiteGraph, { CanvasPointer }) {
  // The desktop's usual double-click time (LiteGraph's 300 ms misses slower double-clicks).
  CanvasPointer.doubleClickTime = 500;
  Object.assign(LiteGraph, {
    NODE_TITLE_COLOR: "#c8c8c8",
    NODE_SELECTED_TITLE_COLOR: "#ffffff",
    NODE_TEXT_COLOR: "#b8b8b8",
    NODE_DEFAULT_COLOR: "#2b2f36",
    NODE_DEFAULT_BGCOLOR: "#1f2228",
    NODE_DEFAULT_BOXCOLOR: "#7a8290",
    NODE_BOX_OUTLINE_COLOR: "#e0e0e0",
    NODE_ERROR_COLOUR: STATUS_COLOURS.error,
    NODE_FONT: "Inter, system-ui, sans-serif",
    DEFAULT_FONT: "Inter, system-ui, sans-serif",
    GROUP_FONT: "Inter, system-ui, sans-serif",
    WIDGET_BGCOLOR: "#15171b",
    WIDGET_OUTLINE_COLOR: "#3a3f48",
    WIDGET_TEXT_COLOR: "#e6e6e6",
    WIDGET_SECONDARY_TEXT_COLOR: "#9aa0aa",
    LINK_COLOR: "#8a9aa8",
    CONNECTING_LINK_COLOR: "#d0e8ff",
    // Familiar controls: drag empty canvas to pan, Ctrl+drag to box-select, wheel to zoom.
    canvasNavigationMode: "legacy",
    release_link_on_empty_shows_menu: false,
    alt_drag_do_clone_nodes: true,
    snaps_for_comfy: true,
    context_menu_scaling: false,
  });
}

/** Canvas settings that are per-instance in LiteGraph. */
export function applyCanvasTheme(canvas) {
  canvas.clear_background_color = "#141518";
  canvas.background_image = "";
  canvas.render_canvas_border = false;
  canvas.render_shadows = false;
  canvas.render_connections_border = true;
  canvas.show_info = false;
  canvas.allow_searchbox = false; // our own search dialog replaces LiteGraph's
  canvas.default_link_color = "#8a9aa8";
  canvas.zoom_speed = 1.1;
  canvas.low_quality_zoom_threshold = 0.5;
  canvas.highquality_render = true;
}
