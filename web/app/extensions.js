// Web extensions: the modules plugins serve from their WEB_DIRECTORY. Each registers an object of named
// hooks with `app.registerExtension` (ComfyUI's convention); the canvas calls the hooks at fixed moments
// (see HOOKS and docs/plugins.md, "Web extensions"). Every call is isolated: an extension that throws is
// logged with its name and the others still run. The `app` extensions see is the small ExtensionApp below,
// not the editor's internals.

/**
 * Every hook the canvas calls, with the signature an extension implements. `app` is always last.
 * docs/plugins.md documents each one (a test holds the two together).
 */
export const HOOKS = Object.freeze({
  init: "init(app)",
  addCustomNodeDefs: "addCustomNodeDefs(defs, app)",
  getCustomWidgets: "getCustomWidgets(app)",
  beforeRegisterNodeDef: "beforeRegisterNodeDef(nodeType, nodeData, app)",
  registerCustomNodes: "registerCustomNodes(app)",
  nodeCreated: "nodeCreated(node, app)",
  loadedGraphNode: "loadedGraphNode(node, app)",
  setup: "setup(app)",
});

const LOG_PREFIX = "[extensions]";

function isThenable(value) {
  return value !== null && typeof value === "object" && typeof value.then === "function";
}

/**
 * What extensions import as `app` from /scripts/app.js. Until the canvas binds its parts, `graph`,
 * `canvas` and `api` are null; extension modules are only imported after that.
 */
export class ExtensionApp {
  #extensions = [];
  #parts = null;

  constructor() {
    /** Each failure an extension caused: { extension, hook, message } (hook "import" for a module). */
    this.problems = [];
  }

  /** The registered extensions, in registration order (a copy). */
  get extensions() {
    return [...this.#extensions];
  }

  /** The LiteGraph LGraph being edited. */
  get graph() {
    return this.#parts?.model.graph ?? null;
  }

  /** The LGraphCanvas drawing it. */
  get canvas() {
    return this.#parts?.editor.canvas ?? null;
  }

  /** The server client: an EventTarget of the server's events ("executed", "progress", "status", ...). */
  get api() {
    return this.#parts?.api ?? null;
  }

  /**
   * Gives the app the canvas's parts: { api, model, editor, queue } where `queue({ front })` queues the
   * graph as the toolbar does. The composition root calls this once, before importing extensions.
   */
  bind({ api, model, editor, queue }) {
    this.#parts = { api, model, editor, queue };
  }

  /**
   * Queues the graph `batchCount` times (ComfyUI's signature: `number` -1 puts it at the front of the
   * queue). Resolves to the queue results (null for one the server refused).
   */
  async queuePrompt(number = 0, batchCount = 1) {
    if (!this.#parts) throw new Error("the canvas has not started yet: nothing to queue");
    const results = [];
    for (let i = 0; i < batchCount; i += 1) {
      results.push(await this.#parts.queue({ front: number === -1 }));
    }
    return results;
  }

  /**
   * Adds an extension: an object with a unique string `name` and any of the HOOKS as methods. Returns
   * whether it was accepted; a nameless or duplicate one is refused with a console error.
   */
  registerExtension(extension) {
    const name = extension?.name;
    if (typeof name !== "string" || !name) {
      console.error(`${LOG_PREFIX} refused an extension without a name (give it a unique string "name")`);
      return false;
    }
    if (this.#extensions.some((known) => known.name === name)) {
      console.error(`${LOG_PREFIX} refused extension "${name}": an extension with that name is already registered`);
      return false;
    }
    this.#extensions.push(extension);
    return true;
  }

  /** Logs and records a failure of `extension` in `hook`. */
  report(extensionName, hook, error) {
    console.error(`${LOG_PREFIX} extension "${extensionName}" failed in ${hook}:`, error);
    this.problems.push({ extension: extensionName, hook, message: String(error?.message ?? error) });
  }

  /** Logs and records an extension module (or the list of them) that could not be loaded. */
  reportUnloaded(path, error) {
    console.error(`${LOG_PREFIX} could not load ${path}, skipped it:`, error);
    this.problems.push({ extension: path, hook: "import", message: String(error?.message ?? error) });
  }

  #implementers(hook) {
    if (!Object.hasOwn(HOOKS, hook)) throw new Error(`${LOG_PREFIX} "${hook}" is not a hook (see HOOKS)`);
    return this.#extensions.filter((extension) => typeof extension[hook] === "function");
  }

  /**
   * Calls `hook(...args, app)` on every extension that has it, without waiting: the results of those
   * that did not throw. A promise an extension returns is watched so its rejection is reported too.
   */
  invoke(hook, ...args) {
    const results = [];
    for (const extension of this.#implementers(hook)) {
      try {
        const result = extension[hook](...args, this);
        if (isThenable(result)) result.then(undefined, (error) => this.report(extension.name, hook, error));
        results.push(result);
      } catch (error) {
        this.report(extension.name, hook, error);
      }
    }
    return results;
  }

  /** Calls `hook(...args, app)` on every extension that has it, together; resolves to what they returned. */
  async invokeAsync(hook, ...args) {
    const calls = this.#implementers(hook).map(async (extension) => {
      try {
        return { ok: true, value: await extension[hook](...args, this) };
      } catch (error) {
        this.report(extension.name, hook, error);
        return { ok: false };
      }
    });
    return (await Promise.all(calls)).filter((call) => call.ok).map((call) => call.value);
  }

  /**
   * The custom widget makers of every extension's getCustomWidgets, merged ({ TYPE: maker }; a later
   * extension's maker wins). Each maker is wrapped so a throwing one is reported under its extension.
   */
  async customWidgets() {
    const makers = {};
    for (const extension of this.#implementers("getCustomWidgets")) {
      let provided;
      try {
        provided = await extension.getCustomWidgets(this);
      } catch (error) {
        this.report(extension.name, "getCustomWidgets", error);
        continue;
      }
      for (const [type, maker] of Object.entries(provided ?? {})) {
        if (typeof maker !== "function") continue;
        makers[type] = (...args) => this.#callMaker(extension.name, type, maker, args);
      }
    }
    return makers;
  }

  #callMaker(extensionName, type, maker, args) {
    try {
      const made = maker(...args, this);
      if (!made?.widget) throw new Error(`the ${type} widget maker returned no { widget }`);
      return made;
    } catch (error) {
      this.report(extensionName, "getCustomWidgets", error);
      return null;
    }
  }
}

/** The absolute URL of an extension module path the server listed (it may be served under a prefix). */
function moduleUrl(path, baseUrl) {
  return new URL(`${baseUrl}${path}`, window.location.href).href;
}

/**
 * Imports every module GET /api/extensions lists, together; each registers itself on import. A module
 * that fails to load or throws while it runs is logged, recorded in `app.problems` and skipped.
 * Resolves to the URLs that loaded.
 */
export async function loadExtensionModules(app, api) {
  let paths;
  try {
    paths = await api.request("/extensions");
  } catch (error) {
    app.reportUnloaded("the extension list (GET /api/extensions)", error);
    return [];
  }
  const loads = paths.map(async (path) => {
    const url = moduleUrl(path, api.baseUrl);
    try {
      await import(url);
      return url;
    } catch (error) {
      app.reportUnloaded(path, error);
      return null;
    }
  });
  return (await Promise.all(loads)).filter(Boolean);
}
