"""The composition root: the one server module that builds runtime objects and registers node packs.

Config → services → node packs (first-party ``nodes`` + extra packs) through the pluggy hooks →
NodeRegistry → output cache + executor → app. The CLI's ``serve`` and ``run`` both start here.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

import nodes
from latentloom.api import NodeRegistry, PreviewSettings, Services
from latentloom.engine.cache import OutputCache
from latentloom.engine.executor import Executor
from server.app import create_app
from server.config import Config
from server.files import NotAnImage, accepted_image_formats
from server.packs import LoadedPacks, load_packs, pack_name
from server.plugins import (
    PluginReport,
    PluginSettings,
    discover_plugins,
    import_plugins,
    installed_entry_points,
    log_summary,
    report_for,
)
from server.system_stats import MachineStats

if TYPE_CHECKING:
    from latentloom.runtime.devices import DeviceManager


@dataclass(frozen=True)
class ComputeSettings:
    """Where models compute: ``device`` (cpu, cuda, cuda:N, mps; None picks the best one present) and
    ``precision`` (fp32, fp16, bf16; None: fp16 on an accelerator, fp32 on the CPU)."""

    device: str | None = None
    precision: str | None = None


@dataclass(frozen=True)
class Composition:
    config: Config
    services: Services
    packs: LoadedPacks
    devices: DeviceManager
    plugins: PluginReport = PluginReport()

    @property
    def registry(self) -> NodeRegistry:
        return self.packs.registry

    def new_executor(self) -> Executor:
        config = self.config
        cache = OutputCache(ram_budget_bytes=config.cache_ram_budget_bytes, enabled=config.cache_enabled)
        return Executor(self.registry, cache=cache)


def compose(
    config: Config,
    *,
    extra_packs: Sequence[Any] = (),
    plugins: PluginSettings | None = None,
    compute: ComputeSettings | None = None,
) -> Composition:
    """Build everything a server or a headless run needs; ``extra_packs`` are plugin modules or objects.

    ``plugins`` says which custom_nodes/ and entry-point plugins to load (all by default); ``compute``
    picks the device and precision (DeviceError, a LatentLoomError, when they cannot be used).

    Raises LatentLoomError for settings that cannot be used (e.g. an unreadable extra model paths file).
    """
    # Imported here: the runtime loads torch, and `latentloom --help` should not wait for it.
    from latentloom.runtime.devices import DeviceManager
    from latentloom.runtime.embeddings import EmbeddingLibrary
    from latentloom.runtime.folders import ModelFolders

    compute = compute or ComputeSettings()
    devices = DeviceManager(device=compute.device, precision=compute.precision)
    folders = ModelFolders(
        config.base_dir, extra_paths=config.extra_model_paths, output_dir=config.output_dir
    )
    services = Services(
        folders, devices, EmbeddingLibrary(folders.roots("embeddings")), PreviewSettings(config.preview_method)
    )
    settings = plugins or PluginSettings()
    custom_nodes_dir = settings.custom_nodes_dir or Path(config.base_dir) / "custom_nodes"
    found = discover_plugins(
        custom_nodes_dir, entry_points=installed_entry_points() if settings.entry_points else ()
    )
    plugin_packs, plugin_records = import_plugins(found, settings)
    # Built-ins first, then packs given in code, then plugins by name: the first to claim a name keeps it.
    packs = load_packs([nodes, *extra_packs, *plugin_packs], services=services, shadow_conflicts=True)
    given = {pack_name(nodes): "builtin"} | {pack_name(p): "extra" for p in extra_packs}
    report = report_for(given, packs, plugin_records)
    log_summary(report)
    return Composition(config=config, services=services, packs=packs, devices=devices, plugins=report)


def build_app(
    config: Config,
    *,
    extra_packs: Sequence[Any] = (),
    plugins: PluginSettings | None = None,
    compute: ComputeSettings | None = None,
) -> web.Application:
    return app_for(compose(config, extra_packs=extra_packs, plugins=plugins, compute=compute))


def write_demo_checkpoint(config: Config) -> Path:
    """``latentloom demo-checkpoint``: the small random-weight SD1.5-layout checkpoint, written into the
    base dir's models/checkpoints (never into another install's folders); returns its path."""
    from latentloom.runtime.demo_checkpoint import write_demo_checkpoint as write
    from latentloom.runtime.folders import ModelFolders

    return write(ModelFolders(config.base_dir))


def app_for(composition: Composition) -> web.Application:
    return create_app(
        composition.config,
        registry=composition.registry,
        executor_factory=composition.new_executor,
        machine_probe=partial(machine_stats, composition.devices),
        plugin_report=composition.plugins,
        image_probe=pillow_image_probe,
    )


def machine_stats(devices: DeviceManager) -> MachineStats:
    """/system_stats facts from the device manager (it reads torch; the server layer does not)."""
    return MachineStats.from_mapping(devices.system_info())


def pillow_image_probe(data: bytes) -> str:
    """An upload's image format as Pillow reads it: an accepted format whose header Pillow verifies,
    within Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``; here its warning refuses too).
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(accepted_image_formats())) as picture:
                image_format = picture.format or ""
                picture.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise NotAnImage(f"the image is too large to decode safely: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise NotAnImage(f"the image cannot be read: {error}") from None
    return image_format
