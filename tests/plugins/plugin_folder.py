"""A temporary custom_nodes/ folder: the example plugin, a ComfyUI-style one, broken and colliding ones."""

from __future__ import annotations

import shutil
from pathlib import Path

from plugin_sources import (
    COMFY_STYLE,
    MISSING_DEPENDENCY,
    RAISES_AT_IMPORT,
    SYNTAX_ERROR,
    WANTS_COMFY,
    one_node_plugin,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PLUGIN = REPO_ROOT / "custom_nodes" / "example_plugin"


def write_plugins(folder: Path) -> Path:
    """custom_nodes/ with the example plugin, a ComfyUI-style one, broken ones and colliding ones."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(EXAMPLE_PLUGIN, folder / "example_plugin", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "comfy_style.py").write_text(COMFY_STYLE, encoding="utf-8")
    (folder / "syntax_error.py").write_text(SYNTAX_ERROR, encoding="utf-8")
    (folder / "missing_dependency.py").write_text(MISSING_DEPENDENCY, encoding="utf-8")
    (folder / "raises_at_import.py").write_text(RAISES_AT_IMPORT, encoding="utf-8")
    package = folder / "wants_comfy"
    package.mkdir()
    (package / "__init__.py").write_text(WANTS_COMFY, encoding="utf-8")
    (folder / "collide_a.py").write_text(one_node_plugin("SharedName", own="OnlyA", value=1), encoding="utf-8")
    (folder / "collide_b.py").write_text(one_node_plugin("SharedName", own="OnlyB", value=2), encoding="utf-8")
    (folder / "collide_builtin.py").write_text(one_node_plugin("SaveImage", own="OwnNode", value=3), encoding="utf-8")
    (folder / "ignored.py.disabled").write_text(SYNTAX_ERROR, encoding="utf-8")
    return folder
