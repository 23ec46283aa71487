"""Plugin hooks, declared in one place (pluggy). Every hook takes keyword arguments only.

First-party nodes (the ``nodes`` package) register through these same hooks.
"""

from __future__ import annotations

import pluggy

PROJECT = "latentloom"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class LatentLoomHooks:
    @hookspec
    def register_nodes(self, registry, services):  # type: ignore[no-untyped-def]
        """Register node types: call ``registry.register(node_type, source=...)`` for each.

        ``services`` holds the shared objects (model folders, model store, device manager).
        """
