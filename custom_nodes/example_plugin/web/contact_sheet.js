// Example web extension: Contact Sheet nodes get their own colour and show, in the title bar, the grid
// their widgets ask for ("4 per row · 4 px gap"), redrawn as the widgets change.
// Loaded by the canvas from GET /api/extensions; see docs/plugins.md ("Web extensions").
import { app } from "../../scripts/app.js";
// The canvas's own LiteGraph: the same module URL, so the same instance.
import { LiteGraph } from "../../vendor/litegraph/litegraph.es.js";

const NODE_TYPE = "ContactSheet";
const COLOUR = "#2f4f4f";
const BACKGROUND = "#3c6464";
const HINT_COLOUR = "#a8d8d8";

/** The grid a Contact Sheet node's widgets ask for, in words. */
function gridHint(node) {
  const value = (name) => node.widgets?.find((widget) => widget.name === name)?.value;
  return `${value("columns")} per row · ${value("gap")} px gap`;
}

/** Draws the hint right-aligned in the title bar (negative y is the title bar in LiteGraph). */
function drawGridHint(node, ctx) {
  if (node.flags.collapsed) return;
  ctx.save();
  ctx.font = "12px sans-serif";
  ctx.fillStyle = HINT_COLOUR;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.fillText(node.gridHint(), node.size[0] - 10, -LiteGraph.NODE_TITLE_HEIGHT / 2);
  ctx.restore();
}

app.registerExtension({
  name: "example_plugin.contact_sheet",

  beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    nodeType.prototype.gridHint = function () {
      return gridHint(this);
    };
    const drawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx, ...rest) {
      drawForeground?.call(this, ctx, ...rest);
      drawGridHint(this, ctx);
    };
  },

  nodeCreated(node) {
    if (node.comfyClass !== NODE_TYPE) return;
    node.color = COLOUR;
    node.bgcolor = BACKGROUND;
  },
});
