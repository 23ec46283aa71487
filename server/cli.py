"""The ``latentloom`` command: ``serve``, ``run WORKFLOW``, ``check WORKFLOW``, ``nodes`` and ``demo-checkpoint``.

Exit codes of ``run``: 0 success, 1 a node failed, 2 the workflow, an override, the graph or a setting is
invalid, 130 interrupted with Ctrl+C. On failure the structured error JSON goes to stdout. WORKFLOW is our
format, ComfyUI's UI format, an API prompt, or a PNG holding a workflow or prompt. ``check`` exits 0 when
the workflow can run here, 1 when it cannot (missing node types, conversion or validation problems).
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
from latentloom.api.preview import PREVIEW_METHODS
from latentloom.engine.errors import GraphValidationError
from latentloom.engine.prompt import validate_prompt
from latentloom.engine.protocol import validation_error_body
from latentloom.workflow import MissingNodeTypes
from server.auth import needs_token, new_token
from server.composition import Composition, ComputeSettings, app_for, compose, write_demo_checkpoint
from server.config import Config
from server.headless import (
    ProgressDisplay,
    WorkflowFileError,
    apply_overrides,
    apply_widget_overrides,
    load_runnable,
    output_files,
    run_graph,
)
from server.plugins import PluginSettings
from server.workflow_check import check_workflow_file
from server.workflow_input import WorkflowConversionError, workflow_error_body

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
    serve.add_argument(
        "--cache-ram", type=float, metavar="GB",
        help="budget for results kept between prompts, models included (default: half the RAM, at least 4)",
    )  # fmt: skip
    serve.add_argument("--cache", choices=("none", "ram"), default="ram", help="keep results between prompts")
    serve.add_argument(
        "--auth-token",
        metavar="TOKEN",
        help="access token for HTTP and the websocket (Bearer header or ?token=); generated when --listen "
        "is not loopback and none is given",
    )
    serve.add_argument(
        "--enable-cors-header",
        metavar="ORIGIN",
        help="allow this origin ('*': any) to call the API from another site; CORS is off by default",
    )
    serve.add_argument(
        "--history-max-items", type=int, default=10_000, metavar="N", help="finished prompts kept (default %(default)s)"
    )
    serve.add_argument(
        "--preview-method",
        choices=PREVIEW_METHODS,
        default="latent2rgb",
        help="live sampler previews for clients that ask: latent2rgb (auto picks it too) or none (default %(default)s)",
    )
    _add_model_paths_argument(serve)
    _add_compute_arguments(serve)
    _add_plugin_arguments(serve)

    run = commands.add_parser("run", help="run a workflow or API prompt (JSON or PNG) without the server")
    run.set_defaults(handler=run_command)
    run.add_argument("workflow", type=Path, metavar="WORKFLOW.(json|png)")
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
    _add_compute_arguments(run)
    _add_plugin_arguments(run)

    check = commands.add_parser("check", help="report missing node types and problems of a workflow file")
    check.set_defaults(handler=check_command)
    check.add_argument("workflow", type=Path, metavar="WORKFLOW.(json|png)")
    check.add_argument("--base-dir", type=Path, metavar="DIR", help="holds input/, output/, temp/")
    _add_model_paths_argument(check)
    _add_plugin_arguments(check)

    nodes = commands.add_parser("nodes", help="list the node types")
    nodes.set_defaults(handler=nodes_command)
    nodes.add_argument("--json", action="store_true", help="print JSON instead of text")
    _add_plugin_arguments(nodes)

    demo = commands.add_parser(
        "demo-checkpoint", help="write a small random-weight checkpoint to try the default workflow (images are noise)"
    )
    demo.set_defaults(handler=demo_checkpoint_command)
    demo.add_argument("--base-dir", type=Path, metavar="DIR", help="writes into DIR/models/checkpoints")
    return parser


def _add_compute_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", metavar="DEVICE", help="cpu, cuda, cuda:N or mps (default: the best one present)")
    parser.add_argument(
        "--precision", choices=("fp32", "fp16", "bf16"), help="weights' dtype (default: fp16 on a GPU, fp32 on the CPU)"
    )


def _compute(args: argparse.Namespace) -> ComputeSettings:
    return ComputeSettings(device=args.device, precision=args.precision)


def _add_model_paths_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--extra-model-paths",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a ComfyUI-style extra_model_paths.yaml with more model folders; repeatable",
    )


def _add_plugin_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--disable-plugins", action="store_true", help="load no custom_nodes/ or installed plugins")
    parser.add_argument("--plugins", metavar="A,B", help="load only these plugins (comma-separated names)")


def _plugin_settings(args: argparse.Namespace) -> PluginSettings:
    allow = None if args.plugins is None else frozenset(n.strip() for n in args.plugins.split(",") if n.strip())
    return PluginSettings(enabled=not args.disable_plugins, allow=allow)


def _config(args: argparse.Namespace, **settings: Any) -> Config:
    if args.base_dir is not None:
        settings["base_dir"] = args.base_dir
    return Config(extra_model_paths=tuple(args.extra_model_paths), **settings)


def _compose(
    config: Config,
    extra_packs: Sequence[Any],
    *,
    plugins: PluginSettings | None = None,
    compute: ComputeSettings | None = None,
) -> Composition | None:
    """The composition, or None after printing why the settings cannot be used."""
    try:
        composition = compose(config, extra_packs=extra_packs, plugins=plugins, compute=compute)
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
        history_max_items=max(1, args.history_max_items),
        auth_token=_access_token(args),
        cors_origin=args.enable_cors_header,
        preview_method=args.preview_method,
    )
    composition = _compose(config, extra_packs, plugins=_plugin_settings(args), compute=_compute(args))
    if composition is None:
        return EXIT_INVALID
    web.run_app(
        app_for(composition),
        host=config.listen,
        port=config.port,
        print=lambda _: print(f"LatentLoom is running at {_address(config)}  (Ctrl+C to stop)", flush=True),
        access_log=None,
    )
    return 0


def _access_token(args: argparse.Namespace) -> str | None:
    """--auth-token; beyond loopback without one, a new random token (printed in the address at start)."""
    if args.auth_token:
        return args.auth_token
    return new_token() if needs_token(args.listen) else None


def _address(config: Config) -> str:
    return f"{config.url}?token={config.auth_token}" if config.auth_token else config.url


def run_command(args: argparse.Namespace, *, extra_packs: Sequence[Any]) -> int:
    config = _config(args, output_dir=args.out)
    composition = _compose(config, extra_packs, plugins=_plugin_settings(args), compute=_compute(args))
    if composition is None:
        return EXIT_INVALID
    try:
        # Workflows are converted against the registry, so the packs are loaded before the file is read.
        runnable = load_runnable(args.workflow, composition.registry)
        prompt = runnable.prompt
        apply_overrides(prompt, args.overrides)
        if runnable.workflow is not None:
            apply_widget_overrides(runnable.workflow, args.overrides)
    except WorkflowFileError as error:
        print(json.dumps({"error": {"type": "invalid_workflow", "message": str(error)}}, indent=2))
        return EXIT_INVALID
    except (MissingNodeTypes, WorkflowConversionError) as error:
        print(json.dumps(workflow_error_body(error), indent=2))
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
    extra_data = {"extra_pnginfo": runnable.extra_pnginfo(composition.registry)}
    outcome = run_graph(composition.new_executor(), graph, display=display, extra_data=extra_data)
    if outcome.status != "success":
        print(json.dumps({"status": outcome.status, "error": outcome.error}, indent=2))
        return EXIT_INTERRUPTED if outcome.status == "interrupted" else EXIT_FAILED
    for path in output_files(outcome.ui_outputs, folders):
        print(path)
    seconds = time.perf_counter() - started
    print(f"done in {seconds:.2f} s: {len(outcome.executed)} node(s) ran", file=sys.stderr)
    return 0


def check_command(args: argparse.Namespace, *, extra_packs: Sequence[Any]) -> int:
    """Exit 0 when the workflow can run here, 1 when it cannot (each reason printed), 2 for bad settings."""
    composition = _compose(_config(args), extra_packs, plugins=_plugin_settings(args))
    if composition is None:
        return EXIT_INVALID
    report = check_workflow_file(args.workflow, composition.registry)
    for line in report.lines:
        print(line)
    return 0 if report.ok else EXIT_FAILED


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
    composition = _compose(Config(), extra_packs, plugins=_plugin_settings(args))
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


def demo_checkpoint_command(args: argparse.Namespace, *, extra_packs: Sequence[Any]) -> int:
    config = Config(base_dir=args.base_dir) if args.base_dir is not None else Config()
    try:
        path = write_demo_checkpoint(config)
    except OSError as error:
        print(f"error: cannot write the demo checkpoint: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(path)
    print(
        "A random-weight checkpoint in the SD1.5 layout: the default workflow runs on it, but its images are "
        "noise. Put real checkpoints (.safetensors) in the same folder.",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None, *, extra_packs: Sequence[Any] = ()) -> int:
    """Entry point; ``extra_packs`` are node packs to register besides the first-party ``nodes``."""
    args = build_parser().parse_args(argv)
    return args.handler(args, extra_packs=extra_packs)
