// A small helper for building DOM: h("div", { class: "x", title: "…", onclick: fn }, child, "text").

export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "text") element.textContent = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Short transient messages in a corner (errors stay until clicked). */
export class Toasts {
  constructor(host) {
    this.root = h("div", { class: "ll-toasts", role: "status" });
    host.appendChild(this.root);
  }

  show(message, { kind = "info", timeoutMs = 4000 } = {}) {
    const toast = h("div", { class: `ll-toast ${kind}`, onclick: () => toast.remove() }, message);
    this.root.appendChild(toast);
    if (kind !== "error") setTimeout(() => toast.remove(), timeoutMs);
    return toast;
  }

  error(error) {
    const message = error?.message ?? String(error);
    console.error(error);
    return this.show(message, { kind: "error" });
  }
}
