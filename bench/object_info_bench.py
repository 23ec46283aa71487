"""Latency of GET /api/object_info on a real server with ~200 registered node types.

Usage: .venv/bin/python bench/object_info_bench.py [--nodes 200] [--requests 200] [--choices 50]

The node types mix every widget kind; a tenth of them have a combo whose choices are computed per
request (a folder listing, like model pickers), the rest static combos. Prints the median and p95 of
the request latency (client side, over loopback) and the response size.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from latentloom.api import (
    BooleanInput,
    ComboInput,
    FloatInput,
    Input,
    IntInput,
    NodeSchema,
    NodeType,
    Output,
    StringInput,
    hookimpl,
)
from server.composition import build_app
from server.config import Config


class BenchNode(NodeType):
    def __init__(self, schema: NodeSchema) -> None:
        self.schema = schema

    def execute(self, ctx, **inputs):
        return tuple(None for _ in self.schema.outputs)


def _folder_listing(folder: Path):
    def choices() -> list[str]:
        return sorted(p.name for p in folder.iterdir())

    return choices


def bench_schema(index: int, *, choices: int, listed_folder: Path) -> NodeSchema:
    static = tuple(f"option_{c}" for c in range(choices))
    combo_source = _folder_listing(listed_folder) if index % 10 == 0 else static
    return NodeSchema(
        type=f"BenchNode{index:03d}",
        display_name=f"Bench node {index}",
        category=f"bench/group{index % 12}",
        description="A node type that only exists to give /object_info realistic weight.",
        required=(
            Input("model", "MODEL"),
            IntInput("seed", default=0, min=0, max=2**64 - 1, control_after_generate=True),
            FloatInput("strength", default=1.0, min=0.0, max=10.0, step=0.01),
            ComboInput("mode", choices=combo_source),
            StringInput("text", multiline=True, tooltip="What to write"),
        ),
        optional=(BooleanInput("enabled", default=True), Input("mask", "MASK")),
        outputs=(Output("MODEL"), Output("LATENT", "samples"), Output("INT", "count")),
    )


class BenchPack:
    def __init__(self, *, count: int, choices: int, listed_folder: Path) -> None:
        self.__name__ = "bench_pack"
        self._schemas = [bench_schema(i, choices=choices, listed_folder=listed_folder) for i in range(count)]

    @hookimpl
    def register_nodes(self, registry, services):
        for schema in self._schemas:
            registry.register(BenchNode(schema), source="bench_pack")


async def measure(app: web.Application, *, requests: int) -> tuple[list[float], int, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/api/object_info"
    latencies: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as warmup:
                body = await warmup.json()
            for _ in range(requests):
                started = time.perf_counter()
                async with session.get(url) as response:
                    size = len(await response.read())
                latencies.append(time.perf_counter() - started)
    finally:
        await runner.cleanup()
    return latencies, len(body), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--choices", type=int, default=50, help="choices per static combo")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        base_dir = Path(base)
        listed = base_dir / "models"
        listed.mkdir()
        for index in range(args.choices):
            (listed / f"model_{index:03d}.safetensors").touch()
        pack = BenchPack(count=args.nodes, choices=args.choices, listed_folder=listed)
        app = build_app(Config(base_dir=base_dir, web_root=base_dir / "web"), extra_packs=[pack])
        latencies, node_count, size = asyncio.run(measure(app, requests=args.requests))
    ms = sorted(1000 * s for s in latencies)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(f"GET /api/object_info: {node_count} node types, {size / 1024:.0f} KiB, {len(ms)} requests")
    median = statistics.median(ms)
    print(f"median {median:.2f} ms   p95 {p95:.2f} ms   min {ms[0]:.2f} ms   max {ms[-1]:.2f} ms")


if __name__ == "__main__":
    main()
