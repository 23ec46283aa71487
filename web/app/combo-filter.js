// A filter box on top of a combo's menu of choices, for long lists (hundreds of checkpoints, dozens of
// samplers): typing narrows the list, Enter picks the first entry still shown, Escape closes the menu.

import { ComboWidget, LiteGraph } from "../vendor/litegraph/litegraph.es.js";

// Menus with fewer choices than this are short enough to read at a glance: no box.
export const FILTER_MIN_CHOICES = 8;
const ARROW_WIDTH = 40; // LiteGraph's combo: a click this close to an edge steps the value instead

/** Whether `text` matches `query`: every whitespace-separated term of the query occurs in it, any case. */
export function matchesFilter(text, query) {
  const haystack = String(text).toLowerCase();
  return query.toLowerCase().split(/\s+/).filter(Boolean).every((term) => haystack.includes(term));
}

/** The choices that match `query`, in their order. */
export function filterChoices(values, query) {
  return values.filter((value) => matchesFilter(value, query));
}

function menuEntries(menuRoot) {
  return [...menuRoot.querySelectorAll(".litemenu-entry")].filter((entry) => !entry.classList.contains("separator"));
}

/** Hides the menu's entries that do not match `query`; returns the entries still shown. */
function applyFilter(menuRoot, query) {
  const shown = [];
  for (const entry of menuEntries(menuRoot)) {
    const match = matchesFilter(entry.dataset.value ?? entry.textContent, query);
    entry.classList.toggle("ll-filtered-out", !match);
    if (match) shown.push(entry);
  }
  return shown;
}

/**
 * Puts a focused filter box at the top of an open LiteGraph menu (its root element). Enter calls
 * `onPick(value)` with the first entry still shown; Escape calls `onClose()`. Keys typed in the box stay
 * in it (canvas shortcuts never see them).
 */
export function attachComboFilter(menuRoot, { onPick, onClose }) {
  const box = document.createElement("input");
  box.type = "search";
  box.className = "ll-combo-filter";
  box.placeholder = "filter…";
  box.setAttribute("aria-label", "Filter the choices");
  box.addEventListener("input", () => applyFilter(menuRoot, box.value));
  box.addEventListener("keydown", (event) => {
    event.stopPropagation();
    if (event.key === "Enter") {
      event.preventDefault();
      const first = applyFilter(menuRoot, box.value)[0];
      if (first) onPick(first.dataset.value);
    } else if (event.key === "Escape") {
      event.preventDefault();
      onClose();
    }
  });
  menuRoot.classList.add("ll-filterable");
  menuRoot.prepend(box);
  box.focus();
  return box;
}

/** LiteGraph's combo widget, whose menu of choices gets a filter box when the list is long. */
export class FilteredComboWidget extends ComboWidget {
  onClick(options) {
    const { e: event, node, canvas } = options;
    const x = event.canvasX - node.pos[0];
    const width = this.width || node.size[0];
    const values = this.options.values;
    if (!Array.isArray(values) || values.length < FILTER_MIN_CHOICES || x < ARROW_WIDTH || x > width - ARROW_WIDTH) {
      return super.onClick(options);
    }
    const menu = new LiteGraph.ContextMenu(values, {
      scale: Math.max(1, canvas.ds.scale),
      event,
      className: "dark",
      callback: (value) => this.setValue(value, options),
    });
    attachComboFilter(menu.root, {
      onPick: (value) => {
        this.setValue(value, options);
        menu.close();
      },
      onClose: () => menu.close(),
    });
  }
}
