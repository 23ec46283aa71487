"""The ``latentloom`` command: ``serve``, ``run WORKFLOW.json`` and ``nodes``.

Exit codes of ``run``: 0 success, 1 a node failed, 2 the workflow, an override, the graph or a setting is
invalid, 130 interrupted with Ctrl+C. On failure the structured error JSON goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from latentloom.api import LatentLoomError, NodeRegistry
from latentloom.engine.errors import GraphValidationError
from latentloom.engine.prompt import validate_prompt
from latentloom.engine.protocol import validation_error_body
from server.composition import Composition, app_for, compose
from server.config import Config
from server.headless import (
    ProgressDisplay,
    WorkflowFileError,
    apply_overrides,
    load_api_prompt,
    output_files,
    run_graph,
)

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentloom", description="Stable Diffusion node-graph workflows")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the web server (canvas + ComfyUI-compatible API)")
    serve.set_defaults(handler=serve_command)
    serve.add_argument("--listen", default="127.0.0.1", metavar="HOST", help="address (default %(default)s)")
    serve.add_argument("--port", type=int, default=8188, metavar="N", help="port (default %(default)s)")
    serve.add_argument("--base-dir", type=Path, metavar="DIR", help="holds input/, output/, temp/")
    serve.add_argument("--cache-ram", type=float, default=4.0, metavar="GB", help="output cache budget")
    serve.add_argument("--cache", choices=("none", "ram"), default="ram", help="keep results between prompts")
    _add_model_paths_argument(serve)

    run = commands.add_parser("run", help="run an API-prompt JSON file without the server")
    run.set_defaults(handler=run_command)
    run.add_argument("workflow", type=Path, metavar="WORKFLOW.json")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NODE.INPUT=VALUE",
        help="override an input (VALUE is JSON when it parses, else text); repeatable",
    )
    run.add_argument("--out", type=Path, metavar="DIR", help="output folder (default BASE_DIR/output)")
    run.add_argument("--base-dir", type=Path, metavar="DIR", help="holds input/, output/, temp/")
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    _add_model_paths_argument(run)

    nodes = commands.add_parser("nodes", help="list the node types")
    nodes.set_defaults(handler=nodes_command)
    nodes.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def _add_model_paths_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--extra-model-paths",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a ComfyUI-style extra_model_paths.yaml with more model folders; repeatable",
    )


def _config(args: argparse.Namespace, **settings: Any) -> Config:
    if args.base_dir is not None:
        settings["base_dir"] = args.base_dir
    return Config(extra_model_paths=tuple(args.extra_model_paths), **settings)


def _compose(config: Config, extra_packs: Sequence[Any]) -> Composition | None:
    """The composition, or None after printing why the settings cannot be used."""
    try:
        composition = compose(config, extra_packs=extra_packs)
    except LatentLoomError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    for failure in composition.packs.failures:
        print(f"warning: node pack {failure.pack!r} was not loaded: {failure.message}", file=sys.stderr)
    return composition


def serve_command(args: argparse.Namespace, *, extra_packs: Sequence[Any]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = _config(
        args,
        listen=args.listen,
        port=args.port,
        cache_ram_gb=args.cache_ram,
        cache_enabled=args.cache == "ram",
    )
    composition = _compose(config, extra_packs)
    if composition is None:
        return EXIT_INVALID
    web.run_app(
        app_for(composition),
        host=config.listen,
        port=config.port,
        print=lambda _: print(f"LatentLoom is running at {config.url}  (Ctrl+C to stop)", flush=True),
        access_log=None,
    )
    return 0


def run_command(args: argparse.Namespace, *, extra_packs: Sequence[Any]) -> int:
    config = _config(args, output_dir=args.out)
    try:
        prompt = load_api_prompt(args.workflow)
        apply_overrides(prompt, args.overrides)
    except WorkflowFileError as error:
        print(json.dumps({"error": {"type": "invalid_workflow", "message": str(error)}}, indent=2))
        return EXIT_INVALID
    composition = _compose(config, extra_packs)
    if composition is None:
        return EXIT_INVALID
    try:
        graph = validate_prompt(prompt, composition.registry)
    except GraphValidationError as error:
        print(json.dumps(validation_error_body(error), indent=2))
        return EXIT_INVALID
    folders = config.folders()
    folders.create()
    display = ProgressDisplay(graph, stream=sys.stderr, enabled=not args.no_progress)
    started = time.perf_counter()
    outcome = run_graph(composition.new_executor(), graph, display=display)
    if outcome.status != "success":
        print(json.dumps({"status": outcome.status, "error": outcome.error}, indent=2))
        return EXIT_INTERRUPTED if outcome.status == "interrupted" else EXIT_FAILED
    for path in output_files(outcome.ui_outputs, folders):
        print(path)
    seconds = time.perf_counter() - started
    print(f"done in {seconds:.2f} s: {len(outcome.executed)} node(s) ran", file=sys.stderr)
    return 0


def _node_summary(registry: NodeRegistry, name: str) -> dict[str, Any]:
    schema = registry.get(name).schema
    required = {spec.name for spec in schema.required}
    return {
        "name": name,
        "display_name": schema.display_name or name,
        "category": schema.category,
        "source": registry.source_of(name),
        "aliases": list(schema.aliases),
        "inputs": [{"name": i.name, "type": i.type, "required": i.name in required} for i in schema.inputs],
        "outputs": [{"name": o.display_name, "type": o.type} for o in schema.outputs],
    }


def nodes_command(args: argparse.Namespace, *, extra_packs: Sequence[Any]) -> int:
    composition = _compose(Config(), extra_packs)
    if composition is None:
        return EXIT_INVALID
    summaries = [_node_summary(composition.registry, name) for name in composition.registry]
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 0
    for node in summaries:
        inputs = ", ".join(f"{i['name']}: {i['type']}{'' if i['required'] else '?'}" for i in node["inputs"])
        outputs = ", ".join(o["type"] for o in node["outputs"]) or "-"
        print(f"{node['name']}  [{node['category']}]  ({inputs}) -> {outputs}")
    return 0


def main(argv: Sequence[str] | None = None, *, extra_packs: Sequence[Any] = ()) -> int:
    """Entry point; ``extra_packs`` are node packs to register besides the first-party ``nodes``."""
    args = build_parser().parse_args(argv)
    return args.handler(args, extra_packs=extra_packs)
