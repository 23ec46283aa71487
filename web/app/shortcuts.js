// Keyboard shortcuts of the editor (LiteGraph handles copy, paste, delete and select-all itself).

function isTyping(target) {
  const tag = target?.localName;
  return tag === "input" || tag === "textarea" || tag === "select" || target?.isContentEditable;
}

/**
 * @param {object} actions { queue({front}), undo, redo, save, saveAs, open, groupSelection, fitView,
 *   toggleMode(mode) }
 */
export function installShortcuts(actions) {
  document.addEventListener("keydown", (event) => {
    const ctrl = event.ctrlKey || event.metaKey;
    const key = event.key.toLowerCase();
    let handled = true;
    if (ctrl && key === "enter") {
      actions.queue({ front: event.shiftKey }); // works from inside a prompt box too
    } else if (isTyping(event.target)) {
      return;
    } else if (ctrl && key === "z" && !event.shiftKey) {
      actions.undo();
    } else if (ctrl && (key === "y" || (key === "z" && event.shiftKey))) {
      actions.redo();
    } else if (ctrl && key === "s") {
      if (event.shiftKey) actions.saveAs();
      else actions.save();
    } else if (ctrl && key === "o") {
      actions.open();
    } else if (ctrl && key === "g") {
      actions.groupSelection();
    } else if (ctrl && key === "b") {
      actions.toggleMode("bypass");
    } else if (ctrl && key === "m") {
      actions.toggleMode("mute");
    } else if (!ctrl && !event.altKey && key === ".") {
      actions.fitView();
    } else {
      handled = false;
    }
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);
}
