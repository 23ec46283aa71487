"""Example plugin: image adjustments (declared with our schema) and a contact sheet (ComfyUI-style class).

It shows both ways of declaring nodes in one package, plus a web extension (WEB_DIRECTORY). Copy it to
start a plugin of your own; docs/plugins.md explains each part.
"""

from __future__ import annotations

from latentloom.api import NodeRegistry, Services, hookimpl

from .adjust import ImageAdjust
from .contact_sheet import ContactSheet

# ComfyUI's convention: class_type -> node class, and the names the canvas shows.
NODE_CLASS_MAPPINGS = {"ContactSheet": ContactSheet}
NODE_DISPLAY_NAME_MAPPINGS = {"ContactSheet": "Contact Sheet"}

# Served under /extensions/example_plugin/ and loaded by the canvas.
WEB_DIRECTORY = "./web"


@hookimpl
def register_nodes(registry: NodeRegistry, services: Services) -> None:
    registry.register(ImageAdjust(), source="example_plugin")
