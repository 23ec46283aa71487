"""Engine overhead on a 200-node synthetic graph: validation + schedule, and executor runs.

The graph is a chain with fan-in: 100 constant leaves, 99 adders each reading the previous adder and
one leaf, and one output node. Nodes do trivial work, so the times are the engine's own.

    .venv/bin/python bench/engine_bench.py            # table
    .venv/bin/python bench/engine_bench.py --json     # machine-readable
    .venv/bin/python bench/engine_bench.py --check    # exit 1 if a target is missed

Targets (docs/performance.md): fully cached re-run < 5 ms, validate + schedule < 20 ms.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from latentloom.api import Input, IntInput, NodeRegistry, NodeResult, NodeSchema, NodeType, Output
from latentloom.engine import Event, Executor, OutputCache, validate_prompt

TARGETS_MS = {"validate + schedule": 20.0, "fully cached re-run": 5.0}


class Const(NodeType):
    schema = NodeSchema(type="BenchConst", required=(IntInput("value"),), outputs=(Output("INT"),))

    def execute(self, ctx, value):
        return (value,)


class Add(NodeType):
    schema = NodeSchema(
        type="BenchAdd", required=(Input("a", "INT"), Input("b", "INT")), outputs=(Output("INT"),)
    )

    def execute(self, ctx, a, b):
        return (a + b,)


class Show(NodeType):
    schema = NodeSchema(type="BenchShow", output_node=True, required=(Input("value", "INT"),))

    def execute(self, ctx, value):
        return NodeResult(ui={"text": [str(value)]})


def make_registry() -> NodeRegistry:
    registry = NodeRegistry()
    for node_type in (Const(), Add(), Show()):
        registry.register(node_type, source="bench")
    return registry


def make_prompt(leaves: int) -> dict[str, Any]:
    """``leaves`` constants, ``leaves - 1`` adders in a chain, one output: 2 * leaves nodes."""
    prompt: dict[str, Any] = {}
    for i in range(leaves):
        prompt[f"c{i}"] = {"class_type": "BenchConst", "inputs": {"value": i}}
    previous = ["c0", 0]
    for i in range(1, leaves):
        prompt[f"a{i}"] = {"class_type": "BenchAdd", "inputs": {"a": previous, "b": [f"c{i}", 0]}}
        previous = [f"a{i}", 0]
    prompt["out"] = {"class_type": "BenchShow", "inputs": {"value": previous}}
    return prompt


def median_ms(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {"median_ms": statistics.median(ms), "min_ms": ms[0], "max_ms": ms[-1]}


def timed(action: Callable[[], Any], *, runs: int, before: Callable[[], Any] = lambda: None) -> list[float]:
    samples = []
    for _ in range(runs):
        before()
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def measure(*, leaves: int, runs: int) -> dict[str, Any]:
    registry = make_registry()
    prompt = make_prompt(leaves)
    interrupt = threading.Event()
    events: list[Event] = []
    executed: list[int] = []
    graph = validate_prompt(prompt, registry)
    cache = OutputCache(ram_budget_bytes=None)
    executor = Executor(registry, cache=cache)

    def run(g=graph) -> None:
        events.clear()
        outcome = executor.run(g, prompt_id="bench", emit=events.append, interrupt=interrupt)
        assert outcome.status == "success", outcome.error
        executed.append(len(outcome.executed))

    results = {"validate + schedule": timed(lambda: validate_prompt(prompt, registry), runs=runs)}
    results["first run"] = timed(run, runs=runs, before=cache.clear)
    run()
    results["fully cached re-run"] = timed(run, runs=runs)
    events_in_cached_run, executed_in_cached_run = len(events), executed[-1]

    # Change the middle leaf to a value never seen before: it, the adders after it and the output re-run.
    values = itertools.count(10**6)
    changed: dict[str, Any] = {}

    def change_leaf() -> None:
        edited = dict(prompt)
        edited[f"c{leaves // 2}"] = {"class_type": "BenchConst", "inputs": {"value": next(values)}}
        changed["graph"] = validate_prompt(edited, registry)

    results["one-leaf change"] = timed(lambda: run(changed["graph"]), runs=runs, before=change_leaf)
    return {
        "nodes": len(prompt),
        "runs": runs,
        "events_in_cached_run": events_in_cached_run,
        "nodes_run_in_cached_run": executed_in_cached_run,
        "nodes_run_by_leaf_change": executed[-1],
        "python": sys.version.split()[0],
        "timings": {name: median_ms(samples) for name, samples in results.items()},
    }


def print_table(report: dict[str, Any]) -> None:
    print(f"engine bench: {report['nodes']} nodes, median of {report['runs']} runs, Python {report['python']}")
    print(
        f"cached re-run runs {report['nodes_run_in_cached_run']} nodes; "
        f"the leaf change re-runs {report['nodes_run_by_leaf_change']}"
    )
    print(f"{'measure':<22}{'median ms':>11}{'min ms':>9}{'max ms':>9}   target")
    for name, t in report["timings"].items():
        target = TARGETS_MS.get(name)
        verdict = "" if target is None else f"< {target:g} ms " + ("ok" if t["median_ms"] < target else "MISSED")
        print(f"{name:<22}{t['median_ms']:>11.3f}{t['min_ms']:>9.3f}{t['max_ms']:>9.3f}   {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="runs per measure (the median is reported)")
    parser.add_argument("--leaves", type=int, default=100, help="constant leaves; the graph has twice as many nodes")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    report = measure(leaves=args.leaves, runs=args.runs)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    missed = [n for n, target in TARGETS_MS.items() if report["timings"][n]["median_ms"] >= target]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
