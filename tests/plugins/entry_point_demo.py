"""A plugin module as an installed package would expose it through a ``latentloom.plugins`` entry point."""

from __future__ import annotations

from latentloom.api import IntInput, NodeSchema, NodeType, Output, hookimpl


class Double(NodeType):
    schema = NodeSchema(type="EntryPointDouble", required=(IntInput("value"),), outputs=(Output("INT"),))

    def execute(self, ctx, value):
        return (2 * value,)


@hookimpl
def register_nodes(registry):
    registry.register(Double())
