// The full report of a node's structured output (such as the UNet inspector's), over the page as tables:
// the node itself only shows a summary. Escape, the close button or a click outside closes it.

import { h } from "./dom.js";
import { reportSections } from "./report-view.js";

function sectionElement({ title, header, rows }) {
  const named = header.some(Boolean); // a header of blanks: a two-column list of facts
  return h(
    "section",
    { class: "ll-report-section" },
    h("h3", {}, title),
    h(
      "table",
      { class: named ? "ll-report-table" : "ll-report-table ll-report-facts" },
      named ? h("thead", {}, h("tr", {}, header.map((name) => h("th", {}, name)))) : null,
      h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell) => h("td", {}, cell))))),
    ),
  );
}

export class ReportPanel {
  /** @param {{host: HTMLElement}} options */
  constructor({ host }) {
    this.host = host;
    this.root = null;
    this.onKey = (event) => this.handleKey(event);
  }

  get isOpen() {
    return this.root !== null;
  }

  /** Shows every section of `reports` (structured report objects, each with a "kind"). */
  open(reports, { title = "Report" } = {}) {
    if (!reports.length) return;
    this.close();
    const sections = reports.flatMap((report) => reportSections(report)).map(sectionElement);
    this.root = h(
      "div",
      { class: "ll-report", onclick: () => this.close() },
      h(
        "article",
        { class: "ll-report-frame", onclick: (event) => event.stopPropagation() },
        h("header", { class: "ll-report-head" }, h("h2", {}, title),
          h("button", { class: "ll-report-close", title: "Close (Esc)", onclick: () => this.close() }, "×")),
        h("div", { class: "ll-report-body" }, sections),
      ),
    );
    this.host.appendChild(this.root);
    document.addEventListener("keydown", this.onKey, true);
  }

  handleKey(event) {
    if (event.key !== "Escape") return;
    event.preventDefault();
    event.stopPropagation();
    this.close();
  }

  close() {
    if (!this.root) return;
    this.root.remove();
    this.root = null;
    document.removeEventListener("keydown", this.onKey, true);
  }
}
