"""The composition root: the one server module that builds runtime objects and registers node packs.

Config → services → node packs (first-party ``nodes`` + extra packs) through the pluggy hooks →
NodeRegistry → output cache + executor → app. The CLI's ``serve`` and ``run`` both start here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

import nodes
from latentloom.api import NodeRegistry, Services
from latentloom.engine.cache import OutputCache
from latentloom.engine.executor import Executor
from server.app import create_app
from server.config import Config
from server.packs import LoadedPacks, load_packs
from server.system_stats import MachineStats

if TYPE_CHECKING:
    from latentloom.runtime.devices import DeviceManager


@dataclass(frozen=True)
class Composition:
    config: Config
    services: Services
    packs: LoadedPacks
    devices: DeviceManager

    @property
    def registry(self) -> NodeRegistry:
        return self.packs.registry

    def new_executor(self) -> Executor:
        config = self.config
        cache = OutputCache(ram_budget_bytes=config.cache_ram_budget_bytes, enabled=config.cache_enabled)
        return Executor(self.registry, cache=cache)


def compose(config: Config, *, extra_packs: Sequence[Any] = ()) -> Composition:
    """Build everything a server or a headless run needs; ``extra_packs`` are plugin modules or objects.

    Raises LatentLoomError for settings that cannot be used (e.g. an unreadable extra model paths file).
    """
    # Imported here: the runtime loads torch, and `latentloom --help` should not wait for it.
    from latentloom.runtime.devices import DeviceManager
    from latentloom.runtime.folders import ModelFolders

    devices = DeviceManager()
    folders = ModelFolders(config.base_dir, extra_paths=config.extra_model_paths)
    services = Services(folders, devices)
    packs = load_packs([nodes, *extra_packs], services=services)
    return Composition(config=config, services=services, packs=packs, devices=devices)


def build_app(config: Config, *, extra_packs: Sequence[Any] = ()) -> web.Application:
    return app_for(compose(config, extra_packs=extra_packs))


def app_for(composition: Composition) -> web.Application:
    return create_app(
        composition.config,
        registry=composition.registry,
        executor_factory=composition.new_executor,
        machine_probe=partial(machine_stats, composition.devices),
    )


def machine_stats(devices: DeviceManager) -> MachineStats:
    """/system_stats facts from the device manager (it reads torch; the server layer does not)."""
    return MachineStats.from_mapping(devices.system_info())
