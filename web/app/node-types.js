// Registers one LiteGraph node class per node definition from /api/object_info. Every class is built the
// same way from its definition: sockets for link-only inputs, a widget plus a socket for literal inputs
// (so any widget can also be fed by a link), outputs, category and description.

import { LGraphNode, LiteGraph, SlotShape } from "../vendor/litegraph/litegraph.es.js";
import { drawNodeDisplay, emptyDisplay, imageIndexAt } from "./node-output.js";
import { socketColour } from "./theme.js";
import { addInputWidgets } from "./widgets.js";

const MIN_NODE_WIDTH = 220;
// Room for "control_after_generate" and a value beside it, as wide as the editors people know.
const MIN_WIDTH_WITH_CONTROL = 315;

function addInputs(node, def, services) {
  const buttons = [];
  for (const input of def.inputs) {
    const extra = { label: input.name, tooltip: input.tooltip };
    if (input.optional) extra.shape = SlotShape.HollowCircle;
    if (input.isWidget) {
      const button = addInputWidgets(node, input, services);
      if (button) buttons.push(button);
      extra.widget = { name: input.name };
    }
    node.addInput(input.name, input.type, extra);
  }
  for (const button of buttons) node.addCustomWidget(button);
}

function addOutputs(node, def) {
  for (const output of def.outputs) {
    const extra = { label: output.name, tooltip: output.tooltip };
    if (output.isList) extra.shape = SlotShape.Grid;
    node.addOutput(output.name, output.type, extra);
  }
}

function createNodeClass(def, services) {
  class DefinedNode extends LGraphNode {
    static title = def.displayName;
    static nodeDef = def;
    static description = def.description;

    constructor(title) {
      super(title ?? def.displayName, def.name);
      this.serialize_widgets = true;
      this.display = emptyDisplay();
      this.outputRefs = [];
      addInputs(this, def, services);
      addOutputs(this, def);
      this.strokeStyles.running = () => services.strokeFor(this);
      const [width, height] = this.computeSize();
      const hasControl = this.widgets?.some((widget) => widget.controlsWidget);
      this.setSize([Math.max(width, hasControl ? MIN_WIDTH_WITH_CONTROL : MIN_NODE_WIDTH), height]);
    }

    onWidgetChanged() {
      services.onWidgetChanged(this);
    }

    onDrawBackground(ctx) {
      if (this.flags.collapsed) return;
      drawNodeDisplay(this, ctx, { lowQuality: services.isLowQuality() });
    }

    onDblClick(event, pos) {
      const index = imageIndexAt(this, pos);
      if (index >= 0) services.openImage(this.outputRefs, index);
    }

    onConfigure() {
      services.onConfigure(this);
    }

    getExtraMenuOptions(_canvas, options) {
      return services.menuEntries(this, options);
    }
  }
  Object.defineProperty(DefinedNode, "name", { value: `Node_${def.name.replace(/\W/g, "_")}` });
  return DefinedNode;
}

/**
 * Registers a node class for each definition (replacing earlier registrations) and gives every socket
 * type its colour on `canvas`.
 * @param {Map<string, import("./node-defs.js").NodeDef>} defs
 * @param {object} services { textEditor, uploadImage, reportError, onWidgetChanged, onConfigure,
 *   isLowQuality, openImage, strokeFor, menuEntries }
 */
export function registerNodeTypes(defs, services, { canvasColours }) {
  for (const type of Object.keys(LiteGraph.registered_node_types)) {
    LiteGraph.unregisterNodeType(type);
  }
  const socketTypes = new Set();
  for (const def of defs.values()) {
    const cls = createNodeClass(def, services);
    LiteGraph.registerNodeType(def.name, cls);
    cls.category = def.category; // registerNodeType derives it from a path; ours comes from the server
    cls.skip_list = Boolean(def.aliasOf || def.deprecated); // loadable, but not offered in menus
    for (const slot of [...def.inputs, ...def.outputs]) socketTypes.add(slot.type);
  }
  for (const type of socketTypes) {
    canvasColours.byType[type] = socketColour(type);
    canvasColours.linkColours[type] = socketColour(type);
  }
}
