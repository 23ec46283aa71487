"""Fixtures for the workflow tests. TEST FIXTURES ONLY: see workflow_fixtures.py for the schemas."""

from __future__ import annotations

from typing import Any

import pytest
from workflow_fixtures import fixture_schemas

from latentloom.api import NodeRegistry, NodeResult, NodeSchema, NodeType


class SchemaOnlyNode(NodeType):
    """A registrable node type for these tests; it only reports the inputs it was given."""

    def __init__(self, schema: NodeSchema) -> None:
        self.schema = schema

    def execute(self, ctx: Any, **inputs: Any) -> NodeResult:
        return NodeResult(ui={"inputs": dict(inputs)})


@pytest.fixture
def schemas() -> dict[str, NodeSchema]:
    """class_type -> schema, keyed by our names only (aliases are found through the schemas)."""
    return {schema.type: schema for schema in fixture_schemas()}


@pytest.fixture
def registry() -> NodeRegistry:
    reg = NodeRegistry()
    for schema in fixture_schemas():
        reg.register(SchemaOnlyNode(schema))
    return reg
