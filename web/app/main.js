// The client's composition root: builds every part, wires them together, loads the node definitions
// and the last graph (or the default one), then connects the websocket.

import { app as extensionApp } from "../scripts/app.js";
import { CanvasPointer, LiteGraph } from "../vendor/litegraph/litegraph.es.js";
import { ApiClient } from "./api.js";
import { EditorApp } from "./app.js";
import { EditorCanvas } from "./canvas.js";
import { Toasts } from "./dom.js";
import { loadExtensionModules } from "./extensions.js";
import { GraphModel } from "./graph-model.js";
import { ImageViewer } from "./image-viewer.js";
import { parseObjectInfo } from "./node-defs.js";
import { canvasMenuEntries, nodeMenuEntries } from "./node-menu.js";
import { registerNodeTypes } from "./node-types.js";
import { ReportPanel } from "./report-panel.js";
import { QueuePanel } from "./queue-panel.js";
import { RunOverlay } from "./run-overlay.js";
import { RunState } from "./run-state.js";
import { NodeSearchDialog } from "./search.js";
import { installShortcuts } from "./shortcuts.js";
import { TextEditorOverlay } from "./text-editor.js";
import { CanvasTooltips } from "./tooltips.js";
import { applyLiteGraphTheme } from "./theme.js";
import { Toolbar } from "./toolbar.js";
import { UndoHistory } from "./undo-history.js";
import { syncNodeSockets } from "./widget-conversion.js";
import { WorkflowFiles } from "./workflow-io.js";

/** This tab's client id: kept for the session so a reconnect gets the same events. */
function sessionClientId() {
  const key = "latentloom.clientId";
  let id = sessionStorage.getItem(key);
  if (!id) {
    id = crypto.randomUUID().replaceAll("-", "");
    sessionStorage.setItem(key, id);
  }
  return id;
}

function buildParts(root) {
  applyLiteGraphTheme(LiteGraph, { CanvasPointer });
  const defs = { current: new Map() };
  const api = new ApiClient({ clientId: sessionClientId() });
  const toasts = new Toasts(document.body);
  const model = new GraphModel();
  const runState = new RunState(api);
  const search = new NodeSearchDialog({ host: document.body, getDefs: () => defs.current.values() });
  const editor = new EditorCanvas({ element: root.querySelector("#graph-canvas"), model, search });
  const history = new UndoHistory(model);
  const viewUrl = (ref) => api.viewUrl(ref);
  const viewer = new ImageViewer({ host: document.body, viewUrl });
  const reportPanel = new ReportPanel({ host: document.body });
  const overlay = new RunOverlay({ runState, model, editor, viewUrl });
  const textEditor = new TextEditorOverlay({ host: document.body, onCommit: () => model.markChanged("text") });
  const files = new WorkflowFiles({ model, api });
  const app = new EditorApp({
    api, model, editor, history, files, runState, textEditor, toasts, getDefs: () => defs.current,
  });
  return { defs, api, toasts, model, runState, editor, viewer, reportPanel, overlay, textEditor, files, app };
}

function nodeServices(parts, { customWidgets }) {
  const { api, toasts, editor, viewer, reportPanel, overlay, textEditor, app, model } = parts;
  const menuActions = {
    runUpTo: (node) => app.runUpTo(node),
    openImage: (refs, index, options) => viewer.open(refs, index, options),
    onChanged: () => model.markChanged("menu"),
  };
  return {
    textEditor,
    uploadImage: (file) => api.uploadImage(file),
    reportError: (error) => toasts.error(error),
    onWidgetChanged: () => editor.scheduleChangeCheck(),
    onConfigure: (node) => syncNodeSockets(node),
    isLowQuality: () => editor.isLowQuality,
    openImage: (refs, index, options) => viewer.open(refs, index, options),
    openReport: (reports, options) => reportPanel.open(reports, options),
    strokeFor: (node) => overlay.strokeFor(node),
    menuEntries: (node, options) => nodeMenuEntries(node, options, menuActions),
    nodeCreated: (node) => extensionApp.invoke("nodeCreated", node),
    customWidgets,
  };
}

