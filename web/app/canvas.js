// The editor canvas: LiteGraph's LGraphCanvas on our graph, sized to its container, themed, with our
// search dialog on double-click and on wires dropped into empty space, and a change tracker that tells the
// graph model after every interaction (the model decides whether anything really changed).

import { LGraphCanvas, LGraphGroup, LiteGraph } from "../vendor/litegraph/litegraph.es.js";
import { typesCompatible } from "./node-defs.js";
import { applyCanvasTheme } from "./theme.js";

// Level of detail: below these zooms, details too small to read are not drawn (a 300-node graph in view
// redraws in a third of the time). Widgets are still laid out and clickable once zoomed in again.
const WIDGETS_MIN_SCALE = 0.3;
const LINK_BORDERS_MIN_SCALE = 0.5;

function applyLevelOfDetail(canvas) {
  const draw = canvas.draw.bind(canvas);
  canvas.draw = (foreground, background) => {
    canvas.render_connections_border = canvas.ds.scale >= LINK_BORDERS_MIN_SCALE;
    draw(foreground, background);
  };
  const drawNodeWidgets = canvas.drawNodeWidgets.bind(canvas);
  canvas.drawNodeWidgets = (node, posY, ctx) => {
    if (canvas.ds.scale >= WIDGETS_MIN_SCALE) drawNodeWidgets(node, posY, ctx);
  };
}

/** The index of the first of `slots` that can take a wire of `type`; plain sockets before widgets. */
function findCompatibleSlot(slots, type, { isInput }) {
  const fits = (slot) => (isInput ? typesCompatible(type, slot.type) : typesCompatible(slot.type, type));
  const order = [...slots.keys()].sort((a, b) => Number(Boolean(slots[a].widget)) - Number(Boolean(slots[b].widget)));
  return order.find((i) => fits(slots[i])) ?? -1;
}

export class EditorCanvas {
  /**
   * @param {object} options
   * @param {HTMLCanvasElement} options.element
   * @param {import("./graph-model.js").GraphModel} options.model
   * @param {import("./search.js").NodeSearchDialog} options.search
   */
  constructor({ element, model, search }) {
    this.element = element;
    this.model = model;
    this.search = search;
    this.canvas = new LGraphCanvas(element, model.graph);
    applyCanvasTheme(this.canvas);
    applyLevelOfDetail(this.canvas);
    this.pendingCheck = null;
    this.fitToContainer();
    new ResizeObserver(() => this.fitToContainer()).observe(element.parentElement);
    this.listen();
    model.addEventListener("load", (event) => this.onModelLoaded(event.detail.workflow));
  }

  /** Colour tables LiteGraph reads per socket type: given to registerNodeTypes. */
  get colourTables() {
    return { byType: this.canvas.default_connection_color_byType, linkColours: LGraphCanvas.link_type_colors };
  }

  get isLowQuality() {
    return this.canvas.low_quality;
  }

  fitToContainer() {
    const { width, height } = this.element.parentElement.getBoundingClientRect();
    const ratio = Math.max(window.devicePixelRatio || 1, 1);
    for (const target of [this.element, this.canvas.bgcanvas]) {
      if (!target) continue;
      target.width = Math.round(width * ratio);
      target.height = Math.round(height * ratio);
      target.getContext("2d").setTransform(ratio, 0, 0, ratio, 0, 0);
    }
    Object.assign(this.element.style, { width: `${width}px`, height: `${height}px` });
    this.canvas.setDirty(true, true);
  }

  listen() {
    this.element.addEventListener("litegraph:canvas", (event) => this.onCanvasEvent(event.detail));
    // LiteGraph times double-clicks itself (presses under 500 ms apart, theme.js); the browser's dblclick
    // follows the system's double-click speed. A double-click LiteGraph let pass (slower hands, a busy
    // machine) is played from the browser's event, so it does the same thing either way.
    this.element.addEventListener("pointerdown", () => { this.doubleClickHandled = false; }, true);
    this.element.addEventListener("dblclick", (event) => {
      if (!this.doubleClickHandled) this.playDoubleClick(event);
    });
    // Any interaction may have edited the graph: check once it has settled.
    for (const type of ["pointerup", "keyup", "click"]) {
      document.addEventListener(type, () => this.scheduleChangeCheck(), true);
    }
    const graph = this.model.graph;
    graph.onNodeAdded = () => this.scheduleChangeCheck();
    graph.onNodeRemoved = () => this.scheduleChangeCheck();
  }

  scheduleChangeCheck() {
    if (this.pendingCheck) return;
    this.pendingCheck = setTimeout(() => {
      this.pendingCheck = null;
      if (!this.canvas.pointer.isDown) this.model.markChanged();
    }, 0);
  }

