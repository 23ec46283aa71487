// The graph a first visit shows: text-to-image, the same graph every Stable Diffusion editor starts with.
// It names node types by ComfyUI's class names (ours answer to them as aliases); the loader gets the
// first checkpoint the server lists. When a type is missing, the canvas starts empty instead.

const NODES = [
  { key: "loader", type: "CheckpointLoaderSimple", pos: [20, 300], size: [320, 100] },
  {
    key: "positive",
    type: "CLIPTextEncode",
    pos: [390, 40],
    size: [400, 190],
    widgets: { text: "a photograph of a lighthouse on a cliff at sunset, dramatic sky, detailed" },
  },
  { key: "negative", type: "CLIPTextEncode", pos: [390, 300], size: [400, 150], widgets: { text: "blurry, low quality" } },
  { key: "latent", type: "EmptyLatentImage", pos: [390, 520], widgets: { width: 512, height: 512, batch_size: 1 } },
  { key: "sampler", type: "KSampler", pos: [840, 140], widgets: { steps: 20, cfg: 7 } },
  { key: "decode", type: "VAEDecode", pos: [1200, 140] },
  { key: "save", type: "SaveImage", pos: [1200, 260], size: [360, 400] },
];

// [from node, output type, to node, input name]
const LINKS = [
  ["loader", "MODEL", "sampler", "model"],
  ["loader", "CLIP", "positive", "clip"],
  ["loader", "CLIP", "negative", "clip"],
  ["positive", "CONDITIONING", "sampler", "positive"],
  ["negative", "CONDITIONING", "sampler", "negative"],
  ["latent", "LATENT", "sampler", "latent_image"],
  ["sampler", "LATENT", "decode", "samples"],
  ["loader", "VAE", "decode", "vae"],
  ["decode", "IMAGE", "save", "images"],
];

/** Our class_type for a ComfyUI class name: itself, or the node it is an alias of. */
function resolveType(defs, name) {
  const def = defs.get(name);
  if (!def) return null;
  return def.aliasOf ?? def.name;
}

function setWidgets(node, values) {
  for (const [name, value] of Object.entries(values ?? {})) {
    const widget = node.widgets?.find((candidate) => candidate.name === name);
    if (widget) widget.value = value;
  }
}

/**
 * Builds the default graph into `model`. Returns false (and leaves the graph empty) when the server
 * lacks one of its node types.
 * @param {import("./graph-model.js").GraphModel} model
 * @param {Map<string, object>} defs node definitions by class_type
 */
export function buildDefaultGraph(model, defs) {
  const types = NODES.map((spec) => resolveType(defs, spec.type));
  if (types.includes(null)) return false;
  model.clear();
  const nodes = new Map();
  NODES.forEach((spec, i) => {
    const node = model.addNode(types[i], { pos: spec.pos });
    setWidgets(node, spec.widgets);
    if (spec.size) node.setSize(spec.size);
    nodes.set(spec.key, node);
  });
  for (const [from, type, to, inputName] of LINKS) {
    const source = nodes.get(from);
    const target = nodes.get(to);
    const outputIndex = source.outputs.findIndex((output) => output.type === type);
    const inputIndex = target.inputs.findIndex((input) => input.name === inputName);
    if (outputIndex >= 0 && inputIndex >= 0) source.connect(outputIndex, target, inputIndex);
  }
  model.markChanged("default-graph");
  return true;
}
