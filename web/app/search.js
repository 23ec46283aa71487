// The node search dialog (double-click on the canvas, or a wire dropped on empty space): fuzzy matching
// over display names, class names, categories, socket types and descriptions.

import { typesCompatible } from "./node-defs.js";

const MAX_RESULTS = 60;

/**
 * Scores how well `query` matches `text` as a fuzzy subsequence: 0 for no match, higher for better.
 * Consecutive characters, matches at word starts and a match at the very start all count extra.
 */
export function fuzzyScore(query, text) {
  const q = query.toLowerCase();
  const t = text.toLowerCase();
  if (!q) return 1;
  const substring = t.indexOf(q);
  if (substring >= 0) {
    const atWordStart = substring === 0 || /[\s_/\-.]/.test(t[substring - 1]);
    return 100 + q.length * 4 + (substring === 0 ? 40 : 0) + (atWordStart ? 20 : 0) - t.length * 0.1;
  }
  let score = 0;
  let ti = 0;
  let streak = 0;
  for (const char of q) {
    const found = t.indexOf(char, ti);
    if (found < 0) return 0;
    streak = found === ti ? streak + 1 : 0;
    const wordStart = found === 0 || /[\s_/\-.]/.test(t[found - 1]) || isCamelBoundary(text, found);
    score += 1 + streak * 2 + (wordStart ? 4 : 0);
    ti = found + 1;
  }
  return score - t.length * 0.05;
}

function isCamelBoundary(text, index) {
  return index > 0 && /[a-z]/.test(text[index - 1]) && /[A-Z]/.test(text[index]);
}

/** The searchable fields of a definition, with their weights. */
function fields(def) {
  const types = [...def.inputs.map((i) => i.type), ...def.outputs.map((o) => o.type)];
  return [
    [def.displayName, 1.0],
    [def.name, 0.9],
    [def.category, 0.6],
    [types.join(" "), 0.5],
    [def.description, 0.25],
  ];
}

function scoreDef(def, tokens) {
  let total = 0;
  const entries = fields(def);
  for (const token of tokens) {
    let best = 0;
    for (const [text, weight] of entries) {
      if (text) best = Math.max(best, fuzzyScore(token, text) * weight);
    }
    if (best <= 0) return 0;
    total += best;
  }
  return total;
}

/**
 * Whether a definition can take a wire: `{ direction: "input", type }` means it needs an input that
 * accepts `type` (the wire came from an output); "output" means it needs an output of that type.
 */
function acceptsWire(def, filter) {
  if (!filter) return true;
  if (filter.direction === "input") return def.inputs.some((input) => typesCompatible(filter.type, input.type));
  return def.outputs.some((output) => typesCompatible(output.type, filter.type));
}

/**
 * The definitions matching `query` (and `filter`), best first. Aliases (another name of a node that is
 * listed anyway) are left out; deprecated nodes rank below the rest.
 * @param {Iterable<import("./node-defs.js").NodeDef>} defs
 */
export function rankNodes(defs, query, { filter = null, limit = MAX_RESULTS } = {}) {
  const tokens = query.trim().split(/\s+/).filter(Boolean);
  const scored = [];
  for (const def of defs) {
    if (def.aliasOf || !acceptsWire(def, filter)) continue;
    const score = tokens.length ? scoreDef(def, tokens) : 1;
    if (score <= 0) continue;
    scored.push({ def, score: def.deprecated ? score * 0.2 : score });
  }
  scored.sort((a, b) => b.score - a.score || a.def.displayName.localeCompare(b.def.displayName));
  return scored.slice(0, limit).map((entry) => entry.def);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The dialog: a text box and a result list, driven by the keyboard or the mouse. */
export class NodeSearchDialog {
  /** @param {{host: HTMLElement, getDefs: () => Iterable<object>}} options */
  constructor({ host, getDefs }) {
    this.host = host;
    this.getDefs = getDefs;
    this.root = null;
  }

  get isOpen() {
    return this.root !== null;
  }

  /**
   * Opens at screen point `at` ([x, y]); `onPick(def)` runs with the chosen definition.
   * @param {{at: number[], filter?: {direction: string, type: string}, onPick: Function}} options
   */
  open({ at, filter = null, onPick }) {
    this.close();
    this.filter = filter;
    this.onPick = onPick;
    this.selected = 0;
    this.root = element("div", "ll-search");
    this.input = element("input", "ll-search-input");
    this.input.placeholder = filter ? `Search nodes that take ${filter.type}…` : "Search nodes…";
    this.list = element("ul", "ll-search-results");
    this.root.append(this.input, this.list);
    this.host.appendChild(this.root);
    this.position(at);
    this.input.addEventListener("input", () => this.refresh());
    this.input.addEventListener("keydown", (event) => this.onKey(event));
    this.input.addEventListener("blur", () => setTimeout(() => this.close(), 120));
    this.refresh();
    this.input.focus();
  }

  position([x, y]) {
    const width = 420;
    const left = Math.max(8, Math.min(x - 40, window.innerWidth - width - 8));
    const top = Math.max(8, Math.min(y - 20, window.innerHeight - 420));
    Object.assign(this.root.style, { left: `${left}px`, top: `${top}px`, width: `${width}px` });
  }

  refresh() {
    this.results = rankNodes(this.getDefs(), this.input.value, { filter: this.filter });
    this.selected = 0;
    this.list.replaceChildren(...this.results.map((def, i) => this.renderItem(def, i)));
    if (!this.results.length) this.list.append(element("li", "ll-search-empty", "No matching nodes"));
    this.highlight();
  }

  renderItem(def, index) {
    const item = element("li", "ll-search-item");
    item.dataset.type = def.name;
    const title = element("span", "ll-search-title", def.displayName);
    const category = element("span", "ll-search-category", def.category);
    const io = element("span", "ll-search-io", ioSummary(def));
    item.append(title, category, io);
    item.title = def.description || def.name;
    item.addEventListener("mousedown", (event) => {
      event.preventDefault();
      this.pick(index);
    });
    item.addEventListener("mousemove", () => {
      if (this.selected !== index) {
        this.selected = index;
        this.highlight();
      }
    });
    return item;
  }

  highlight() {
    [...this.list.children].forEach((child, i) => child.classList.toggle("selected", i === this.selected));
    this.list.children[this.selected]?.scrollIntoView({ block: "nearest" });
  }

  onKey(event) {
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: 8, PageUp: -8 };
    if (event.key in moves) {
      event.preventDefault();
      const last = Math.max(0, this.results.length - 1);
      this.selected = Math.max(0, Math.min(last, this.selected + moves[event.key]));
      this.highlight();
    } else if (event.key === "Enter") {
      event.preventDefault();
      this.pick(this.selected);
    } else if (event.key === "Escape") {
      event.preventDefault();
      this.close();
    }
    event.stopPropagation();
  }

  pick(index) {
    const def = this.results[index];
    const onPick = this.onPick;
    this.close();
    if (def) onPick(def);
  }

  close() {
    this.root?.remove();
    this.root = null;
  }
}

function ioSummary(def) {
  const inputs = def.inputs.filter((i) => !i.isWidget).map((i) => i.type);
  const outputs = def.outputs.map((o) => o.type);
  return `${inputs.join(", ") || "–"} → ${outputs.join(", ") || "–"}`;
}