  onCanvasEvent(detail) {
    if (detail.subType?.endsWith("-double-click")) this.doubleClickHandled = true;
    if (detail.subType === "empty-double-click") {
      this.openSearch(detail.originalEvent, null);
    } else if (detail.subType === "empty-release") {
      this.onWireReleased(detail.originalEvent, detail.linkReleaseContext?.links?.[0]);
    } else if (detail.subType === "group-double-click") {
      this.renameGroup(detail.group, detail.originalEvent);
    }
  }

  /** What LiteGraph does on a double-click it recognised: node handlers, group rename, or the search. */
  playDoubleClick(event) {
    if (this.search.isOpen) return;
    const [x, y] = this.canvas.convertEventToCanvasOffset(event);
    const graph = this.model.graph;
    const node = graph.getNodeOnPos(x, y, this.canvas.visible_nodes);
    if (node) {
      // Widgets and slots have their own double-click meaning in LiteGraph; leave those to it.
      if (node.getWidgetOnPos(x, y) || node.getSlotInPosition(x, y)) return;
      const pos = [x - node.pos[0], y - node.pos[1]];
      if (pos[1] < 0) node.onNodeTitleDblClick?.(event, pos, this.canvas);
      node.onDblClick?.(event, pos, this.canvas);
      this.canvas.processNodeDblClicked(node);
      return;
    }
    const group = graph.getGroupOnPos(x, y);
    if (group) this.renameGroup(group, event);
    else this.openSearch(event, null);
  }

  /** Opens the search at a pointer event; the picked node lands where the pointer was. */
  openSearch(event, filter, onCreated = () => {}) {
    const graphPos = this.canvas.convertEventToCanvasOffset(event);
    this.search.open({
      at: [event.clientX, event.clientY],
      filter,
      onPick: (def) => {
        const node = this.model.addNode(def.name, { pos: graphPos });
        if (!node) return;
        onCreated(node);
        this.canvas.selectNode(node);
        this.model.markChanged("add-node");
        this.canvas.setDirty(true, true);
      },
    });
  }

  /** A wire dropped on empty canvas: offer the nodes that fit, and wire up the chosen one. */
  onWireReleased(event, link) {
    if (!link || !event) return;
    const fromOutput = Boolean(link.output);
    const slot = fromOutput ? link.output : link.input;
    const filter = { direction: fromOutput ? "input" : "output", type: String(slot.type) };
    this.openSearch(event, filter, (created) => {
      if (fromOutput) {
        const target = findCompatibleSlot(created.inputs ?? [], slot.type, { isInput: true });
        if (target >= 0) link.node.connect(link.slot, created, target);
      } else {
        const source = findCompatibleSlot(created.outputs ?? [], slot.type, { isInput: false });
        created.pos[0] -= created.size[0];
        if (source >= 0) created.connect(source, link.node, link.slot);
      }
    });
  }

  renameGroup(group, event) {
    this.canvas.prompt("Group title", group.title, (title) => {
      if (title == null) return;
      group.title = String(title);
      this.model.markChanged("rename-group");
      this.canvas.setDirty(true, true);
    }, event);
  }

  /** Puts a group around the selected nodes (Ctrl+G); returns it, or null with nothing selected. */
  groupSelection() {
    const nodes = Object.values(this.canvas.selected_nodes);
    if (!nodes.length) return null;
    const group = new LGraphGroup("Group");
    this.model.graph.add(group);
    group.resizeTo(nodes, 10);
    group.recomputeInsideNodes();
    this.model.markChanged("group");
    this.canvas.setDirty(true, true);
    return group;
  }

  onModelLoaded(workflow) {
    const viewport = workflow.extra?.ds;
    if (viewport?.offset && viewport.scale) {
      this.canvas.ds.offset = viewport.offset;
      this.canvas.ds.scale = viewport.scale;
    }
    this.canvas.setDirty(true, true);
  }

  /** Centres the view on the graph's nodes. */
  fitView() {
    const nodes = this.model.nodes;
    if (!nodes.length) return;
    const bounds = [Infinity, Infinity, -Infinity, -Infinity];
    for (const node of nodes) {
      // From pos and size: boundingRect is only measured when the node is drawn.
      const [x, y] = [node.pos[0], node.pos[1] - LiteGraph.NODE_TITLE_HEIGHT];
      const [w, h] = [node.size[0], node.size[1] + LiteGraph.NODE_TITLE_HEIGHT];
      bounds[0] = Math.min(bounds[0], x);
      bounds[1] = Math.min(bounds[1], y);
      bounds[2] = Math.max(bounds[2], x + w);
      bounds[3] = Math.max(bounds[3], y + h);
    }
    const rect = [bounds[0], bounds[1], bounds[2] - bounds[0], bounds[3] - bounds[1]];
    this.canvas.ds.fitToBounds(rect, { zoom: 0.95 });
    this.canvas.setDirty(true, true);
  }

  /** Graph coordinates of the view's centre (where toolbar-added nodes go). */
  viewCentre() {
    const rect = this.element.getBoundingClientRect();
    return this.canvas.ds.convertCanvasToOffset([rect.width / 2, rect.height / 2]);
  }
}
