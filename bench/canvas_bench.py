"""Frame time of the canvas while panning and zooming a 300-node graph, in headless Debian chromium.

Usage: .venv/bin/python bench/canvas_bench.py [--nodes 300] [--frames 240] [--json]

Starts a real server (composition root + the browser tests' node pack, which has every widget kind,
multi-line prompts included), opens the canvas, builds a graph of N nodes in chains, then for each
scenario moves the view a little every frame and times LiteGraph's full redraw (``draw(true, true)``:
background, links, nodes, widgets), with the app's own render loop paused so that each frame is drawn
exactly once. Target: under 16 ms per frame (60 fps). Prints median, p95 and worst per scenario.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The project's packages first (regular packages win over the namespace folders of the same name under
# tests/), then tests/ for the browser tests' live server and node pack.
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from web.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from web.live_server import LiveServer  # noqa: E402

TARGET_MS = 16.0
VIEWPORT = {"width": 1600, "height": 900}

BUILD_GRAPH = """
(count) => {
  const { model, editor } = window.latentloom;
  model.clear();
  const chain = ['TestSolidColor', 'TestInvert', 'TestSlowSteps', 'TestSlowSteps', 'TestSaveImage'];
  const perRow = 20;
  let previous = null;
  for (let i = 0; i < count; i++) {
    const type = chain[i % chain.length];
    const node = model.addNode(type, { pos: [(i % perRow) * 380, Math.floor(i / perRow) * 460] });
    if (previous && i % chain.length !== 0) previous.connect(0, node, 0);
    previous = node;
  }
  model.markChanged();
  return { nodes: model.nodes.length, links: model.graph.links.size };
}
"""

MEASURE = """
async ([scenario, frames]) => {
  const { editor } = window.latentloom;
  const canvas = editor.canvas;
  const rect = editor.element.getBoundingClientRect();
  const centre = [rect.width / 2, rect.height / 2];
  canvas.ds.scale = scenario.scale;
  canvas.ds.offset = [...scenario.offset];
  canvas.pause_rendering = true;
  const times = [];
  const visible = [];
  for (let i = 0; i < frames; i++) {
    const forth = i % 120 < 60 ? 1 : -1; // back and forth, so the view stays over the graph
    if (scenario.kind === 'pan') {
      canvas.ds.offset[0] -= (forth * 6) / canvas.ds.scale;
      canvas.ds.offset[1] -= (forth * 2) / canvas.ds.scale;
    } else {
      canvas.ds.changeScale(canvas.ds.scale * (forth > 0 ? 1 / 1.02 : 1.02), centre, false);
    }
    canvas.setDirty(true, true);
    const start = performance.now();
    canvas.draw(true, true);
    times.push(performance.now() - start);
    visible.push(canvas.visible_nodes.length);
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
  canvas.pause_rendering = false;
  return { times, visible };
}
"""

# offset is in graph units: the view's top-left shows graph point -offset.
SCENARIOS = [
    {"name": "pan at zoom 1.0", "kind": "pan", "scale": 1.0, "offset": [-2000, -2000]},
    {"name": "pan at zoom 0.6 (the most nodes in full detail)", "kind": "pan", "scale": 0.6, "offset": [-2000, -2000]},
    {"name": "pan with all 300 nodes in view", "kind": "pan", "scale": 0.09, "offset": [4400, 1700]},
    {"name": "zoom out and in between 0.6 and 0.18", "kind": "zoom", "scale": 0.6, "offset": [-2000, -2000]},
]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def run(node_count: int, frames: int) -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as base:
        server = LiveServer(Path(base)).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(server.url)
                page.wait_for_selector("body[data-ready=true]")
                graph = page.evaluate(BUILD_GRAPH, node_count)
                results = []
                for scenario in SCENARIOS:
                    page.evaluate(MEASURE, [scenario, 30])  # warm-up: fonts, caches, JIT
                    sample = page.evaluate(MEASURE, [scenario, frames])
                    times = sample["times"]
                    results.append({
                        "scenario": scenario["name"],
                        "median_ms": round(percentile(times, 0.5), 2),
                        "p95_ms": round(percentile(times, 0.95), 2),
                        "max_ms": round(max(times), 2),
                        "visible_nodes_median": int(percentile(sample["visible"], 0.5)),
                    })
                browser.close()
        finally:
            server.stop()
    return {"graph": graph, "viewport": VIEWPORT, "frames": frames, "target_ms": TARGET_MS, "results": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    report = run(args.nodes, args.frames)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        graph = report["graph"]
        print(f"{graph['nodes']} nodes, {graph['links']} links, viewport {VIEWPORT['width']}x{VIEWPORT['height']}, "
              f"{report['frames']} frames per scenario; target < {TARGET_MS:.0f} ms per frame")
        for row in report["results"]:
            verdict = "ok" if row["p95_ms"] < TARGET_MS else "SLOW"
            print(f"  {row['scenario']:<46} median {row['median_ms']:6.2f} ms  p95 {row['p95_ms']:6.2f} ms  "
                  f"max {row['max_ms']:6.2f} ms  ({row['visible_nodes_median']} nodes drawn)  {verdict}")
    slow = [row for row in report["results"] if row["p95_ms"] >= TARGET_MS]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
