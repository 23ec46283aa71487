// Turns a node's UI output into what the node shows: image refs, and lines of text — plain strings, and
// structured reports (objects with a "kind", such as the UNet inspector's) summarised line by line.
// Reports are read by their kind, so any node that returns one is shown the same way.

const MAX_ROWS = 8; // blocks or tokens listed per report

function number(value, digits = 3) {
  if (value === null || value === undefined) return "–";
  if (Math.abs(value) >= 1000 || (Math.abs(value) < 0.001 && value !== 0)) return value.toExponential(2);
  return Number(value).toFixed(digits);
}

function percent(value) {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`;
}

function architectureLine(architecture) {
  if (!architecture) return null;
  const millions = (architecture.parameters ?? 0) / 1e6;
  return `architecture: ${architecture.blocks?.length ?? 0} blocks, ${millions.toFixed(1)}M parameters, ` +
    `${architecture.cross_attention_layers ?? 0} cross-attention layers`;
}

function tokenLines(tokens) {
  if (!tokens?.length) return [];
  const sorted = [...tokens].sort((a, b) => (b.mass ?? 0) - (a.mass ?? 0)).slice(0, MAX_ROWS);
  return ["tokens (share of attention · spatial concentration):",
    ...sorted.map((t) => `  ${t.text}  ${percent(t.mass)} · ${number(t.concentration, 2)}`)];
}

function inspectionLines(report) {
  const noise = report.noise ?? {};
  const shape = (report.latent_shape ?? []).join("×");
  const at = noise.step != null ? `step ${noise.step}/${noise.steps} (${noise.scheduler})` : "a chosen noise level";
  const blocks = (report.blocks ?? []).slice(0, MAX_ROWS).map((block) =>
    `  ${block.name}  std ${number(block.positive?.std)}  mean ${number(block.positive?.mean)}` +
    (block.attention_entropy != null ? `  entropy ${number(block.attention_entropy, 2)}` : ""));
  return [
    `UNet inspection · latent ${shape} · σ ${number(noise.sigma)} at ${at}`,
    architectureLine(report.architecture),
    ...tokenLines(report.attention?.tokens),
    blocks.length ? "blocks (activation std, mean, attention entropy):" : null,
    ...blocks,
  ].filter(Boolean);
}

function trajectoryLines(report) {
  const settings = report.settings ?? {};
  const steps = report.steps ?? [];
  const last = steps.at(-1);
  const tokens = Object.entries(last?.tokens ?? {}).map(([key, value]) => ({
    text: key.split(":").slice(1).join(":") || key, mass: value.mass, concentration: value.concentration,
  }));
  const entropy = Object.entries(last?.attention_entropy ?? {}).map(([size, value]) => `${size} ${number(value, 2)}`);
  return [
    `UNet trajectory · ${steps.length} steps · ${settings.sampler ?? "?"}/${settings.scheduler ?? "?"} · cfg ${settings.cfg ?? "?"}`,
    architectureLine(report.architecture),
    entropy.length ? `attention entropy at the last step: ${entropy.join(", ")}` : null,
    ...tokenLines(tokens),
  ].filter(Boolean);
}

function genericLines(report) {
  const scalars = Object.entries(report).filter(([, value]) => value === null || typeof value !== "object");
  return scalars.slice(0, MAX_ROWS).map(([key, value]) => `${key}: ${value}`);
}

const REPORT_KINDS = Object.freeze({ unet_inspection: inspectionLines, unet_trajectory: trajectoryLines });

/** Lines summarising one structured report. */
export function reportLines(report) {
  return (REPORT_KINDS[report.kind] ?? genericLines)(report);
}

function isImageRef(entry) {
  return entry && typeof entry === "object" && typeof entry.filename === "string";
}

/**
 * What a node shows of an `executed` output: { images: refs, lines: text lines }. Strings become lines,
 * {filename, subfolder, type} entries images, objects with a "kind" report summaries.
 */
export function outputContent(output) {
  const images = [];
  const lines = [];
  for (const entries of Object.values(output ?? {})) {
    if (!Array.isArray(entries)) continue;
    for (const entry of entries) {
      if (typeof entry === "string" || typeof entry === "number") lines.push(...String(entry).split("\n"));
      else if (isImageRef(entry)) images.push(entry);
      else if (entry && typeof entry === "object" && "kind" in entry) lines.push(...reportLines(entry));
    }
  }
  return { images, lines };
}