function buildChrome(root, parts) {
  const { app, files, runState, api, viewer, toasts, editor } = parts;
  const toolbar = new Toolbar({
    host: root.querySelector("#toolbar"),
    actions: {
      newWorkflow: () => app.newWorkflow(),
      open: () => app.open(),
      save: () => app.fileAction((f) => f.save()),
      saveAs: () => app.fileAction((f) => f.saveAs()),
      download: () => app.fileAction((f) => f.download()),
      exportPrompt: () => app.fileAction((f) => f.exportPrompt()),
      undo: () => app.undo(),
      redo: () => app.redo(),
      queue: () => app.queue(),
      interrupt: () => app.interrupt(),
      fitView: () => editor.fitView(),
    },
  });
  files.addEventListener("state", (event) => toolbar.showWorkflow(event.detail));
  runState.addEventListener("update", () => toolbar.showRun(runState));
  toolbar.showRun(runState);
  const panel = new QueuePanel({ host: root.querySelector("#side-panel"), api, viewer, toasts });
  const tooltips = new CanvasTooltips({ editor, host: document.body });
  files.acceptDrops(root.querySelector("#canvas-host"), {
    onResult: (problems) => app.reportOpened(problems),
    onError: (error) => toasts.error(error),
  });
  return { toolbar, panel, tooltips };
}

function installMenusAndKeys(parts) {
  const { editor, app } = parts;
  editor.canvas.getMenuOptions = () =>
    canvasMenuEntries({
      openSearch: (event) => editor.openSearch(event, null),
      groupSelection: () => editor.groupSelection(),
      fitView: () => editor.fitView(),
      hasSelection: () => Object.keys(editor.canvas.selected_nodes).length > 0,
    });
  installShortcuts({
    queue: (options) => app.queue(options),
    undo: () => app.undo(),
    redo: () => app.redo(),
    save: () => app.fileAction((f) => f.save()),
    saveAs: () => app.fileAction((f) => f.saveAs()),
    open: () => app.open(),
    groupSelection: () => editor.groupSelection(),
    fitView: () => editor.fitView(),
    toggleMode: (mode) => app.toggleMode(mode),
  });
}

/** Node definitions from the server, as extensions' addCustomNodeDefs leave them (raw, then parsed). */
async function loadNodeDefs({ api, toasts }) {
  let objectInfo = {};
  try {
    objectInfo = await api.getObjectInfo();
  } catch (error) {
    toasts.error(new Error(`could not load the node types: ${error.message}`));
  }
  await extensionApp.invokeAsync("addCustomNodeDefs", objectInfo);
  return { objectInfo, parsed: parseObjectInfo(objectInfo) };
}

/** Web extensions hook in around the node types: imported first, so beforeRegisterNodeDef sees each. */
async function registerWithExtensions(parts) {
  const { api, model, editor, app, defs } = parts;
  extensionApp.bind({ api, model, editor, queue: (options) => app.queue(options) });
  model.addEventListener("load", () => {
    for (const node of model.nodes) extensionApp.invoke("loadedGraphNode", node);
  });
  await loadExtensionModules(extensionApp, api);
  await extensionApp.invokeAsync("init");
  const { objectInfo, parsed } = await loadNodeDefs(parts);
  defs.current = parsed;
  const services = nodeServices(parts, { customWidgets: await extensionApp.customWidgets() });
  await registerNodeTypes(defs.current, services, {
    canvasColours: editor.colourTables,
    beforeRegister: (nodeType, def) =>
      extensionApp.invokeAsync("beforeRegisterNodeDef", nodeType, objectInfo[def.name]),
  });
  await extensionApp.invokeAsync("registerCustomNodes");
}

async function start(root) {
  const parts = buildParts(root);
  const { api, files, app, toasts, panel } = { ...parts, ...buildChrome(root, parts) };
  installMenusAndKeys(parts);
  api.connect();
  await registerWithExtensions(parts);
  if (!files.restore()) app.newWorkflow();
  await extensionApp.invokeAsync("setup");
  panel.refresh().catch((error) => toasts.error(error));
  // Tests and the benchmark drive the app through this handle.
  window.latentloom = parts;
  document.body.dataset.ready = "true";
}

start(document.getElementById("app"));
