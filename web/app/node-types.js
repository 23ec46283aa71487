// Registers one LiteGraph node class per node definition from /api/object_info. Every class is built the
// same way from its definition: sockets for link-only inputs, a widget plus a socket for literal inputs
// (so any widget can also be fed by a link), outputs, category and description.

import { LGraphNode, LiteGraph, SlotShape } from "../vendor/litegraph/litegraph.es.js";
import {
  drawNodeDisplay, emptyDisplay, imageIndexAt, pagerButtonAt, reportAt, turnPage, viewNodeImages,
} from "./node-output.js";
import { socketColour } from "./theme.js";
import { addInputWidgets } from "./widgets.js";

const MIN_NODE_WIDTH = 220;
// Room for "control_after_generate" and a value beside it, as wide as the editors people know.
const MIN_WIDTH_WITH_CONTROL = 315;

/**
 * An extension's widget for `input` (getCustomWidgets, by socket type), or null. The server reads widget
 * values by position among the literal inputs, so a custom widget on a link-only input is display-only.
 */
function addExtensionWidget(node, input, services) {
  const maker = services.customWidgets?.[input.type];
  const made = maker ? maker(node, input.name, [input.type, input.options]) : null;
  if (made && !input.isWidget) made.widget.serialize = false;
  return made;
}

/**
 * Moves widgets that save no value after the others: LiteGraph saves widget values at the widget's own
 * index, so one in between would leave a hole where the next value belongs.
 */
function moveValuelessLast(node, widgets) {
  for (const widget of widgets) {
    const index = node.widgets.indexOf(widget);
    if (index >= 0) node.widgets.splice(index, 1);
    node.widgets.push(widget);
  }
}

/** Adds the sockets and widgets; returns the least [width, height] extension widgets asked for. */
function addInputs(node, def, services) {
  const valueless = [];
  const least = [0, 0];
  for (const input of def.inputs) {
    const extra = { label: input.name, tooltip: input.tooltip };
    if (input.optional) extra.shape = SlotShape.HollowCircle;
    const custom = addExtensionWidget(node, input, services);
    if (custom) {
      least[0] = Math.max(least[0], custom.minWidth ?? 0);
      least[1] = Math.max(least[1], custom.minHeight ?? 0);
      if (custom.widget.serialize === false) valueless.push(custom.widget);
    } else if (input.isWidget) {
      const button = addInputWidgets(node, input, services);
      if (button) valueless.push(button);
    }
    if (input.isWidget) extra.widget = { name: input.name };
    node.addInput(input.name, input.type, extra);
  }
  for (const widget of valueless) {
    if (!node.widgets?.includes(widget)) node.addCustomWidget(widget);
  }
  moveValuelessLast(node, valueless);
  return least;
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
    static comfyClass = def.name; // ComfyUI's name for the node type, which web extensions test

    constructor(title) {
      super(title ?? def.displayName, def.name);
      this.serialize_widgets = true;
      this.display = emptyDisplay();
      this.outputRefs = [];
      // LGraphNode sets an own onMouseDown (its title buttons), which a class method would not override.
      const titleButtonsMouseDown = this.onMouseDown;
      this.onMouseDown = (event, pos, canvas) =>
        this.onPagerMouseDown(event, pos, canvas) || Boolean(titleButtonsMouseDown?.call(this, event, pos, canvas));
      const [leastWidth, leastHeight] = addInputs(this, def, services);
      addOutputs(this, def);
      this.strokeStyles.running = () => services.strokeFor(this);
      const [width, height] = this.computeSize();
      const hasControl = this.widgets?.some((widget) => widget.controlsWidget);
      const minWidth = Math.max(leastWidth, hasControl ? MIN_WIDTH_WITH_CONTROL : MIN_NODE_WIDTH);
      this.setSize([Math.max(width, minWidth), Math.max(height, leastHeight)]);
      services.nodeCreated?.(this);
    }

    get comfyClass() {
      return def.name;
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
      if (index >= 0) viewNodeImages(this, index, services.openImage);
      else if (reportAt(this, pos)) services.openReport(this.display.reports, { title: this.title });
    }

    /** Turns the output pager on a click on ◀ or ▶; true when it took the click. */
    onPagerMouseDown(event, pos, canvas) {
      const delta = pagerButtonAt(this, pos);
      if (!delta) return false;
      turnPage(this, delta);
      canvas.processSelect(this, event, true); // a click the node takes is one LiteGraph does not select on
      return true;
    }

    onKeyDown(event) {
      const delta = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
      if (delta && turnPage(this, delta)) event.preventDefault();
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
 * type its colour on `canvas`. `beforeRegister(cls, def)` (awaited) may change each class first.
 * @param {Map<string, import("./node-defs.js").NodeDef>} defs
 * @param {object} services { textEditor, uploadImage, reportError, onWidgetChanged, onConfigure,
 *   isLowQuality, openImage, openReport, strokeFor, menuEntries, nodeCreated?, customWidgets? }
 */
export async function registerNodeTypes(defs, services, { canvasColours, beforeRegister = null }) {
  for (const type of Object.keys(LiteGraph.registered_node_types)) {
    LiteGraph.unregisterNodeType(type);
  }
  const socketTypes = new Set();
  for (const def of defs.values()) {
    const cls = createNodeClass(def, services);
    if (beforeRegister) await beforeRegister(cls, def);
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
