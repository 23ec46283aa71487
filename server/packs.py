"""Load node packs (the first-party ``nodes`` package and plugins) through the pluggy hooks.

Each pack registers into a scratch registry first; only a pack whose hook finished joins the real
registry. A broken pack is left out whole and listed, and the others load. A name that an earlier pack
already holds either refuses the whole pack or, with ``shadow_conflicts`` (how plugins load), leaves out
just that node, listed as shadowed: the earlier pack keeps the name.
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
class ShadowedNode:
    """A node type a pack offered under a name that an earlier pack already holds."""

    name: str
    pack: str
    kept_by: str


@dataclass(frozen=True)
class LoadedPacks:
    registry: NodeRegistry
    loaded: tuple[str, ...]
    failures: tuple[PackFailure, ...]
    shadowed: tuple[ShadowedNode, ...] = ()

    def nodes_of(self, pack: str) -> tuple[str, ...]:
        """The node types that ``pack`` holds in the registry, sorted."""
        return tuple(name for name in self.registry if self.registry.source_of(name) == pack)


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


def _taken_name(node: Any, registry: NodeRegistry) -> str | None:
    return next((n for n in (node.schema.type, *node.schema.aliases) if n in registry), None)


def _merge(staging: NodeRegistry, registry: NodeRegistry, *, pack: str, shadow: bool) -> list[ShadowedNode]:
    """Move the node types of ``staging`` into ``registry``; a taken name refuses all, or shadows that one."""
    nodes = [(staging.get(name), staging.source_of(name) or "") for name in staging]
    shadowed = []
    for node, source in nodes:
        taken = _taken_name(node, registry)
        if taken is None:
            continue
        owner = registry.source_of(taken) or ""
        if not shadow:
            raise ValueError(f"node type {taken!r} from {source!r} is already registered by {owner!r}")
        log.warning("node type %r from %r is shadowed: %r registered it first", taken, pack, owner)
        shadowed.append(ShadowedNode(node.schema.type, pack, owner))
    lost = {s.name for s in shadowed}
    for node, _ in nodes:
        if node.schema.type not in lost:  # the pack's own name is the source, whatever the hook wrote
            registry.register(node, source=pack)
    return shadowed


def load_packs(packs: Sequence[Any], *, services: Services, shadow_conflicts: bool = False) -> LoadedPacks:
    """Register every pack's node types, in order; the first pack to claim a name keeps it.

    A later pack claiming a taken name is refused whole, or with ``shadow_conflicts`` loses only that node.
    """
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(LatentLoomHooks)
    registry = NodeRegistry()
    loaded: list[str] = []
    failures: list[PackFailure] = []
    shadowed: list[ShadowedNode] = []
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
            shadowed += _merge(staging, registry, pack=name, shadow=shadow_conflicts)
        except Exception as error:  # a plugin's bug must not stop the server or the other packs
            failures.append(_failure(name, error, "failed to register its nodes"))
            continue
        loaded.append(name)
    return LoadedPacks(registry, tuple(loaded), tuple(failures), tuple(shadowed))
