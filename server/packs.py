"""Load node packs (the first-party ``nodes`` package and plugins) through the pluggy hooks.

Each pack registers into a scratch registry first; only a pack whose hook finished and whose names are
all free joins the real registry. A broken pack is left out whole and listed, and the others load.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from latentloom.api import NodeRegistry, Services
from latentloom.api.hooks import PROJECT, LatentLoomHooks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackFailure:
    pack: str
    message: str
    traceback: str = field(default="", repr=False)


@dataclass(frozen=True)
class LoadedPacks:
    registry: NodeRegistry
    loaded: tuple[str, ...]
    failures: tuple[PackFailure, ...]


def pack_name(pack: Any) -> str:
    return getattr(pack, "__name__", None) or type(pack).__name__


def _failure(pack: str, error: BaseException, what: str) -> PackFailure:
    log.error("node pack %r %s: %s", pack, what, error)
    trace = "".join(traceback.format_exception(error))
    return PackFailure(pack, f"{what}: {type(error).__name__}: {error}", trace)


def _register_into(staging: NodeRegistry, impls: list[Any], services: Services) -> None:
    arguments = {"registry": staging, "services": services}
    for impl in impls:
        impl.function(**{name: arguments[name] for name in impl.argnames})


def _merge(staging: NodeRegistry, registry: NodeRegistry) -> None:
    """Move every node type of ``staging`` into ``registry``, or none if any name is taken."""
    nodes = [(staging.get(name), staging.source_of(name) or "") for name in staging]
    for node, source in nodes:
        for taken in (node.schema.type, *node.schema.aliases):
            if taken in registry:
                owner = registry.source_of(taken)
                raise ValueError(f"node type {taken!r} from {source!r} is already registered by {owner!r}")
    for node, source in nodes:
        registry.register(node, source=source)


def load_packs(packs: Sequence[Any], *, services: Services) -> LoadedPacks:
    """Register every pack's node types, in order; the first pack to claim a name keeps it."""
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(LatentLoomHooks)
    registry = NodeRegistry()
    loaded: list[str] = []
    failures: list[PackFailure] = []
    for pack in packs:
        name = pack_name(pack)
        try:
            manager.register(pack, name=name)
        except Exception as error:  # pluggy refuses hooks with unknown arguments, duplicate names
            failures.append(_failure(name, error, "could not be registered"))
            continue
        impls = [impl for impl in manager.hook.register_nodes.get_hookimpls() if impl.plugin is pack]
        staging = NodeRegistry()
        try:
            _register_into(staging, impls, services)
            _merge(staging, registry)
        except Exception as error:  # a plugin's bug must not stop the server or the other packs
            failures.append(_failure(name, error, "failed to register its nodes"))
            continue
        loaded.append(name)
    return LoadedPacks(registry, tuple(loaded), tuple(failures))
