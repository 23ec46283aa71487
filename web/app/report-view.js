// Turns a node's UI output into what the node shows: image refs, lines of text, and structured reports
// (objects with a "kind", such as the UNet inspector's). A report gets a compact summary of a few lines in
// the node, and the full report as tables (sections) for the report panel. Reports are read by their kind,
// so any node that returns one is shown the same way; an unknown kind lists its scalar fields.

const SUMMARY_TOKENS = 4; // tokens named in a node's summary
const GENERIC_ROWS = 8; // scalar fields summarised for a report of unknown kind
export const FULL_REPORT_HINT = "⤢ double-click for the full report";

/** A number for a table cell or a summary: fixed digits, exponent for the very large and very small. */
export function formatNumber(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (Math.abs(value) >= 10000 || (Math.abs(value) < 0.001 && value !== 0)) return value.toExponential(2);
  return Number(value).toFixed(digits);
}

function percent(value) {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`;
}

function size(pair) {
  return pair?.length ? pair.join("×") : "–";
}

function blockCodes(architecture) {
  return new Map((architecture?.blocks ?? []).map((block) => [block.name, block.code ?? block.name]));
}

// --- summaries (a few lines inside the node) ------------------------------------------------------------

function architectureSummary(architecture) {
  if (!architecture) return null;
  const millions = (architecture.parameters ?? 0) / 1e6;
  return `${architecture.blocks?.length ?? 0} blocks · ${millions.toFixed(1)}M params · ` +
    `${architecture.cross_attention_layers ?? 0} cross-attention layers`;
}

function topTokens(tokens) {
  const sorted = [...(tokens ?? [])].sort((a, b) => (b.mass ?? 0) - (a.mass ?? 0)).slice(0, SUMMARY_TOKENS);
  return sorted.length ? `top tokens: ${sorted.map((t) => `${t.text} ${percent(t.mass)}`).join(", ")}` : null;
}

function stdRange(blocks, codes) {
  const rows = (blocks ?? []).filter((block) => block.positive?.std != null);
  if (!rows.length) return null;
  const byStd = [...rows].sort((a, b) => a.positive.std - b.positive.std);
  const [low, high] = [byStd[0], byStd.at(-1)];
  return `block std ${formatNumber(low.positive.std, 2)} (${codes.get(low.name) ?? low.name}) … ` +
    `${formatNumber(high.positive.std, 2)} (${codes.get(high.name) ?? high.name})`;
}

function inspectionSummary(report) {
  const noise = report.noise ?? {};
  const at = noise.step != null ? `step ${noise.step}/${noise.steps} ${noise.scheduler}` : "chosen σ";
  const shape = (report.latent_shape ?? []).slice(1).join("×");
  return [
    `σ ${formatNumber(noise.sigma)} (${at}) · latent ${shape}`,
    architectureSummary(report.architecture),
    stdRange(report.blocks, blockCodes(report.architecture)),
    topTokens(report.attention?.tokens),
  ];
}

/** The kept tokens of a trajectory at one step, as [{text, position, mass, concentration}]. */
function stepTokens(step) {
  return Object.entries(step?.tokens ?? {}).map(([key, value]) => {
    const [position, ...text] = key.split(":");
    return { text: text.join(":") || key, position: Number(position), ...value };
  });
}

function trajectorySummary(report) {
  const settings = report.settings ?? {};
  const steps = report.steps ?? [];
  const entropy = Object.entries(steps.at(-1)?.attention_entropy ?? {})
    .map(([grid, value]) => `${grid} ${formatNumber(value, 2)}`);
  const sigmas = steps.length ? `σ ${formatNumber(steps[0].sigma, 2)} → ${formatNumber(steps.at(-1).sigma, 2)}` : null;
  return [
    `${steps.length} steps ${settings.sampler ?? "?"}/${settings.scheduler ?? "?"} · cfg ${settings.cfg ?? "?"} · ` +
      `seed ${settings.seed ?? "?"}`,
    architectureSummary(report.architecture),
    [sigmas, entropy.length ? `last-step entropy ${entropy.join(", ")}` : null].filter(Boolean).join(" · "),
    topTokens(stepTokens(steps.at(-1))),
  ];
}

function genericSummary(report) {
  const scalars = Object.entries(report).filter(([, value]) => value === null || typeof value !== "object");
  return scalars.slice(0, GENERIC_ROWS).map(([key, value]) => `${key}: ${value}`);
}

const SUMMARIES = Object.freeze({ unet_inspection: inspectionSummary, unet_trajectory: trajectorySummary });

/** The few lines a node shows of one structured report, ending with how to open the full report. */
export function reportSummary(report) {
  const lines = (SUMMARIES[report.kind] ?? genericSummary)(report).filter(Boolean);
  return [...lines, FULL_REPORT_HINT];
}

// --- sections (the full report, as tables) ---------------------------------------------------------------

function architectureSection(architecture) {
  const header = ["code", "block", "modules", "channels", "size", "params", "cross-attention", "skip"];
  const rows = (architecture?.blocks ?? []).map((block) => [
    block.code ?? "", block.name, (block.modules ?? []).join(" + "), `${block.in_channels}→${block.out_channels}`,
    size(block.size), (block.parameters ?? 0).toLocaleString("en-US"),
    (block.cross_attention ?? []).map((site) => `${site.heads}×${site.dim_head} at ${size(site.size)}`).join(", ") || "–",
    block.skip_from ? `← ${block.skip_from}` : block.skip_to ? `→ ${block.skip_to}` : "",
  ]);
  const total = `${((architecture?.parameters ?? 0) / 1e6).toFixed(2)}M parameters`;
  return { title: `Architecture (${rows.length} blocks, ${total})`, header, rows };
}

function blockSection(report) {
  const codes = blockCodes(report.architecture);
  const negative = (report.blocks ?? []).some((block) => block.negative);
  const header = ["code", "block", "shape", "std", "mean", "|max|", "norm", "entropy", ...(negative ? ["std (negative)"] : [])];
  const rows = (report.blocks ?? []).map((block) => [
    codes.get(block.name) ?? "", block.name, (block.shape ?? []).slice(1).join("×"),
    formatNumber(block.positive?.std), formatNumber(block.positive?.mean), formatNumber(block.positive?.abs_max),
    formatNumber(block.positive?.norm, 1), formatNumber(block.attention_entropy, 2),
    ...(negative ? [formatNumber(block.negative?.std)] : []),
  ]);
  return { title: "Per-block output statistics (positive pass; entropy normalised: 0 = one token, 1 = all alike)", header, rows };
}

function tokenSection(tokens, title) {
  const header = ["position", "token", "share of attention", "spatial concentration"];
  const rows = (tokens ?? []).map((t) => [String(t.position), t.text, percent(t.mass), formatNumber(t.concentration, 3)]);
  return { title, header, rows };
}

function layerSection(layers) {
  const header = ["layer", "grid", "heads", "entropy", "top tokens"];
  const rows = (layers ?? []).map((layer) => [
    layer.layer, size(layer.size), String(layer.heads), formatNumber(layer.entropy_normalized, 2),
    (layer.top_tokens ?? []).map((t) => `${t.text} ${percent(t.mass)}`).join(", "),
  ]);
  return { title: "Cross-attention layers", header, rows };
}

function inspectionSections(report) {
  const noise = report.noise ?? {};
  const facts = [
    ["σ", formatNumber(noise.sigma)], ["timestep", formatNumber(noise.timestep, 1)],
    ["step", noise.step != null ? `${noise.step} of ${noise.steps} (${noise.scheduler})` : "–"],
    ["latent", (report.latent_shape ?? []).join("×")], ["views", (report.views ?? []).join(", ")],
  ];
  return [
    { title: "UNet inspection", header: ["", ""], rows: facts },
    tokenSection(report.attention?.tokens, "Tokens (averaged over every cross-attention layer)"),
    blockSection(report),
    layerSection(report.attention?.layers),
    architectureSection(report.architecture),
  ];
}

function trajectorySections(report) {
  const settings = Object.entries(report.settings ?? {}).map(([key, value]) => [key, Array.isArray(value) ? value.join(", ") : String(value)]);
  const steps = report.steps ?? [];
  const grids = Object.keys(steps[0]?.attention_entropy ?? {});
  const tokens = stepTokens(steps[0]).map((t) => t.text);
  const header = ["step", "σ", ...grids.map((grid) => `entropy ${grid}`), ...tokens.map((text) => `share '${text}'`)];
  const rows = steps.map((step) => [
    String(step.step + 1), formatNumber(step.sigma), ...grids.map((grid) => formatNumber(step.attention_entropy[grid], 2)),
    ...stepTokens(step).map((t) => percent(t.mass)),
  ]);
  return [
    { title: "UNet trajectory", header: ["", ""], rows: settings },
    { title: "Per step: attention entropy per grid (normalised) and each token's share of attention", header, rows },
    tokenSection(stepTokens(steps.at(-1)), "Tokens at the last step"),
    architectureSection(report.architecture),
  ];
}

function genericSections(report) {
  const rows = Object.entries(report).map(([key, value]) => [key, typeof value === "object" ? JSON.stringify(value) : String(value)]);
  return [{ title: `Report (${report.kind})`, header: ["field", "value"], rows }];
}

const SECTIONS = Object.freeze({ unet_inspection: inspectionSections, unet_trajectory: trajectorySections });

/** The full report as tables: [{ title, header: [names], rows: [[cells]] }], empty tables left out. */
export function reportSections(report) {
  return (SECTIONS[report.kind] ?? genericSections)(report).filter((section) => section.rows.length);
}

// --- outputs -----------------------------------------------------------------------------------------------

function isImageRef(entry) {
  return entry && typeof entry === "object" && typeof entry.filename === "string";
}

function isReport(entry) {
  return entry && typeof entry === "object" && !isImageRef(entry) && "kind" in entry;
}

/**
 * What a node shows of an `executed` output: { images: refs, lines: text lines, reports }. Strings become
 * lines, {filename, subfolder, type} entries images, objects with a "kind" reports (summarised in lines).
 */
export function outputContent(output) {
  const images = [];
  const lines = [];
  const reports = [];
  for (const entries of Object.values(output ?? {})) {
    if (!Array.isArray(entries)) continue;
    for (const entry of entries) {
      if (typeof entry === "string" || typeof entry === "number") lines.push(...String(entry).split("\n"));
      else if (isImageRef(entry)) images.push(entry);
      else if (isReport(entry)) {
        reports.push(entry);
        lines.push(...reportSummary(entry));
      }
    }
  }
  return { images, lines, reports };
}
