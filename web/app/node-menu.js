// Right-click menus: our entries on top of LiteGraph's node menu (run up to here, widget ↔ input,
// bypass, images) and the canvas menu (add node by category or search, groups, fit view).

import { LGraphCanvas, LGraphEventMode, LiteGraph } from "../vendor/litegraph/litegraph.es.js";
import { viewNodeImages } from "./node-output.js";
import {
  convertInputToWidget,
  convertWidgetToInput,
  convertedInputs,
  convertibleWidgets,
} from "./widget-conversion.js";

// LiteGraph entries we leave out: subgraphs have no API-prompt form, its property panel edits raw state,
// and its Inputs/Outputs entries only ever list optional slots, which our nodes do not add that way.
const HIDDEN_ENTRIES = ["Convert to Subgraph", "Properties Panel", "Properties", "Inputs", "Outputs"];

function submenu(title, entries) {
  if (!entries.length) return null;
  return {
    content: title,
    has_submenu: true,
    submenu: { options: entries },
  };
}

/** A submenu entry's callback: LiteGraph keeps the parent menu open under the cursor, we close it. */
function closingMenus(action) {
  return () => {
    action();
    LiteGraph.closeAllContextMenus(window);
  };
}

function conversionEntries(node, { onChanged }) {
  const toInput = convertibleWidgets(node).map((widget) => ({
    content: widget.name,
    callback: closingMenus(() => convertWidgetToInput(node, widget.name) && onChanged()),
  }));
  const toWidget = convertedInputs(node).map((slot) => ({
    content: slot.name,
    callback: closingMenus(() => convertInputToWidget(node, slot.name) && onChanged()),
  }));
  return [submenu("Convert widget to input", toInput), submenu("Convert input to widget", toWidget)];
}

/**
 * Our entries for a node's menu; also removes the LiteGraph entries we do not offer from `options`.
 * @param {object} actions { runUpTo(node), openImage(refs, index, options), onChanged() }
 */
export function nodeMenuEntries(node, options, actions) {
  const kept = options.filter((entry) => !HIDDEN_ENTRIES.some((hidden) => entry?.content?.startsWith(hidden)));
  // No separator first (ours end with one) and none twice in a row.
  const tidy = kept.filter((entry, i) => entry !== null || (i > 0 && kept[i - 1] !== null));
  options.splice(0, options.length, ...tidy);
  const bypassed = node.mode === LGraphEventMode.BYPASS;
  const entries = [
    { content: "Run up to this node", callback: () => actions.runUpTo(node) },
    {
      content: bypassed ? "Stop bypassing" : "Bypass",
      callback: () => {
        node.mode = bypassed ? LGraphEventMode.ALWAYS : LGraphEventMode.BYPASS;
        actions.onChanged();
      },
    },
    ...conversionEntries(node, actions),
  ];
  if (node.outputRefs?.length) {
    // The picture the node shows; the viewer pages through all of them.
    const open = () => viewNodeImages(node, node.display?.page ?? 0, actions.openImage);
    entries.push({ content: "Open image", callback: open });
  }
  return entries.filter(Boolean);
}

/**
 * The canvas menu (right-click on empty space).
 * @param {object} actions { openSearch(event), groupSelection(), fitView(), hasSelection() }
 */
export function canvasMenuEntries(actions) {
  const entries = [
    { content: "Add Node", has_submenu: true, callback: LGraphCanvas.onMenuAdd },
    { content: "Search nodes…", callback: (_value, _options, event) => actions.openSearch(event) },
    null,
    { content: "Add Group", callback: LGraphCanvas.onGroupAdd },
  ];
  if (actions.hasSelection()) {
    entries.push({ content: "Group selected nodes (Ctrl+G)", callback: () => actions.groupSelection() });
  }
  entries.push(null, { content: "Fit view", callback: () => actions.fitView() });
  return entries;
}
