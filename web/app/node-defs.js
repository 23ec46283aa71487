// Node definitions read from GET /api/object_info (ComfyUI's shape). Pure data, no DOM, no LiteGraph.
// Nothing here knows any particular node type: sockets, widgets and their options all come from the server.

const WIDGET_TYPES = Object.freeze(["INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"]);

/**
 * @typedef {object} InputDef
 * @property {string} name
 * @property {string} type socket type ("MODEL", "INT", "COMBO", ...)
 * @property {boolean} optional
 * @property {boolean} isWidget whether the value can be typed in (it may still be fed by a link)
 * @property {object} options the spec's option object (default, min, max, step, multiline, ...)
 * @property {string[]} [choices] for COMBO
 * @property {string} tooltip
 */

/**
 * @typedef {object} NodeDef
 * @property {string} name class_type
 * @property {string} displayName
 * @property {string} category
 * @property {string} description
 * @property {string} pythonModule
 * @property {boolean} outputNode
 * @property {boolean} deprecated
 * @property {boolean} experimental
 * @property {InputDef[]} inputs required first, then optional, in input_order
 * @property {{name: string, type: string, isList: boolean, tooltip: string}[]} outputs
 * @property {string|null} aliasOf
 */

/** Parses one input spec `[type or choices, options?]` into an InputDef. */
function parseInputSpec(name, spec, { optional }) {
  const [head, rawOptions] = Array.isArray(spec) ? spec : [spec, {}];
  const options = rawOptions ?? {};
  let type = head;
  let choices;
  if (Array.isArray(head)) {
    type = "COMBO";
    choices = head.map(String);
  } else if (head === "COMBO") {
    choices = (options.options ?? options.values ?? []).map(String);
  }
  const isWidget = WIDGET_TYPES.includes(type) && !options.forceInput;
  const input = { name, type, optional, isWidget, options, tooltip: options.tooltip ?? "" };
  if (choices) input.choices = choices;
  return input;
}

function orderedNames(section, order) {
  const names = Object.keys(section ?? {});
  if (!order) return names;
  const known = order.filter((name) => name in (section ?? {}));
  return [...known, ...names.filter((name) => !known.includes(name))];
}

/** Parses one object_info entry into a NodeDef. */
function parseNodeDef(name, info) {
  const inputSections = info.input ?? {};
  const order = info.input_order ?? {};
  const inputs = [];
  for (const section of ["required", "optional"]) {
    const specs = inputSections[section] ?? {};
    for (const inputName of orderedNames(specs, order[section])) {
      inputs.push(parseInputSpec(inputName, specs[inputName], { optional: section === "optional" }));
    }
  }
  const outputTypes = info.output ?? [];
  const outputs = outputTypes.map((type, i) => ({
    type: Array.isArray(type) ? "COMBO" : String(type),
    name: info.output_name?.[i] ?? String(type),
    isList: Boolean(info.output_is_list?.[i]),
    tooltip: info.output_tooltips?.[i] ?? "",
  }));
  return {
    name,
    displayName: info.display_name || name,
    category: info.category || "uncategorized",
    description: info.description ?? "",
    pythonModule: info.python_module ?? "",
    outputNode: Boolean(info.output_node),
    deprecated: Boolean(info.deprecated),
    experimental: Boolean(info.experimental),
    inputs,
    outputs,
    aliasOf: info.alias_of ?? null,
  };
}

/** Parses the whole object_info response into NodeDefs keyed by class_type. */
export function parseObjectInfo(objectInfo) {
  const defs = new Map();
  for (const [name, info] of Object.entries(objectInfo)) {
    defs.set(name, parseNodeDef(name, info));
  }
  return defs;
}

/** Whether a link from an output of `outputType` may feed an input of `inputType` (as latentloom.api.types). */
export function typesCompatible(outputType, inputType) {
  if (outputType === "*" || inputType === "*") return true;
  const names = (type) => new Set(String(type).split(",").map((part) => part.trim()).filter(Boolean));
  const inputs = names(inputType);
  return [...names(outputType)].some((name) => inputs.has(name));
}

/** The decimals a FLOAT widget shows, from its step or round option (0.01 → 2). */
export function decimalsFor(options) {
  const step = options.round || options.step || 0.01;
  if (step >= 1) return 0;
  return Math.min(6, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)));
}
