// The top bar: workflow menu, undo/redo, the workflow's name, live status (connection, queue size,
// progress of the running sampler), and the Queue and Stop buttons.

import { h } from "./dom.js";

function menuButton(label, items) {
  const menu = h("div", { class: "ll-menu", role: "menu" },
    items.map(([text, action, shortcut]) =>
      h("button", { class: "ll-menu-item", role: "menuitem", dataset: { action: text }, onclick: () => {
        menu.classList.remove("open");
        action();
      } }, h("span", {}, text), shortcut ? h("kbd", {}, shortcut) : null)),
  );
  const button = h("button", { class: "ll-button", "aria-haspopup": "menu", onclick: (event) => {
    event.stopPropagation();
    menu.classList.toggle("open");
  } }, label);
  document.addEventListener("click", () => menu.classList.remove("open"));
  return h("div", { class: "ll-menu-wrap" }, button, menu);
}

export class Toolbar {
  /**
   * @param {object} options
   * @param {HTMLElement} options.host
   * @param {object} options.actions { newWorkflow, open, save, saveAs, download, exportPrompt, undo, redo,
   *   queue, interrupt, fitView }
   */
  constructor({ host, actions }) {
    this.nameLabel = h("span", { class: "ll-workflow-name" });
    this.connection = h("span", { class: "ll-connection", title: "Server connection" });
    this.queueSize = h("span", { class: "ll-queue-size" });
    this.progressBar = h("div", { class: "ll-progress-fill" });
    this.progressText = h("span", { class: "ll-progress-text" });
    const workflowMenu = menuButton("Workflow", [
      ["New", actions.newWorkflow],
      ["Open…", actions.open, "Ctrl+O"],
      ["Save", actions.save, "Ctrl+S"],
      ["Save as…", actions.saveAs, "Ctrl+Shift+S"],
      ["Download JSON", actions.download],
      ["Export API prompt", actions.exportPrompt],
    ]);
    this.root = h(
      "header",
      { class: "ll-toolbar" },
      h("span", { class: "ll-brand" }, "LatentLoom"),
      workflowMenu,
      h("button", { class: "ll-button ll-icon", title: "Undo (Ctrl+Z)", onclick: actions.undo }, "↶"),
      h("button", { class: "ll-button ll-icon", title: "Redo (Ctrl+Y)", onclick: actions.redo }, "↷"),
      h("button", { class: "ll-button", title: "Fit the graph in view (.)", onclick: actions.fitView }, "Fit"),
      this.nameLabel,
      h("div", { class: "ll-spacer" }),
      this.connection,
      this.queueSize,
      h("div", { class: "ll-progress", title: "Sampler progress" }, this.progressBar, this.progressText),
      h("button", { class: "ll-button ll-stop", title: "Interrupt the running prompt", onclick: actions.interrupt }, "Stop"),
      h("button", { class: "ll-button ll-primary ll-queue-button", title: "Queue the graph (Ctrl+Enter)", onclick: actions.queue },
        "Queue"),
    );
    host.appendChild(this.root);
  }

  showWorkflow({ name, modified }) {
    this.nameLabel.textContent = `${name}${modified ? " •" : ""}`;
    this.nameLabel.title = modified ? "Changed since it was last saved" : "Saved";
  }

  /** Reflects the run state: connection, queue size and progress. */
  showRun(runState) {
    const state = runState.connection;
    this.connection.className = `ll-connection ${state}`;
    this.connection.textContent = { open: "connected", connecting: "connecting…", closed: "reconnecting…" }[state] ?? state;
    this.queueSize.textContent = `queue: ${runState.queueRemaining}`;
    const progress = runState.progress;
    const fraction = progress && progress.max > 0 ? progress.value / progress.max : 0;
    this.progressBar.style.width = `${Math.round(fraction * 100)}%`;
    this.progressText.textContent = progress ? `${progress.value}/${progress.max}` : "";
    this.root.classList.toggle("running", runState.promptId !== null || runState.executingNode !== null);
  }
}
