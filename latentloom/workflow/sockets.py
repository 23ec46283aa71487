"""A node's sockets as its schema draws them, for nodes that were saved (or imported) without them."""

from __future__ import annotations

from collections.abc import Collection

from latentloom.api.schema import NodeSchema
from latentloom.workflow.model import Socket, WorkflowNode


def schema_sockets(schema: NodeSchema, *, linked: Collection[str] = ()) -> tuple[list[Socket], list[Socket]]:
    """Input sockets (link inputs, and widgets in ``linked`` as converted sockets) and output sockets."""
    inputs = [
        Socket(i.name, i.type, widget=i.name if i.accepts_literal else None)
        for i in schema.inputs
        if not i.accepts_literal or i.name in linked
    ]
    outputs = [Socket(o.display_name, o.type) for o in schema.outputs]
    return inputs, outputs


def node_sockets(node: WorkflowNode, schema: NodeSchema | None) -> tuple[list[Socket], list[Socket]]:
    """The node's stored sockets; where it stores none and the schema is known, the schema's."""
    if schema is None or (node.inputs and node.outputs):
        return node.inputs, node.outputs
    inputs, outputs = schema_sockets(schema, linked=[s.name for s in node.inputs])
    return node.inputs or inputs, node.outputs or outputs
